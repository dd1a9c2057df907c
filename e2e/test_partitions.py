"""Partitions of a chip never overlap: a whole chip waits while each chip has a core group in use."""

from __future__ import annotations

from e2e import kube
from e2e.workloads import claim_template, wait_ready, workload_pod


def _unschedulable(namespace: str, pod: str) -> bool:
    status = kube.get_json("pod", "-n", namespace, pod).get("status", {})
    return any(
        c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable"
        for c in status.get("conditions", [])
    )


def test_chip_claim_pends_while_every_chip_holds_a_core_group(namespace: str, worker: str) -> None:
    devices = kube.pool_devices(worker)
    chips = sorted(
        kube.attribute(d, "chipID")
        for d in devices.values()
        if kube.attribute(d, "type") == "chip" and not d.get("taints")
    )
    assert chips, f"node {worker} publishes no untainted chip"

    objects = []
    for i, chip in enumerate(chips):
        selector = f'device.attributes["snn.dra.dev"].chipID == "{chip}"'
        objects.append(
            claim_template(
                namespace,
                f"group-on-{i}",
                {
                    "requests": [
                        {
                            "name": "cores",
                            "exactly": {
                                "deviceClassName": "snn-core-group",
                                "selectors": [{"cel": {"expression": selector}}],
                            },
                        }
                    ]
                },
            )
        )
        objects.append(workload_pod(namespace, f"holder-{i}", {"g": f"group-on-{i}"}, node=worker))
    kube.apply(objects)
    for i in range(len(chips)):
        wait_ready(namespace, f"holder-{i}")

    kube.apply(
        [
            claim_template(
                namespace, "whole-chip", {"requests": [{"name": "chip", "exactly": {"deviceClassName": "snn-chip"}}]}
            ),
            workload_pod(namespace, "chip-job", {"c": "whole-chip"}, node=worker),
        ]
    )
    kube.wait_until("chip-job to be reported Unschedulable", lambda: _unschedulable(namespace, "chip-job"))
    claim = kube.claim_of(namespace, "chip-job", "c")
    assert "allocation" not in claim.get("status", {}), claim["status"]

    # Freeing one chip's core group makes exactly that chip allocatable.
    kube.kubectl("delete", "pod", "-n", namespace, "holder-0", "--wait=true", "--timeout=120s")
    pod = wait_ready(namespace, "chip-job")
    [result] = kube.claim_of(namespace, "chip-job", "c")["status"]["allocation"]["devices"]["results"]
    assert kube.attribute(kube.pool_devices(pod["spec"]["nodeName"])[result["device"]], "chipID") == chips[0]
