#!/usr/bin/env bash
# End-to-end demo on kind: create the cluster, build and load the driver image, deploy the driver
# (deploy/overlays/kind), wait for its DaemonSet and ResourceSlices, run the demo workloads
# (deploy/demo) and show what they were allocated and what their containers see.
# Environment: KIND_CLUSTER_NAME, KIND_NODE_IMAGE (see kind-up.sh), KIND, CONTAINER_TOOL.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER_NAME:-snn-dra}
KIND=${KIND:-kind}
IMAGE=ghcr.io/snn-dra/snn-dra:dev
DRIVER=snn.dra.dev

hack/kind-up.sh
TAG=dev hack/build-image.sh >/dev/null

echo "==> loading $IMAGE into kind cluster '$CLUSTER'"
"$KIND" load docker-image --name "$CLUSTER" "$IMAGE"

echo "==> deploying the driver"
kubectl apply -k deploy/overlays/kind
kubectl -n snn-dra rollout status daemonset/snn-dra-kubelet-plugin --timeout=180s

echo "==> waiting for ResourceSlices of $DRIVER on every node"
nodes=$(kubectl get nodes -o name | wc -l)
deadline=$((SECONDS + 120))
while :; do
  published=$(kubectl get resourceslices --field-selector "spec.driver=$DRIVER" \
    -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u | grep -c . || true)
  if [ "$published" -ge "$nodes" ]; then
    break
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: slices published for $published of $nodes nodes after 120 s; plugin logs:" >&2
    kubectl -n snn-dra logs daemonset/snn-dra-kubelet-plugin --tail=50 >&2 || true
    exit 1
  fi
  sleep 2
done
kubectl get resourceslices --field-selector "spec.driver=$DRIVER"
kubectl get deviceclasses

echo "==> running the demo workloads"
kubectl apply -k deploy/demo
kubectl -n snn-demo wait --for=condition=Ready pod --all --timeout=180s

echo "==> allocated claims"
kubectl -n snn-demo get resourceclaims
kubectl -n snn-demo get resourceclaims -o jsonpath='{range .items[*]}{.metadata.name}{":"}{range .status.allocation.devices.results[*]}{" "}{.request}{"="}{.device}{end}{"\n"}{end}'

echo "==> what the containers see (SNN_* environment injected through CDI)"
for pod in $(kubectl -n snn-demo get pods -o name); do
  for container in $(kubectl -n snn-demo get "$pod" -o jsonpath='{.spec.containers[*].name}'); do
    echo "--- $pod/$container"
    kubectl -n snn-demo logs "$pod" -c "$container"
  done
done

echo "==> done. Clean up with: kubectl delete -k deploy/demo; kubectl delete -k deploy/overlays/kind; $KIND delete cluster --name $CLUSTER"
