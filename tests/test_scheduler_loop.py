"""Scheduler against the embedded Store: template claims, allocation, binding, failure conditions, release."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest
from allocator_helpers import DRIVER, TYPE_IS, device, rslice

from snn_dra.driver.embedded.errors import NotFound
from snn_dra.driver.embedded.scheduler import FINALIZER, POD_CLAIM_NAME_ANNOTATION, Scheduler
from snn_dra.driver.embedded.store import Store


def chip_class() -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "snn-chip"},
        "spec": {"selectors": [{"cel": {"expression": TYPE_IS.format("chip")}}]},
    }


def claim_spec(count: int = 1) -> dict[str, Any]:
    return {"devices": {"requests": [{"name": "chip", "exactly": {"deviceClassName": "snn-chip", "count": count}}]}}


def template(name: str = "one-chip", count: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"metadata": {"labels": {"app": "snn"}}, "spec": claim_spec(count)},
    }


def pod(name: str, **claims: str) -> dict[str, Any]:
    """``claims``: pod claim name -> "template:<name>" or "claim:<name>"."""
    refs = []
    for pod_claim, target in claims.items():
        kind, _, target_name = target.partition(":")
        key = "resourceClaimTemplateName" if kind == "template" else "resourceClaimName"
        refs.append({"name": pod_claim, key: target_name})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [{"name": "main", "image": "busybox",
                            "resources": {"claims": [{"name": n} for n in claims]}}],
            "resourceClaims": refs,
        },
    }


@pytest.fixture
def store() -> Store:
    s = Store()
    for node in ("node-a", "node-b"):
        s.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    s.create("deviceclasses", chip_class())
    s.create("resourceslices", rslice("node-b-slice", [device("chip-0"), device("chip-1", chip=1)],
                                      pool="node-b", node="node-b"))
    s.create("resourceclaimtemplates", template())
    return s


def condition(p: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")


def test_template_claim_is_created_allocated_reserved_and_pod_bound(store: Store) -> None:
    created = store.create("pods", pod("p1", snn="template:one-chip"))
    report = Scheduler(store).reconcile()
    assert report.scheduled == {"default/p1": "node-b"}  # node-a publishes nothing

    p1 = store.get("pods", "default", "p1")
    assert p1["spec"]["nodeName"] == "node-b"
    assert condition(p1)["status"] == "True"
    (status,) = p1["status"]["resourceClaimStatuses"]
    assert status["name"] == "snn" and re.fullmatch(r"p1-snn-[bcdfghjklmnpqrstvwxz2456789]{5}",
                                                    status["resourceClaimName"])

    c = store.get("resourceclaims", "default", status["resourceClaimName"])
    assert c["metadata"]["annotations"][POD_CLAIM_NAME_ANNOTATION] == "snn"
    assert c["metadata"]["labels"] == {"app": "snn"}
    assert c["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Pod", "name": "p1", "uid": created["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert FINALIZER in c["metadata"]["finalizers"]
    assert c["status"]["reservedFor"] == [{"resource": "pods", "name": "p1", "uid": created["metadata"]["uid"]}]
    results = c["status"]["allocation"]["devices"]["results"]
    assert results == [{"request": "chip", "driver": DRIVER, "pool": "node-b", "device": "chip-0"}]
    assert c["status"]["allocation"]["nodeSelector"]["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node-b"]
    events = [e for e in store.list("events", "default") if e["involvedObject"]["name"] == "p1"]
    assert [e["reason"] for e in events] == ["Scheduled"]


def test_pods_share_out_devices_until_none_is_left(store: Store) -> None:
    for name in ("p1", "p2", "p3"):
        store.create("pods", pod(name, snn="template:one-chip"))
    report = Scheduler(store).reconcile()
    assert sorted(report.scheduled) == ["default/p1", "default/p2"]
    devices = sorted(
        r["device"] for c in store.list("resourceclaims", "default")
        if c.get("status", {}).get("allocation") for r in c["status"]["allocation"]["devices"]["results"]
    )
    assert devices == ["chip-0", "chip-1"]

    p3 = store.get("pods", "default", "p3")
    cond = condition(p3)
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert cond["message"].startswith(
        "0/2 nodes are available: node-a: cannot allocate all claims: claim default/p3-snn-"
    )
    assert "node-b: cannot allocate all claims" in cond["message"] and "2 allocated to another claim" in cond["message"]
    warnings = [e for e in store.list("events", "default") if e["reason"] == "FailedScheduling"]
    assert len(warnings) == 1 and warnings[0]["message"] == cond["message"]

    # A second pass changes nothing: no new writes, so no hot loop through the watch.
    before = store.resource_version
    assert Scheduler(store).reconcile().scheduled == {}
    assert store.resource_version == before


def test_deleting_a_pod_releases_its_generated_claim_and_lets_the_next_pod_in(store: Store) -> None:
    sched = Scheduler(store)
    for name in ("p1", "p2", "p3"):
        store.create("pods", pod(name, snn="template:one-chip"))
    sched.reconcile()
    claim_name = store.get("pods", "default", "p1")["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
    store.delete("pods", "default", "p1")
    # GC marked the claim for deletion; the finalizer keeps it until the scheduler releases it.
    assert store.get("resourceclaims", "default", claim_name)["metadata"]["deletionTimestamp"]
    report = sched.reconcile()
    assert f"default/{claim_name}" in report.released
    with pytest.raises(NotFound):
        store.get("resourceclaims", "default", claim_name)
    assert report.scheduled == {"default/p3": "node-b"}
    assert condition(store.get("pods", "default", "p3"))["status"] == "True"


def test_standalone_claim_is_shared_and_deallocated_when_its_last_pod_goes(store: Store) -> None:
    store.create("resourceclaims", {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                                    "metadata": {"name": "shared", "namespace": "default"}, "spec": claim_spec()})
    store.create("pods", pod("a", snn="claim:shared"))
    store.create("pods", pod("b", snn="claim:shared"))
    sched = Scheduler(store)
    assert sched.reconcile().scheduled == {"default/a": "node-b", "default/b": "node-b"}
    shared = store.get("resourceclaims", "default", "shared")
    assert [r["name"] for r in shared["status"]["reservedFor"]] == ["a", "b"]
    assert len(shared["status"]["allocation"]["devices"]["results"]) == 1

    store.delete("pods", "default", "a")
    sched.reconcile()
    shared = store.get("resourceclaims", "default", "shared")
    assert [r["name"] for r in shared["status"]["reservedFor"]] == ["b"]
    assert shared["status"]["allocation"]

    store.delete("pods", "default", "b")
    sched.reconcile()
    shared = store.get("resourceclaims", "default", "shared")
    assert "allocation" not in shared.get("status", {})
    assert not shared.get("status", {}).get("reservedFor")
    assert FINALIZER not in (shared["metadata"].get("finalizers") or [])


def test_missing_claim_or_template_is_reported_on_the_pod(store: Store) -> None:
    store.create("pods", pod("p1", snn="claim:nope"))
    store.create("pods", pod("p2", snn="template:nope"))
    report = Scheduler(store).reconcile()
    assert report.unschedulable == {
        "default/p1": 'resourceclaim "nope" not found',
        "default/p2": 'resourceclaimtemplate "nope" not found',
    }


def test_all_claims_of_a_pod_go_to_one_node_or_none(store: Store) -> None:
    store.create("resourceclaimtemplates", template("two-chips", count=2))
    store.create("pods", pod("p1", a="template:one-chip", b="template:two-chips"))
    report = Scheduler(store).reconcile()
    assert "default/p1" in report.unschedulable
    assert not any(c.get("status", {}).get("allocation") for c in store.list("resourceclaims", "default"))
    # Once node-a publishes devices too, the two claims still have to fit on a single node together.
    store.create("resourceslices", rslice("node-a-slice", [device(f"chip-{i}", chip=i) for i in range(3)],
                                          pool="node-a", node="node-a"))
    assert Scheduler(store).reconcile().scheduled == {"default/p1": "node-a"}


def test_run_loop_schedules_on_watch_events() -> None:
    async def scenario() -> None:
        s = Store()
        s.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
        s.create("deviceclasses", chip_class())
        s.create("resourceclaimtemplates", template())
        task = asyncio.create_task(Scheduler(s).run())
        try:
            since = s.resource_version
            s.create("pods", pod("p1", snn="template:one-chip"))

            async def until(predicate: Any) -> dict[str, Any]:
                async for ev in s.watch("pods", resource_version=since):
                    obj: dict[str, Any] = ev["object"]
                    if obj["metadata"]["name"] == "p1" and predicate(obj):
                        return obj
                raise AssertionError("watch ended")

            def unschedulable(p: dict[str, Any]) -> bool:
                return any(c.get("reason") == "Unschedulable" for c in p.get("status", {}).get("conditions", []))

            await asyncio.wait_for(until(unschedulable), 30)
            # A slice appearing is an event too: the pending pod gets scheduled without any retry timer.
            since = s.resource_version
            s.create("resourceslices", rslice("node-a-slice", [device("chip-0")], pool="node-a", node="node-a"))
            bound = await asyncio.wait_for(until(lambda p: bool(p["spec"].get("nodeName"))), 30)
            assert bound["spec"]["nodeName"] == "node-a"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_other_schedulers_pods_and_unschedulable_nodes_are_left_alone(store: Store) -> None:
    other = pod("p-other", snn="template:one-chip")
    other["spec"]["schedulerName"] = "my-scheduler"
    store.create("pods", other)
    node_b = store.get("nodes", None, "node-b")
    store.update("nodes", {**node_b, "spec": {"unschedulable": True}})
    store.create("pods", pod("p1", snn="template:one-chip"))
    report = Scheduler(store).reconcile()
    assert "default/p-other" not in report.unschedulable and "default/p-other" not in report.scheduled
    assert report.unschedulable["default/p1"].startswith("0/1 nodes are available: node-a: ")


def test_device_taint_rules_in_the_store_steer_allocation(store: Store) -> None:
    store.create("devicetaintrules", {
        "apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule", "metadata": {"name": "drain-chip-0"},
        "spec": {"deviceSelector": {"driver": DRIVER, "pool": "node-b", "device": "chip-0"},
                 "taint": {"key": "snn.dra.dev/maintenance", "effect": "NoSchedule"}},
    })
    store.create("pods", pod("p1", snn="template:one-chip"))
    assert Scheduler(store).reconcile().scheduled == {"default/p1": "node-b"}
    name = store.get("pods", "default", "p1")["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
    results = store.get("resourceclaims", "default", name)["status"]["allocation"]["devices"]["results"]
    assert [r["device"] for r in results] == ["chip-1"]
