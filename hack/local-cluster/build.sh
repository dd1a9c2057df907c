#!/usr/bin/env bash
# Builds the pinned upstream components of the local real cluster from the Go module proxy into a cache outside
# the repository: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl; etcd;
# containerd, ctr and the runc shim (runc itself is Debian's package). Go's module and build caches are reused,
# so a warm rebuild takes about a minute; a cold one downloads about 400 MB and takes about 15 minutes on 2 cores.
#
# Environment:
#   K8S_VERSION        Kubernetes version (default v1.36.3; v1.37.2 also verified)
#   SNN_DRA_CACHE      cache root (default ~/.cache/snn-dra); binaries go to $SNN_DRA_CACHE/local-cluster/bin/<ver>
#   BUILD_TIMEOUT      seconds allowed for each go step (default 2400)
# Prints the binary directory on the last line.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
RUNC_VERSION=${RUNC_VERSION:-v1.4.4}
CACHE=${SNN_DRA_CACHE:-$HOME/.cache/snn-dra}/local-cluster
BUILD_TIMEOUT=${BUILD_TIMEOUT:-2400}
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

# The staging modules that k8s.io/kubernetes replaces with ../staging paths; the wrapper module points each at
# its published v0.<minor>.<patch> tag instead.
STAGING="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap
code-generator component-base component-helpers controller-manager cri-api cri-client cri-streaming
csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
sample-apiserver streaming"

start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
command -v go >/dev/null || die "go is not installed (Go >= 1.26 is needed to build the local cluster)"

# run_go DIR ARGS...: one go step under the time box, with what it is doing printed first.
run_go() {
  local dir=$1; shift
  if ! (cd "$dir" && timeout "$BUILD_TIMEOUT" go "$@"); then
    die "'go $*' in $dir failed or exceeded ${BUILD_TIMEOUT}s. If it could not download modules, check that the Go module proxy ($(go env GOPROXY)) is reachable; nothing is skipped."
  fi
}

BIN=$CACHE/bin/k8s-$K8S_VERSION
mkdir -p "$BIN" "$CACHE/src"

minor=${K8S_VERSION#v1.}
staging_version=v0.$minor
k8s_bins="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
# Both version packages, like upstream's hack/lib/version.sh: component-base's for `--version` and the Node's
# kubeletVersion, client-go's for the User-Agent every client sends (else "v0.0.0 ... kubernetes/$Format").
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
  ldflags+=" -X $pkg.gitTreeState=clean"
done
# Binaries built with other flags (an older version of this script) are rebuilt.
if [ "$(cat "$BIN/.ldflags" 2>/dev/null)" != "$ldflags" ]; then
  for b in $k8s_bins; do rm -f "$BIN/$b"; done
fi
need=0
for b in $k8s_bins; do [ -x "$BIN/$b" ] || need=1; done
if [ $need = 1 ]; then
  mod=$CACHE/src/k8s-$K8S_VERSION
  mkdir -p "$mod"
  # tools.go imports every command built, so that go mod tidy records all their dependencies; a changed list
  # of commands (tools.go differs) re-runs the tidy.
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in $k8s_bins; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } >"$mod/tools.go.new"
  if [ ! -f "$mod/go.sum" ] || ! cmp -s "$mod/tools.go.new" "$mod/tools.go"; then
    step "preparing the Kubernetes $K8S_VERSION module (go mod tidy downloads about 300 MB when cold)"
    {
      echo "module snndra.local/k8s"
      echo
      echo "go 1.26.0"
      echo
      echo "godebug default=go1.26"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      for s in $STAGING; do
        v=$staging_version
        # sample-apiserver's first patch of a release is not always on the proxy; the next one is.
        [ "$s" = sample-apiserver ] && [ "$K8S_VERSION" = v1.36.3 ] && v=v0.36.4
        echo "replace k8s.io/$s => k8s.io/$s $v"
      done
    } >"$mod/go.mod"
    mv "$mod/tools.go.new" "$mod/tools.go"
    run_go "$mod" mod tidy
  fi
  rm -f "$mod/tools.go.new"
  for b in $k8s_bins; do
    [ -x "$BIN/$b" ] && continue
    step "building $b $K8S_VERSION"
    run_go "$mod" build -trimpath -o "$BIN/$b" \
      -ldflags "$ldflags" \
      "k8s.io/kubernetes/cmd/$b"
  done
  echo "$ldflags" >"$BIN/.ldflags"
fi

# wrapper MODULE VERSION DIR PACKAGE...: a throwaway module that requires one upstream module, for building
# its commands. `go get` of each command package (not just the module) records every dependency in go.sum.
wrapper() {
  local module=$1 version=$2 dir=$3 pkg
  shift 3
  mkdir -p "$dir"
  if [ ! -f "$dir/go.sum" ] || [ "$(cat "$dir/packages" 2>/dev/null)" != "$*" ]; then
    printf 'module snndra.local/wrap\n\ngo 1.26.0\n\nrequire %s %s\n' "$module" "$version" >"$dir/go.mod"
    rm -f "$dir/go.sum" "$dir/packages"
    run_go "$dir" mod download "$module@$version"
    for pkg in "$@"; do
      run_go "$dir" get "$pkg@$version"
    done
    echo "$*" >"$dir/packages"
  fi
}

TOOLS=$CACHE/bin/tools
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/etcd-$ETCD_VERSION" ]; then
  step "building etcd $ETCD_VERSION"
  wrapper go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$CACHE/src/etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3
  run_go "$CACHE/src/etcd-$ETCD_VERSION" build -trimpath -ldflags "-s -w" -o "$TOOLS/etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3
fi
if [ ! -x "$TOOLS/containerd-$CONTAINERD_VERSION" ]; then
  step "building containerd $CONTAINERD_VERSION (containerd, ctr, containerd-shim-runc-v2)"
  src=$CACHE/src/containerd-$CONTAINERD_VERSION
  wrapper github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" "$src" \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  run_go "$src" build -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w" -o "$TOOLS/ctr-$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/ctr
  CGO_ENABLED=0 run_go "$src" build -trimpath -ldflags "-s -w" -o "$TOOLS/containerd-shim-runc-v2-$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  run_go "$src" build -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w" -o "$TOOLS/containerd-$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd
fi
step "done: Kubernetes $K8S_VERSION in $BIN, etcd/containerd in $TOOLS"
echo "$BIN"
