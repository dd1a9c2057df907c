#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine, with snn-dra installed from its manifests:
# upstream etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and kubelet, containerd
# with CDI and runc, all built from source by hack/local-cluster/build.sh and run as root inside a network
# namespace of their own. No Docker, no kind, no registry: images are OCI archives imported locally.
#
# Network: the netns has lo plus one end of a veth pair with the node IP ($NODE_IP, also the API server's
# address); the host end gets the other address of that /30, which is the only route the script adds. Pods
# sit on a CNI bridge inside the netns without masquerading and without a default route out, so nothing the
# cluster runs can reach beyond this machine. kube-proxy (iptables mode, inside the netns) routes the
# kubernetes Service IP, so the driver uses its normal in-cluster credentials.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: hack/local-cluster.sh COMMAND

Commands:
  up       build the components (cached), start the cluster, install snn-dra, wait until its slices exist
  down     stop every process the cluster started, unmount, remove the netns and all state
  status   the components (pid, memory), the node and the driver's ResourceSlices
  env      shell lines for: eval "$(hack/local-cluster.sh env)"  (KUBECONFIG, PATH with kubectl, ...)
  install  (re)install snn-dra only: import the images, kubectl apply -k deploy/overlays/local, wait
  e2e      run the end-to-end suite (e2e/) against this cluster; extra arguments go to pytest
  help     this text

Environment:
  K8S_VERSION                  Kubernetes version to build and run (default v1.36.3)
  SNN_DRA_CACHE                build cache root (default ~/.cache/snn-dra)
  SNN_DRA_LOCAL_STATE          state directory (default /var/lib/snn-dra-local)
  SNN_DRA_LOCAL_LINK_NET       first three octets of the host<->cluster /30 (default 10.203.0)
  SNN_DRA_LOCAL_TIMEOUT        seconds each component may take to become healthy (default 120)
  SNN_DRA_LOCAL_TMPFS=0        keep the state on disk instead of a tmpfs (uses ~1 GB of memory while up)
  SNN_DRA_LOCAL_KEEP_ON_FAILURE=1  leave a failed 'up' running for debugging instead of cleaning up
Needs root (network namespaces, mounts, cgroups) and Debian packages it installs when missing.
EOF
}

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HACK")
LC=$HACK/local-cluster
IMAGES_SCRIPT=${SNN_DRA_LOCAL_IMAGES_SCRIPT:-$LC/images.sh}

# Every command but `up` talks to the running cluster: use the Kubernetes version it was started with.
if [ "${1:-}" != up ] && [ -z "${K8S_VERSION:-}" ] && [ -f "${SNN_DRA_LOCAL_STATE:-/var/lib/snn-dra-local}/k8s-version" ]; then
  K8S_VERSION=$(cat "${SNN_DRA_LOCAL_STATE:-/var/lib/snn-dra-local}/k8s-version")
fi
# shellcheck source=local-cluster/common.sh
source "$LC/common.sh"
# shellcheck source=local-cluster/pki.sh
source "$LC/pki.sh"
# shellcheck source=local-cluster/configs.sh
source "$LC/configs.sh"
# shellcheck source=local-cluster/components.sh
source "$LC/components.sh"
# shellcheck source=local-cluster/teardown.sh
source "$LC/teardown.sh"
# shellcheck source=local-cluster/install.sh
source "$LC/install.sh"

need_root() {
  [ "$(id -u)" = 0 ] || die "the local cluster needs root (network namespaces, mounts, cgroups); run it with sudo"
}

# ensure_packages: the Debian packages the cluster runs with, installed when missing (time-boxed).
ensure_packages() {
  local missing=() check pkg
  for check in runc:runc /usr/lib/cni/bridge:containernetworking-plugins iptables:iptables openssl:openssl \
    curl:curl conntrack:conntrack ip:iproute2 setsid:util-linux nsenter:util-linux; do
    pkg=${check#*:}
    check=${check%%:*}
    case "$check" in
      /*) [ -x "$check" ] || missing+=("$pkg") ;;
      *) command -v "$check" >/dev/null || missing+=("$pkg") ;;
    esac
  done
  [ ${#missing[@]} = 0 ] && return 0
  step "installing missing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || die "install these packages first: ${missing[*]} (no apt-get here)"
  if ! timeout 300 apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    if ! { timeout 300 apt-get update -q >&2 && timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }; then
      die "could not install ${missing[*]} with apt-get (is the Debian mirror reachable?); install them and retry"
    fi
  fi
}

build() {
  local out
  step "building Kubernetes $K8S_VERSION, etcd $ETCD_VERSION and containerd $CONTAINERD_VERSION (cached after the first run)"
  out=$("$LC/build.sh") || die "the build failed (see above)"
  [ "$(echo "$out" | tail -n 1)" = "$K8S_BIN" ] || die "build.sh put the binaries in $(echo "$out" | tail -n 1), expected $K8S_BIN"
  [ -x "$K8S_BIN/kube-proxy" ] || die "kube-proxy is missing from $K8S_BIN"
}

# build_images FILE: "<ref> <archive>" lines from images.sh into FILE.
build_images() {
  [ -x "$IMAGES_SCRIPT" ] || die "$IMAGES_SCRIPT is missing: it builds the pause and snn-dra images"
  step "building the images (pause, busybox, snn-dra:dev) with $(basename "$IMAGES_SCRIPT")"
  "$IMAGES_SCRIPT" >"$1" || die "building the images failed (see above)"
  grep -q '/pause:' "$1" || die "$IMAGES_SCRIPT built no pause image (its output: $(tr '\n' ' ' <"$1"))"
}

sandbox_image() { awk '$1 ~ /\/pause:/ {print $1; exit}' "$STATE/images.txt"; }

UP_OK=0
on_up_exit() {
  local saved
  [ "$UP_OK" = 1 ] && return 0
  if [ "${SNN_DRA_LOCAL_KEEP_ON_FAILURE:-0}" = 1 ]; then
    echo "up failed; the cluster is left as it is (SNN_DRA_LOCAL_KEEP_ON_FAILURE=1): 'hack/local-cluster.sh down' removes it" >&2
    return 0
  fi
  saved=$(mktemp -d /tmp/snn-dra-local-failed.XXXXXX)
  cp -r "$LOGS" "$saved/" 2>/dev/null || true
  echo "up failed: cleaning up what it started (component logs saved in $saved/log)" >&2
  down_cluster || true
}

cmd_up() {
  local images started_at build_s
  need_root
  ensure_packages
  if something_to_clean; then
    step "a previous run left state behind: taking it down first"
    down_cluster
  fi
  if [ -e "$KUBELET_ROOT" ]; then
    die "$KUBELET_ROOT exists and is not this cluster's: is another kubelet installed here? (remove it first)"
  fi
  build
  build_s=$(elapsed)
  images=$(mktemp)
  build_images "$images"

  trap on_up_exit EXIT
  trap 'exit 130' INT TERM
  started_at=$(date +%s)
  mkdir -p "$STATE"
  if [ "${SNN_DRA_LOCAL_TMPFS:-1}" = 1 ]; then
    # The state (containerd's unpacked images above all: ~35,000 files) on tmpfs: removing it from a disk
    # mounted with online discard took a minute per `down`; unmounting a tmpfs takes no time.
    mount -t tmpfs -o "size=${SNN_DRA_LOCAL_TMPFS_SIZE:-8g},mode=0755" snn-dra-local "$STATE"
  fi
  mkdir -p "$LOGS" "$PIDS"
  echo "$K8S_VERSION" >"$STATE/k8s-version"
  mv "$images" "$STATE/images.txt"
  step "network namespace $NETNS: node $NODE_IP, host end $HOST_IP (veth /30)"
  make_network
  step "certificates and configuration"
  make_pki
  write_audit_policy
  write_containerd_config "$(sandbox_image)"
  write_kubelet_config
  write_kube_proxy_config
  remember_created /var/run/cdi
  remember_created /var/log/containers
  remember_created /var/lib/cni
  remember_created /run/containerd
  [ -n "$(kubepods_dirs)" ] || echo "cgroup:kubepods" >>"$CREATED_LIST"

  step "starting etcd"
  start_etcd
  step "starting kube-apiserver"
  start_apiserver
  step "starting containerd"
  start_containerd
  step "importing the images"
  import_images
  step "starting kube-controller-manager and kube-scheduler"
  start_controller_manager
  start_scheduler
  wait_healthy kube-controller-manager healthy healthz_in_netns https://127.0.0.1:10257/healthz
  wait_healthy kube-scheduler healthy healthz_in_netns https://127.0.0.1:10259/healthz
  step "starting the kubelet (node $NODE_NAME)"
  start_kubelet
  step "starting kube-proxy"
  start_kube_proxy
  step "waiting for node $NODE_NAME to be Ready"
  wait_healthy kubelet Ready node_ready
  step "cluster up in $(( $(date +%s) - started_at ))s (after ${build_s}s of build)"
  install_driver
  UP_OK=1
  step "done: run  eval \"\$(hack/local-cluster.sh env)\"  and use kubectl (context $CONTEXT)"
}

cmd_down() {
  need_root
  down_cluster
}

cmd_install() {
  need_root
  [ -n "$(pid_of kube-apiserver)" ] || die "the local cluster is not running: 'hack/local-cluster.sh up' first"
  local images
  images=$(mktemp)
  build_images "$images"
  mv "$images" "$STATE/images.txt"
  step "importing the images"
  import_images
  install_driver
}

cmd_env() {
  [ -n "$(pid_of kube-apiserver)" ] || echo "warning: the local cluster is not running ('hack/local-cluster.sh up')" >&2
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
  # shellcheck disable=SC2016  # $PATH is expanded by the eval, not here
  printf 'export PATH=%q:"$PATH"\n' "$K8S_BIN"
  printf 'export SNN_DRA_LOCAL_AUDIT_LOG=%q\n' "$AUDIT_LOG"
  printf 'export SNN_DRA_LOCAL_STATE=%q\n' "$STATE"
}

cmd_e2e() {
  local venv=${SNN_DRA_VENV:-$REPO/.venv}
  [ -n "$(pid_of kube-apiserver)" ] || die "the local cluster is not running: 'hack/local-cluster.sh up' first"
  [ -x "$venv/bin/pytest" ] || die "no pytest in $venv: run hack/test.sh once (it creates the virtualenv) or set SNN_DRA_VENV"
  eval "$(cmd_env)"
  cd "$REPO"
  exec "$venv/bin/pytest" e2e -v "$@"
}

cmd_status() {
  local name pid rss running=0
  printf '%-24s %-8s %-8s %s\n' COMPONENT PID STATE RSS
  for name in $COMPONENTS; do
    pid=$(pid_of "$name")
    if [ -n "$pid" ]; then
      running=1
      rss=$(awk '/^VmRSS/ {printf "%d MB", $2 / 1024}' "/proc/$pid/status")
      printf '%-24s %-8s %-8s %s\n' "$name" "$pid" running "$rss"
    else
      printf '%-24s %-8s %-8s %s\n' "$name" - stopped -
    fi
  done
  [ $running = 1 ] || return 0
  echo
  kubectl_local get nodes -o wide 2>&1 || true
  echo
  kubectl_local -n snn-dra get daemonset,pods -o wide 2>&1 || true
  echo
  echo "ResourceSlices of $DRIVER on $NODE_NAME: $(slice_generations 2>/dev/null | wc -l)"
  echo "kubeconfig: $KUBECONFIG_FILE (context $CONTEXT); audit log: $AUDIT_LOG"
}

case "${1:-help}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  install) cmd_install ;;
  e2e)
    shift
    cmd_e2e "$@"
    ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
