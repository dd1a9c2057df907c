"""Plugin restarts and upgrades: prepared claims stay, running pods are untouched, the new pod serves."""

from __future__ import annotations

from typing import Any

from e2e import kube
from e2e.workloads import claim_template, wait_ready, workload_pod

TILE = {"requests": [{"name": "cores", "exactly": {"deviceClassName": "snn-core-group"}}]}


def _container_state(namespace: str, pod: str) -> tuple[str, str, int]:
    obj = kube.get_json("pod", "-n", namespace, pod)
    [status] = obj["status"]["containerStatuses"]
    return obj["metadata"]["uid"], status["containerID"], status["restartCount"]


def _ready_plugin(node: str, not_uid: str) -> dict[str, Any] | None:
    for pod in kube.plugin_pods(node):
        if pod["metadata"]["uid"] != not_uid and kube.pod_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


def test_deleting_the_plugin_pod_keeps_prepared_claims_and_re_registers(namespace: str, worker: str) -> None:
    kube.apply([claim_template(namespace, "tile", TILE), workload_pod(namespace, "before", {"t": "tile"}, node=worker)])
    wait_ready(namespace, "before")
    before = _container_state(namespace, "before")
    devices_before = sorted(kube.pool_devices(worker))

    [old] = [p for p in kube.plugin_pods(worker) if not p["metadata"].get("deletionTimestamp")]
    kube.kubectl("delete", "pod", "-n", kube.DRIVER_NAMESPACE, old["metadata"]["name"], "--wait=false")
    kube.wait_until(
        f"a new Ready plugin pod on {worker}", lambda: _ready_plugin(worker, old["metadata"]["uid"]), timeout=180
    )

    assert _container_state(namespace, "before") == before, "the workload pod was restarted or replaced"
    assert kube.pod_ready(kube.get_json("pod", "-n", namespace, "before"))
    kube.wait_until("the node's slices after the restart", lambda: sorted(kube.pool_devices(worker)) == devices_before)

    # The new instance registered with the kubelet: it prepares a new claim ...
    kube.apply(workload_pod(namespace, "after", {"t": "tile"}, node=worker))
    wait_ready(namespace, "after")
    # ... and unprepares the claim the old instance prepared.
    claim = kube.claim_of(namespace, "before", "t")["metadata"]["name"]
    kube.kubectl("delete", "pod", "-n", namespace, "before", "--wait=true", "--timeout=120s")
    kube.wait_until(
        f"claim {claim} to be deleted",
        lambda: not kube.kubectl("get", "resourceclaim", "-n", namespace, claim, "--ignore-not-found", "-o", "name"),
    )


def test_rolling_update_keeps_slices_and_running_pods(namespace: str, worker: str) -> None:
    kube.apply([claim_template(namespace, "tile", TILE), workload_pod(namespace, "job", {"t": "tile"}, node=worker)])
    wait_ready(namespace, "job")
    before = _container_state(namespace, "job")
    slice_uids = {s["metadata"]["uid"] for s in kube.driver_slices(worker)}

    kube.kubectl("-n", kube.DRIVER_NAMESPACE, "rollout", "restart", f"daemonset/{kube.DAEMONSET}")
    kube.kubectl(
        "-n", kube.DRIVER_NAMESPACE, "rollout", "status", f"daemonset/{kube.DAEMONSET}", "--timeout=300s", timeout=320
    )

    # maxSurge: the new pod registered before the old one left, so the kubelet never wiped the slices.
    assert {s["metadata"]["uid"] for s in kube.driver_slices(worker)} >= slice_uids
    assert _container_state(namespace, "job") == before
    kube.apply(workload_pod(namespace, "after", {"t": "tile"}, node=worker))
    wait_ready(namespace, "after")
