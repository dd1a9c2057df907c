# shellcheck shell=bash
# Installing snn-dra into the local cluster the way a user does (sourced by hack/local-cluster.sh).

OVERLAY=deploy/overlays/local
DRIVER=snn.dra.dev
INSTALL_TIMEOUT=${SNN_DRA_LOCAL_INSTALL_TIMEOUT:-300}

# slice_generations: "<generation> <resourceSliceCount>" of every snn.dra.dev ResourceSlice of the node.
slice_generations() {
  kubectl_local get resourceslices --field-selector "spec.nodeName=$NODE_NAME,spec.driver=$DRIVER" \
    -o jsonpath='{range .items[*]}{.spec.pool.generation} {.spec.pool.resourceSliceCount}{"\n"}{end}'
}

# slices_complete: the node's pool is fully published (as many slices of the newest generation as it counts).
slices_complete() {
  local lines newest count
  lines=$(slice_generations) || return 1
  [ -n "$lines" ] || return 1
  newest=$(echo "$lines" | sort -n | tail -n 1)
  count=$(echo "$lines" | grep -cx "$newest")
  [ "$count" = "${newest#* }" ]
}

install_driver() {
  local existed=0 started slices
  started=$(date +%s)
  kubectl_local -n snn-dra get daemonset snn-dra-kubelet-plugin >/dev/null 2>&1 && existed=1
  step "installing snn-dra: kubectl apply -k $OVERLAY"
  kubectl_local apply -k "$REPO/$OVERLAY" | sed 's/^/           /' >&2
  if [ $existed = 1 ]; then
    # Same tag, possibly a rebuilt image: roll the pods so they run what was just imported.
    kubectl_local -n snn-dra rollout restart daemonset/snn-dra-kubelet-plugin >/dev/null
  fi
  step "waiting for the kubelet plugin DaemonSet to roll out (up to ${INSTALL_TIMEOUT}s)"
  if ! kubectl_local -n snn-dra rollout status daemonset/snn-dra-kubelet-plugin --timeout="${INSTALL_TIMEOUT}s" >&2; then
    kubectl_local -n snn-dra get pods -o wide >&2 || true
    kubectl_local -n snn-dra describe pods >&2 || true
    die "the snn-dra DaemonSet did not become ready; its pods are described above"
  fi
  step "waiting for the node's ResourceSlices"
  if ! wait_for "$INSTALL_TIMEOUT" "the ResourceSlices of $DRIVER on node $NODE_NAME" slices_complete; then
    kubectl_local -n snn-dra logs daemonset/snn-dra-kubelet-plugin --tail=30 >&2 || true
    return 1
  fi
  slices=$(slice_generations | wc -l)
  step "snn-dra installed in $(( $(date +%s) - started ))s: $slices ResourceSlices published for node $NODE_NAME"
}
