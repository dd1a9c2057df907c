"""Watch over HTTPS with the official client: from a resourceVersion, selectors, bookmarks, 410 Expired."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from embedded_api_objects import api_client_for, claim, resource_slice
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from snn_dra.driver.embedded.errors import Gone
from snn_dra.driver.embedded.store import Store

pytest_plugins = ["embedded_fixtures"]


def test_watch_from_resource_version_sees_later_events_in_order(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    before = res.create_resource_slice(resource_slice("node-a", name="old"))
    rv = res.list_resource_slice().metadata.resource_version
    res.create_resource_slice(resource_slice("node-a", name="s1"))
    res.patch_resource_slice("s1", {"metadata": {"labels": {"x": "1"}}},
                             _content_type="application/merge-patch+json")
    res.delete_resource_slice("s1")
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    for ev in w.stream(res.list_resource_slice, resource_version=rv, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "s1"), ("MODIFIED", "s1"), ("DELETED", "s1")]
    assert before.metadata.name == "old"


def test_watch_live_events_and_claim_return_type(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    got: list[str] = []
    rv = res.list_namespaced_resource_claim("default").metadata.resource_version

    def consume() -> None:
        w = watch.Watch(return_type=client.ResourceV1ResourceClaim)
        for ev in w.stream(res.list_namespaced_resource_claim, "default", timeout_seconds=10,
                           resource_version=rv, field_selector="metadata.name=wanted"):
            got.append(f'{ev["type"]}:{ev["object"].metadata.name}')
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    res.create_namespaced_resource_claim("default", claim("ignored"))
    res.create_namespaced_resource_claim("default", claim("wanted"))
    res.delete_namespaced_resource_claim("wanted", "default")
    t.join(timeout=15)
    assert not t.is_alive()
    assert got == ["ADDED:wanted", "DELETED:wanted"]


def test_watch_bookmarks_carry_resource_version(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="s1"))
    rv = res.list_resource_slice().metadata.resource_version
    w = watch.Watch()
    for ev in w.stream(res.list_resource_slice, resource_version=rv, allow_watch_bookmarks=True,
                       timeout_seconds=10):
        assert ev["type"] == "BOOKMARK"
        assert ev["raw_object"]["kind"] == "ResourceSlice"
        assert int(ev["raw_object"]["metadata"]["resourceVersion"]) >= int(rv)
        w.stop()
        break


def test_watch_too_old_resource_version_is_410(embedded_server_factory: Any) -> None:
    srv = embedded_server_factory(history_size=3)
    api = api_client_for(srv)
    try:
        res = client.ResourceV1Api(api)
        for i in range(6):
            res.create_resource_slice(resource_slice("node-a", name=f"s{i}"))
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(res.list_resource_slice, resource_version="2", timeout_seconds=5):
                pass
        assert e.value.status == 410 and "Expired" in str(e.value.reason)
    finally:
        api.close()


def test_store_watch_in_process_and_gone() -> None:
    store = Store(history_size=2)

    async def run() -> list[str]:
        events: list[str] = []
        agen = store.watch("nodes", resource_version=store.resource_version)

        async def produce() -> None:
            await asyncio.to_thread(store.create, "nodes", {"metadata": {"name": "n1", "labels": {"a": "b"}}})
            await asyncio.to_thread(store.delete, "nodes", None, "n1")

        task = asyncio.create_task(produce())
        async for ev in agen:
            events.append(f'{ev["type"]}:{ev["object"]["metadata"]["name"]}')
            if ev["type"] == "DELETED":
                break
        await agen.aclose()
        await task
        return events

    assert asyncio.run(run()) == ["ADDED:n1", "DELETED:n1"]

    async def too_old() -> None:
        async for _ in store.watch("nodes", resource_version="1"):
            pass

    with pytest.raises(Gone) as e:
        asyncio.run(too_old())
    assert e.value.status()["reason"] == "Expired" and e.value.code == 410


def test_disconnected_watch_is_cleaned_up(embedded_server_factory: Any) -> None:
    srv = embedded_server_factory()
    api = api_client_for(srv)
    try:
        res = client.ResourceV1Api(api)
        resp = res.list_resource_slice(watch=True, _preload_content=False, timeout_seconds=60)
        assert _wait_for(lambda: len(srv.store._subs) == 1)
        resp.close()
        resp.release_conn()
        api.close()
        assert _wait_for(lambda: not srv.store._subs), "the server kept the watch of a gone client"
    finally:
        api.close()


def _wait_for(cond: Any, timeout: float = 10.0) -> bool:
    done = threading.Event()
    deadline = 0.0
    while deadline < timeout:
        if cond():
            return True
        done.wait(0.02)
        deadline += 0.02
    return bool(cond())
