"""Deleting the workload unprepares its claim: the claim goes and its CDI spec leaves the node."""

from __future__ import annotations

from e2e import kube
from e2e.workloads import claim_template, wait_ready, workload_pod


def _cdi_specs(node: str) -> set[str]:
    [plugin] = [p for p in kube.plugin_pods(node) if kube.pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
    out = kube.kubectl("exec", "-n", kube.DRIVER_NAMESPACE, plugin["metadata"]["name"], "--", "ls", "/var/run/cdi")
    return set(out.split())


def test_deleting_the_pod_removes_claim_and_cdi_spec(namespace: str, worker: str) -> None:
    kube.apply(
        [
            claim_template(
                namespace, "tile", {"requests": [{"name": "c", "exactly": {"deviceClassName": "snn-core-group"}}]}
            ),
            workload_pod(namespace, "job", {"t": "tile"}, node=worker),
        ]
    )
    wait_ready(namespace, "job")
    claim = kube.claim_of(namespace, "job", "t")
    uid = claim["metadata"]["uid"]
    assert any(uid in name for name in _cdi_specs(worker)), "no CDI spec for the prepared claim"

    kube.kubectl("delete", "pod", "-n", namespace, "job", "--wait=true", "--timeout=120s")
    kube.wait_until(
        "the claim to be deleted",
        lambda: (
            not kube.kubectl(
                "get", "resourceclaim", "-n", namespace, claim["metadata"]["name"], "--ignore-not-found", "-o", "name"
            )
        ),
    )
    kube.wait_until("the claim's CDI spec to be removed", lambda: not any(uid in n for n in _cdi_specs(worker)))
