#!/usr/bin/env bash
# Regenerates the Python message classes of the Kubernetes API types under api/k8s/ (or into the directory given as
# $1) from the upstream generated.proto files committed under api/k8s/proto/.
#
#   hack/gen-k8s-protos.sh --fetch   first refreshes api/k8s/proto/ from the Go module proxy
#                                    (go mod download k8s.io/api@$K8S_API_VERSION k8s.io/apimachinery@...).
#
# The .proto files are committed unmodified (upstream layout k8s.io/<module>/<pkg>/generated.proto) so the test needs
# neither Go nor a network. Each one is compiled under snn_dra/api/k8s/<module>/<pkg>/generated.proto (imports
# rewritten to match): Python cannot import a folder called "k8s.io", and the protobuf package names (and so the
# message names on the wire and in the descriptor pool, k8s.io.api.core.v1.Pod) stay upstream's.
# tests/test_k8s_protos_codegen.py regenerates into a temp dir and diffs against the committed files.
#
# Python: $PYTHON, else .venv/bin/python, else python3 (it needs grpcio-tools).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
K8S_API_VERSION=${K8S_API_VERSION:-v0.37.2}
# The API packages whose kinds the embedded API server serves or may serve, and the apimachinery packages they use.
API_PKGS=(core/v1 resource/v1 resource/v1beta1 resource/v1beta2 apps/v1 rbac/v1 admissionregistration/v1
  scheduling/v1 coordination/v1 events/v1 policy/v1)
MACHINERY_PKGS=(pkg/apis/meta/v1 pkg/runtime pkg/runtime/schema pkg/util/intstr pkg/api/resource)
PROTO_DIR=$ROOT/api/k8s/proto

if [ "${1:-}" = "--fetch" ]; then
  shift
  GOFLAGS=-mod=mod go mod download k8s.io/api@"$K8S_API_VERSION" k8s.io/apimachinery@"$K8S_API_VERSION"
  MODCACHE=$(go env GOMODCACHE)
  rm -rf "$PROTO_DIR/k8s.io"
  for p in "${API_PKGS[@]}"; do
    mkdir -p "$PROTO_DIR/k8s.io/api/$p"
    cp "$MODCACHE/k8s.io/api@$K8S_API_VERSION/$p/generated.proto" "$PROTO_DIR/k8s.io/api/$p/"
  done
  for p in "${MACHINERY_PKGS[@]}"; do
    mkdir -p "$PROTO_DIR/k8s.io/apimachinery/$p"
    cp "$MODCACHE/k8s.io/apimachinery@$K8S_API_VERSION/$p/generated.proto" "$PROTO_DIR/k8s.io/apimachinery/$p/"
  done
  chmod -R u+w "$PROTO_DIR"
  # Which zero-valued fields JSON keeps comes from the Go struct tags (pointer or no omitempty), not the protos.
  python3 "$ROOT/hack/k8s_go_fields.py" "$MODCACHE/k8s.io/api@$K8S_API_VERSION" \
    "$MODCACHE/k8s.io/apimachinery@$K8S_API_VERSION" "${API_PKGS[@]}" -- "${MACHINERY_PKGS[@]}" \
    > "$ROOT/api/k8s/go_zero_fields.json"
  echo "$K8S_API_VERSION" > "$PROTO_DIR/VERSION"
fi

OUT=${1:-$ROOT/api/k8s}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src" "$WORK/out"
PROTOS=()
while IFS= read -r rel; do
  dest=snn_dra/api/k8s/${rel#k8s.io/}
  mkdir -p "$WORK/src/$(dirname "$dest")"
  sed -E 's#^import "k8s\.io/#import "snn_dra/api/k8s/#' "$PROTO_DIR/$rel" > "$WORK/src/$dest"
  PROTOS+=("$dest")
done < <(cd "$PROTO_DIR" && find . -name '*.proto' -printf '%P\n' | LC_ALL=C sort)

if ! (cd "$WORK/src" && "$PYTHON" -m grpc_tools.protoc -I . --python_out="$WORK/out" "${PROTOS[@]}") \
  >"$WORK/protoc.log" 2>&1; then
  cat "$WORK/protoc.log" >&2
  exit 1
fi

(cd "$WORK/out/snn_dra/api/k8s" && find . -type f -printf '%P\n' | LC_ALL=C sort) | while IFS= read -r rel; do
  mkdir -p "$OUT/$(dirname "$rel")"
  cp "$WORK/out/snn_dra/api/k8s/$rel" "$OUT/$rel"
done
