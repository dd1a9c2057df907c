"""The in-process Store as the scheduler and kubelet emulation use it: concurrency, semantics, watch filters."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from embedded_api_objects import claim, node, resource_slice

from snn_dra.driver.embedded.errors import AlreadyExists, BadRequest, Conflict, Invalid, NotFound
from snn_dra.driver.embedded.store import Store


def test_concurrent_writers_get_unique_increasing_versions() -> None:
    store = Store()
    versions: list[int] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        for j in range(20):
            obj = store.create("nodes", node(f"n{i}-{j}"))
            with lock:
                versions.append(int(obj["metadata"]["resourceVersion"]))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(versions) == len(set(versions)) == 80
    assert len(store.list("nodes")) == 80
    assert int(store.resource_version) == max(versions)


def test_noop_update_keeps_version_and_spec_change_bumps_generation() -> None:
    store = Store()
    s = store.create("resourceslices", resource_slice("n1", name="s"))
    same = store.update("resourceslices", s)
    assert same["metadata"]["resourceVersion"] == s["metadata"]["resourceVersion"]
    s["spec"]["pool"]["generation"] = 7
    changed = store.update("resourceslices", s)
    assert changed["metadata"]["generation"] == 2
    with pytest.raises(Conflict):
        store.update("resourceslices", s)  # s still carries the old resourceVersion


def test_dry_run_changes_nothing() -> None:
    store = Store()
    rv = store.resource_version
    out = store.create("nodes", node("n1"), dry_run=True)
    assert out["metadata"]["name"] == "n1"
    assert store.list("nodes") == [] and store.resource_version == rv


def test_errors_are_specific() -> None:
    store = Store()
    store.create("nodes", node("n1"))
    with pytest.raises(AlreadyExists, match='nodes "n1" already exists'):
        store.create("nodes", node("n1"))
    with pytest.raises(NotFound, match=r'resourceclaims\.resource\.k8s\.io "x" not found'):
        store.get("resourceclaims", "default", "x")
    with pytest.raises(BadRequest, match="resourceVersion should not be set"):
        store.create("nodes", {"metadata": {"name": "n2", "resourceVersion": "5"}})
    with pytest.raises(BadRequest, match="unable to parse requirement"):
        store.list("nodes", label_selector="a in b")
    with pytest.raises(BadRequest, match="do not match the resource"):
        store.create("nodes", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}})
    with pytest.raises(Invalid) as e:
        store.create("namespaces", {"metadata": {"name": "a.b"}})  # namespaces are DNS labels, not subdomains
    assert e.value.errors[0].field == "metadata.name"
    with pytest.raises(NotFound, match=r"not served by profile 1\.34"):
        Store(profile="1.34").list("devicetaintrules")


def test_namespace_delete_cascades_and_gc_respects_other_owners() -> None:
    store = Store()
    store.create("namespaces", {"metadata": {"name": "team"}})
    store.create("resourceclaims", claim("c", namespace="team"))
    store.delete("namespaces", None, "team")
    assert store.list("resourceclaims") == []
    a = store.create("nodes", node("a"))
    b = store.create("nodes", node("b"))
    body = resource_slice("a", name="shared")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Node", "name": n["metadata"]["name"], "uid": n["metadata"]["uid"]}
        for n in (a, b)]
    store.create("resourceslices", body)
    store.delete("nodes", None, "a")
    assert [s["metadata"]["name"] for s in store.list("resourceslices")] == ["shared"]
    store.delete("nodes", None, "b")
    assert store.list("resourceslices") == []


def test_pod_binding_once() -> None:
    store = Store()
    store.create("pods", {"metadata": {"name": "p", "namespace": "default"},
                          "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert store.bind_pod("default", "p", "n1")["spec"]["nodeName"] == "n1"
    with pytest.raises(Conflict, match='already assigned to node "n1"'):
        store.bind_pod("default", "p", "n2")


def test_watch_label_selector_turns_updates_into_added_and_deleted() -> None:
    store = Store()
    n = store.create("nodes", {"metadata": {"name": "n1"}})
    since = store.resource_version

    async def run() -> list[str]:
        seen: list[str] = []
        agen = store.watch("nodes", resource_version=since, label_selector="pool=gold")
        obj: dict[str, Any] = dict(n)
        for labels in ({"pool": "gold"}, {"pool": "gold", "x": "1"}, {"pool": "silver"}):
            obj = store.update("nodes", {**obj, "metadata": {**obj["metadata"], "labels": labels}})
        async for ev in agen:
            seen.append(ev["type"])
            if len(seen) == 3:
                break
        await agen.aclose()
        return seen

    assert asyncio.run(run()) == ["ADDED", "MODIFIED", "DELETED"]
    assert store._subs == []  # the closed watch unsubscribed


def test_server_side_apply_removes_fields_the_manager_stopped_applying() -> None:
    store = Store()
    first = resource_slice("n1", name="s", labels={"mine": "1"})
    first["spec"]["devices"][0]["attributes"]["snn.dra.dev/extra"] = {"int": 1}
    store.patch("resourceslices", None, "s", "application/apply-patch+yaml", first, field_manager="driver")
    store.patch("resourceslices", None, "s", "application/merge-patch+json",
                {"metadata": {"labels": {"theirs": "x"}}})
    second = resource_slice("n1", name="s")
    out = store.patch("resourceslices", None, "s", "application/apply-patch+yaml", second, field_manager="driver")
    assert out["metadata"]["labels"] == {"theirs": "x"}
    assert "snn.dra.dev/extra" not in out["spec"]["devices"][0]["attributes"]


def test_taint_time_added_is_set_by_the_server_and_kept() -> None:
    store = Store()
    taint = {"key": "snn.dra.dev/unhealthy", "value": "true", "effect": "NoSchedule"}
    body = resource_slice("n1", name="s")
    body["spec"]["devices"][0]["taints"] = [dict(taint)]
    created = store.create("resourceslices", body)
    stamp = created["spec"]["devices"][0]["taints"][0]["timeAdded"]
    assert stamp.endswith("Z")
    body = resource_slice("n1", name="s")  # the driver republishes without timeAdded
    body["spec"]["devices"][0]["taints"] = [dict(taint)]
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    body["spec"]["pool"]["generation"] = 2
    updated = store.update("resourceslices", body)
    assert updated["spec"]["devices"][0]["taints"][0]["timeAdded"] == stamp


def test_no_new_finalizers_while_deleting() -> None:
    store = Store()
    body = claim("c")
    body["metadata"]["finalizers"] = ["example.com/a"]
    store.create("resourceclaims", body)
    marked = store.delete("resourceclaims", "default", "c")
    marked["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    with pytest.raises(Invalid) as e:
        store.update("resourceclaims", marked)
    assert e.value.errors[0].field == "metadata.finalizers" and "example.com/b" in e.value.errors[0].message
    marked["metadata"]["finalizers"] = []
    store.update("resourceclaims", marked)
    with pytest.raises(NotFound):
        store.get("resourceclaims", "default", "c")


def test_strategic_merge_merges_core_lists_by_key() -> None:
    store = Store()
    store.create("pods", {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [
        {"name": "a", "image": "one", "resources": {"claims": [{"name": "npu"}]}},
        {"name": "b", "image": "two"}], "resourceClaims": [{"name": "npu", "resourceClaimName": "npu-claim"}]}})
    out = store.patch("pods", "default", "p", "application/strategic-merge-patch+json",
                      {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                                "containers": [{"name": "a", "image": "three"}, {"name": "b", "$patch": "delete"}]}})
    assert out["spec"]["containers"] == [{"name": "a", "image": "three", "resources": {"claims": [{"name": "npu"}]}}]
