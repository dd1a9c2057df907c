"""A damaged checkpoint in a running cluster: the plugin holds what is in use and says so on the Node.

The real plugin process serves the embedded cluster; its checkpoint is truncated behind its back (what a disk
fault leaves). The next pod's Prepare finds the damage: the running pod's claim keeps its devices and CDI
spec, the new pod still runs, and a Warning Event ``PrepareStateUntrusted`` about the Node appears in the API
server (read back with the official client).
"""

from __future__ import annotations

from typing import Any

from cluster_support import (
    NODE,
    cdi_specs,
    checkpoint_claims,
    claims_of,
    pod,
    pod_running,
    request,
    running_cluster,
    template,
    wait_for,
)

from snn_dra.driver.checkpoint import FILE_NAME
from snn_dra.driver.cli.node import UNTRUSTED_STATE_REASON


def _events(kube: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.json.get("/api/v1/namespaces/default/events").get("items") or []
    return [
        e
        for e in items
        if e.get("reason") == UNTRUSTED_STATE_REASON
        and e.get("involvedObject", {}).get("kind") == "Node"
        and e.get("involvedObject", {}).get("name") == NODE
    ]


def test_truncated_checkpoint_is_reported_on_the_node_and_the_running_claim_keeps_its_devices() -> None:
    with running_cluster() as (cluster, kube):
        kube.create(template("group", [request("g", "snn-core-group")]))
        kube.create(pod("first", {"g": "group"}))
        wait_for(lambda: pod_running(kube, "first"), "the first pod to run")
        [first] = claims_of(kube, "first")
        uid = first["metadata"]["uid"]
        before = checkpoint_claims(cluster)[uid]
        spec_before = cdi_specs(cluster)
        assert not _events(kube)

        path = cluster.node_dirs(NODE).plugin_dir / FILE_NAME
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

        kube.create(pod("second", {"g": "group"}))
        wait_for(lambda: pod_running(kube, "second"), "the second pod to run after the damage")
        [event] = wait_for(lambda: _events(kube) or None, "the PrepareStateUntrusted event on the node")
        assert event["type"] == "Warning" and event["metadata"]["namespace"] == "default"
        assert "could not be trusted" in event["message"] and "Nothing was rolled back" in event["message"]
        assert event["source"]["host"] == NODE

        after = checkpoint_claims(cluster)
        assert after[uid]["state"] == "PrepareCompleted"
        assert after[uid]["devices"] == before["devices"], "the running claim keeps exactly its devices"
        assert all(cdi_specs(cluster)[name] == spec for name, spec in spec_before.items())
        [second] = claims_of(kube, "second")
        held = [d["device"] for e in after.values() for d in e["devices"]]
        assert len(held) == len(set(held)) == 2 and second["metadata"]["uid"] in after
        assert cluster.plugins[NODE].proc.poll() is None
