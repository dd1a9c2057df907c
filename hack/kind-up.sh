#!/usr/bin/env bash
# Create the snn-dra kind cluster (hack/kind-config.yaml) unless it already exists, and wait until
# every node is Ready. Environment:
#   KIND_CLUSTER_NAME  cluster name (default snn-dra)
#   KIND_NODE_IMAGE    node image (default: Kubernetes v1.37.0 built for kind v0.33.0)
#   KIND               kind binary (default kind)
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER_NAME:-snn-dra}
KIND=${KIND:-kind}
# From the kind v0.33.0 release notes. For 1.34 use
# kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d
IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5}

for tool in "$KIND" kubectl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: '$tool' is not installed or not on PATH (kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)" >&2
    exit 1
  fi
done

# Node images work only with the kind release that built them; the default one needs kind >= v0.33.0.
kind_version=$("$KIND" version | sed -n 's/^kind v\([0-9]*\.[0-9]*\)\..*/\1/p')
if [ -z "${KIND_NODE_IMAGE:-}" ] && [ -n "$kind_version" ] &&
  [ "$(printf '%s\n0.33\n' "$kind_version" | sort -V | head -n1)" != "0.33" ]; then
  echo "warning: kind v$kind_version is older than v0.33.0, which built $IMAGE; upgrade kind or set KIND_NODE_IMAGE" >&2
fi

if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "==> kind cluster '$CLUSTER' already exists; reusing it"
else
  echo "==> creating kind cluster '$CLUSTER' from $IMAGE"
  "$KIND" create cluster --name "$CLUSTER" --image "$IMAGE" --config hack/kind-config.yaml --wait 120s
fi

kubectl config use-context "kind-$CLUSTER" >/dev/null
echo "==> waiting for nodes to be Ready"
kubectl wait --for=condition=Ready node --all --timeout=180s
kubectl get nodes -o wide
