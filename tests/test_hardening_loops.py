"""The loops survive any single bad object: scheduler + claim controller, kubelet emulation, garbage collection.

The bad objects are put into the store with ``Store.load_unchecked``, as an older, looser API server version
would have left them; the API server would refuse them today. Each test checks that the good objects around
them are still handled and that the bad one is reported (a Warning Event naming it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from allocator_helpers import TYPE_IS, device, rslice
from hardening_support import send
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.cluster import wait_until
from snn_dra.driver.embedded.kubelet import KubeletEmulator
from snn_dra.driver.embedded.scheduler import Scheduler
from snn_dra.driver.embedded.store import Store

pytest_plugins = ["embedded_fixtures"]


def chip_class() -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "snn-chip"},
            "spec": {"selectors": [{"cel": {"expression": TYPE_IS.format("chip")}}]}}


def claim(name: str) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"devices": {"requests": [{"name": "chip", "exactly": {"deviceClassName": "snn-chip"}}]}}}


def pod(name: str, claim_name: str | None = None, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if claim_name:
        spec["resourceClaims"] = [{"name": "chip", "resourceClaimName": claim_name}]
        spec["containers"][0]["resources"] = {"claims": [{"name": "chip"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def warnings_about(store: Store, name: str) -> list[dict[str, Any]]:
    return [e for e in store.list("events", "default")
            if e["involvedObject"].get("name") == name and e.get("type") == "Warning"]


@pytest.fixture
def store() -> Store:
    s = Store()
    s.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
    s.create("deviceclasses", chip_class())
    s.create("resourceslices", rslice("node-a-slice", [device("chip-0"), device("chip-1", chip=1)]))
    return s


def test_scheduler_and_claim_controller_skip_bad_objects_and_handle_the_rest(store: Store) -> None:
    # Bad objects of every kind the pass reads, each loaded before the good ones so they are met first.
    store.load_unchecked("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "aaa-bad", "namespace": "default"},
                                  "spec": {"containers": "nope", "resourceClaims": 7}})
    store.load_unchecked("resourceclaims", {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                                            "metadata": {"name": "aaa-bad-claim", "namespace": "default"},
                                            "spec": "garbage", "status": {"reservedFor": "everyone"}})
    store.load_unchecked("resourceslices", {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                                            "metadata": {"name": "aaa-bad-slice"},
                                            "spec": {"driver": 5, "devices": {"x": 1}}})
    store.load_unchecked("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "aaa-bad-node"},
                                   "spec": ["not", "an", "object"]})
    store.create("resourceclaims", claim("good-claim"))
    store.create("pods", pod("good", "good-claim"))

    report = Scheduler(store).reconcile()

    assert report.scheduled == {"default/good": "node-a"}
    assert {"pods default/aaa-bad", "resourceclaims default/aaa-bad-claim", "resourceslices aaa-bad-slice",
            "nodes aaa-bad-node"} <= set(report.skipped)
    assert store.get("resourceclaims", "default", "good-claim")["status"]["allocation"]
    for bad in ("aaa-bad", "aaa-bad-claim", "aaa-bad-slice", "aaa-bad-node"):
        events = warnings_about(store, bad)
        assert events and "malformed" in events[0]["message"], bad
    # Reported once per object version, not on every pass.
    again = Scheduler(store)
    again.reconcile()
    again.reconcile()
    assert len(warnings_about(store, "aaa-bad")) == 2  # one per scheduler instance


def test_scheduler_loop_keeps_running_with_a_bad_pod(store: Store) -> None:
    async def scenario() -> None:
        sched = Scheduler(store)
        task = asyncio.create_task(sched.run())
        try:
            store.load_unchecked("pods", {"apiVersion": "v1", "kind": "Pod",
                                          "metadata": {"name": "bad", "namespace": "default"},
                                          "spec": {"containers": [{"name": 1}], "resourceClaims": [5]}})
            store.create("resourceclaims", claim("c1"))
            store.create("pods", pod("p1", "c1"))
            async with asyncio.timeout(30):
                while not store.get("pods", "default", "p1")["spec"].get("nodeName"):
                    await asyncio.sleep(0.02)
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


@pytest.fixture
def kubelet(store: Store, tmp_path: Path) -> Iterator[KubeletEmulator]:
    (tmp_path / "plugins_registry").mkdir()
    emu = KubeletEmulator(store, "node-a", tmp_path / "plugins_registry").start()
    yield emu
    emu.stop()


def test_kubelet_emulation_skips_a_bad_pod_and_runs_the_others(store: Store, kubelet: KubeletEmulator) -> None:
    store.load_unchecked("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "aaa-bad", "namespace": "default"},
                                  "spec": {"nodeName": "node-a", "containers": "nope"}})
    store.create("pods", pod("good-1", node="node-a"))
    wait_until(lambda: store.get("pods", "default", "good-1")["status"].get("phase") == "Running",
               "good-1 running next to a malformed pod")
    # Still alive after the bad pod: a pod created later runs as well.
    store.create("pods", pod("good-2", node="node-a"))
    wait_until(lambda: store.get("pods", "default", "good-2")["status"].get("phase") == "Running",
               "good-2 running after the malformed pod was met")
    events = wait_until(lambda: warnings_about(store, "aaa-bad"), "a Warning event about the malformed pod")
    assert events[0]["source"] == {"component": "kubelet", "host": "node-a"}
    assert "status" not in store.get("pods", "default", "aaa-bad")  # left as it was


def test_garbage_collection_and_lists_survive_a_bad_dependent(embedded_server: EmbeddedApiServer,
                                                              embedded_api_client: client.ApiClient) -> None:
    store = embedded_server.store
    core = client.CoreV1Api(embedded_api_client)
    owner = core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "Node", "name": "owner", "uid": owner.metadata.uid}
    store.create("resourceslices", {**rslice("dep-1", [device("chip-0")], node="owner", pool="owner"),
                                    "metadata": {"name": "dep-1", "ownerReferences": [ref]}})
    # Malformed dependents: junk next to a real owner reference, and references that are no list at all.
    store.load_unchecked("resourceslices", {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                                            "metadata": {"name": "dep-junk", "ownerReferences": ["junk", 5, ref],
                                                         "labels": "x"}, "spec": "garbage"})
    store.load_unchecked("resourceslices", {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                                            "metadata": {"name": "dep-bad", "ownerReferences": 7}})
    store.create("resourceslices", {**rslice("dep-2", [device("chip-0")], node="owner", pool="owner"),
                                    "metadata": {"name": "dep-2", "ownerReferences": [ref]}})
    store.load_unchecked("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "bad-pod", "namespace": "default", "labels": ["x"]},
                                  "spec": "garbage", "status": 5})

    # Lists (plain, with a label selector, as a kubectl Table) still answer with the bad objects present.
    assert send(embedded_api_client, "GET", "/api/v1/namespaces/default/pods").status == 200
    assert send(embedded_api_client, "GET", "/apis/resource.k8s.io/v1/resourceslices?labelSelector=a%3Db").status == 200
    api = embedded_api_client
    m, url, hdrs, _, _ = api.param_serialize("GET", "/api/v1/namespaces/default/pods", auth_settings=["BearerToken"],
                                             header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    table = api.rest_client.pool_manager.request(m, url, headers=hdrs, preload_content=True)
    assert table.status == 200 and b'"bad-pod"' in table.data

    core.delete_node("owner")
    names = {s["metadata"]["name"] for s in store.list("resourceslices")}
    assert not names & {"dep-1", "dep-2", "dep-junk"}  # every dependent GC can recognise is collected
    assert "dep-bad" in names  # references that are no list name no owner: nothing to collect


def test_one_dependent_garbage_collection_fails_on_is_reported_and_the_rest_collected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    owner = store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "owner"}})
    ref = [{"apiVersion": "v1", "kind": "Node", "name": "owner", "uid": owner["metadata"]["uid"]}]
    for name in ("dep-a", "dep-b", "dep-c"):
        store.create("resourceslices", {**rslice(name, [device("chip-0")], node="owner", pool="owner"),
                                        "metadata": {"name": name, "ownerReferences": ref}})
    real = Store._delete_quietly

    def failing(self: Store, resource: str, key: tuple[str, str]) -> None:
        if key[1] == "dep-b":
            raise RuntimeError("simulated fault while deleting dep-b")
        real(self, resource, key)

    monkeypatch.setattr(Store, "_delete_quietly", failing)
    store.delete("nodes", None, "owner")
    assert [s["metadata"]["name"] for s in store.list("resourceslices")] == ["dep-b"]
    events = warnings_about(store, "dep-b")
    assert events and events[0]["reason"] == "GarbageCollectionFailed" and "simulated fault" in events[0]["message"]


def test_scheduler_index_follows_events_through_schedule_release_and_reuse() -> None:
    """The run loop keeps claims and pods in an index fed by watch events (not a copy of the store per pass):
    binding, releasing a deleted pod's claim and giving the freed device to the next pod all follow events."""
    store = Store()
    store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
    store.create("deviceclasses", chip_class())
    store.create("resourceslices", rslice("node-a-slice", [device("chip-0")]))

    async def scenario() -> None:
        task = asyncio.create_task(Scheduler(store).run())
        try:
            async def until(what: str, check: Any) -> None:
                async with asyncio.timeout(30):
                    while not check():
                        await asyncio.sleep(0.02)

            store.create("resourceclaims", claim("c1"))
            store.create("pods", pod("p1", "c1"))
            await until("p1 bound", lambda: store.get("pods", "default", "p1")["spec"].get("nodeName"))
            store.delete("pods", "default", "p1")
            await until("c1 released", lambda: not store.get("resourceclaims", "default", "c1").get("status"))
            store.create("pods", pod("p2", "c1"))  # the only chip is free again
            await until("p2 bound", lambda: store.get("pods", "default", "p2")["spec"].get("nodeName"))
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_scheduler_index_skips_events_its_snapshot_already_holds(store: Store) -> None:
    """After a re-sync from a snapshot, queued watch events from before it must not roll the index back."""
    from snn_dra.driver.embedded.scheduler import ReconcileReport, _Index

    sched = Scheduler(store)
    created = store.create("resourceclaims", claim("old"))
    stale_added = ("resourceclaims", "ADDED", created)
    store.delete("resourceclaims", "default", "old")
    index = _Index()
    report = ReconcileReport()
    sched._resync(index, "resourceclaims", report)
    sched._apply(index, [stale_added], report)  # older than the snapshot: ignored
    assert ("default", "old") not in index.claims
    fresh = store.create("resourceclaims", claim("new"))
    sched._apply(index, [("resourceclaims", "ADDED", fresh)], report)
    assert index.claims[("default", "new")] is fresh
    deleted = store.delete("resourceclaims", "default", "new")
    sched._apply(index, [("resourceclaims", "DELETED", deleted)], report)
    assert ("default", "new") not in index.claims
