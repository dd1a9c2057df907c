"""Watch-list (client-go's informer default): initial ADDED events, the initial-events-end bookmark, then changes.

Through the official client over HTTPS; the invalid option combinations answer upstream's 422 and messages.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from embedded_api_objects import resource_slice
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

pytest_plugins = ["embedded_fixtures"]

END = "k8s.io/initial-events-end"


def _stream(res: client.ResourceV1Api, stop_after: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Raw events (type + the object as sent) of one watch of ResourceSlices, stopping after ``stop_after``."""
    seen: list[dict[str, Any]] = []
    w = watch.Watch()
    for ev in w.stream(res.list_resource_slice, timeout_seconds=10, **kwargs):
        seen.append({"type": ev["type"], "object": ev["raw_object"]})
        if len(seen) == stop_after:
            w.stop()
    return seen


def test_watch_list_sends_state_then_end_bookmark_then_changes(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    for n in ("a", "b", "c"):
        res.create_resource_slice(resource_slice("node-a", name=f"s-{n}"))
    list_rv = res.list_resource_slice().metadata.resource_version
    got: list[dict[str, Any]] = []
    started = threading.Event()

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(res.list_resource_slice, timeout_seconds=10, send_initial_events=True,
                           resource_version_match="NotOlderThan", allow_watch_bookmarks=True):
            if ev["type"] == "BOOKMARK" and END not in (ev["raw_object"]["metadata"].get("annotations") or {}):
                continue  # a periodic bookmark (idle stream) says nothing about the order
            got.append({"type": ev["type"], "object": ev["raw_object"]})
            if ev["type"] == "BOOKMARK":
                started.set()
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    assert started.wait(10), f"no initial-events-end bookmark; got {got}"
    res.create_resource_slice(resource_slice("node-a", name="s-live"))
    res.delete_resource_slice("s-a")
    t.join(15)
    assert not t.is_alive()
    kinds = [(e["type"], e["object"]["metadata"].get("name")) for e in got]
    assert kinds == [("ADDED", "s-a"), ("ADDED", "s-b"), ("ADDED", "s-c"), ("BOOKMARK", None),
                     ("ADDED", "s-live"), ("DELETED", "s-a")]
    bookmark = got[3]["object"]
    assert bookmark["kind"] == "ResourceSlice" and bookmark["apiVersion"] == "resource.k8s.io/v1"
    assert bookmark["metadata"]["annotations"] == {END: "true"}
    assert bookmark["metadata"]["resourceVersion"] == list_rv  # the version of the state just sent
    assert int(got[4]["object"]["metadata"]["resourceVersion"]) > int(list_rv)


def test_watch_list_from_a_version_sends_current_state_not_history(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="gone"))
    rv = res.list_resource_slice().metadata.resource_version
    res.delete_resource_slice("gone")
    res.create_resource_slice(resource_slice("node-a", name="kept"))
    now = res.list_resource_slice().metadata.resource_version
    seen = _stream(res, 2, resource_version=rv, send_initial_events=True, resource_version_match="NotOlderThan",
                   allow_watch_bookmarks=True)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in seen] == [("ADDED", "kept"), ("BOOKMARK", None)]
    assert seen[1]["object"]["metadata"]["resourceVersion"] == now


def test_watch_list_without_bookmarks_has_no_end_marker(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="one"))
    seen: list[str] = []
    w = watch.Watch()
    for ev in w.stream(res.list_resource_slice, timeout_seconds=1, send_initial_events=True,
                       resource_version_match="NotOlderThan"):
        seen.append(ev["type"])
    assert seen == ["ADDED"]  # the stream ran its full second: no bookmark of any kind


def test_send_initial_events_false_streams_only_changes(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="before"))
    got: list[tuple[str, str]] = []
    ready = threading.Event()

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(res.list_resource_slice, timeout_seconds=10, send_initial_events=False,
                           resource_version_match="NotOlderThan", allow_watch_bookmarks=True):
            if ev["type"] == "BOOKMARK":
                ready.set()  # periodic bookmark: the watch is established
                continue
            got.append((ev["type"], ev["raw_object"]["metadata"]["name"]))
            w.stop()

    t = threading.Thread(target=consume)
    t.start()
    assert ready.wait(10)
    res.create_resource_slice(resource_slice("node-a", name="after"))
    t.join(15)
    assert got == [("ADDED", "after")]


@pytest.mark.parametrize(("query", "messages"), [
    ({"send_initial_events": True},
     ["resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"]),
    ({"resource_version_match": "NotOlderThan"},
     ["resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
      "provided"]),
    ({"send_initial_events": True, "resource_version_match": "Exact"},
     ["resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
      'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"']),
])
def test_invalid_watch_options_are_422_as_upstream(embedded_api_client: client.ApiClient, query: dict[str, Any],
                                                   messages: list[str]) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    with pytest.raises(ApiException) as exc:
        res.list_resource_slice(watch=True, timeout_seconds=1, _preload_content=False, **query)
    assert exc.value.status == 422
    status = json.loads(exc.value.body)
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "ListOptions" and status["details"]["group"] == "meta.k8s.io"
    assert [f'{c["field"]}: {c["message"]}' for c in status["details"]["causes"]] == messages
    assert status["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')


def test_list_refuses_send_initial_events(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    with pytest.raises(ApiException) as exc:
        res.list_resource_slice(send_initial_events=True)
    assert exc.value.status == 422
    assert "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list" in exc.value.body


def test_watch_list_waits_for_a_version_not_yet_reached(embedded_server: EmbeddedApiServer,
                                                         embedded_api_client: client.ApiClient) -> None:
    """NotOlderThan a future version: 504 with the ResourceVersionTooLarge cause once the wait is over."""
    embedded_server.store.future_rv_wait = 0.2
    res = client.ResourceV1Api(embedded_api_client)
    future = str(int(res.list_resource_slice().metadata.resource_version) + 1000)
    with pytest.raises(ApiException) as exc:
        res.list_resource_slice(watch=True, timeout_seconds=1, resource_version=future, send_initial_events=True,
                                resource_version_match="NotOlderThan", _preload_content=False)
    assert exc.value.status == 504
