"""``limit``/``continue`` paging through the official client: consistent snapshots, remainingItemCount, 410."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from embedded_api_objects import api_client_for, resource_slice
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from embedded_fixtures import ServerFactory

pytest_plugins = ["embedded_fixtures"]


def _names(items: list[client.ResourceV1ResourceSlice]) -> list[str]:
    return [i.metadata.name for i in items]


def test_pages_come_from_the_first_pages_snapshot(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    for i in range(5):
        res.create_resource_slice(resource_slice("node-a", name=f"s{i}"))
    first = res.list_resource_slice(limit=2)
    assert _names(first.items) == ["s0", "s1"]
    assert first.metadata.remaining_item_count == 3
    assert first.metadata._continue
    rv = first.metadata.resource_version
    # Writes between the pages: none of them may show in the later pages.
    res.delete_resource_slice("s3")
    res.patch_resource_slice("s2", {"metadata": {"labels": {"changed": "yes"}}},
                             _content_type="application/merge-patch+json")
    res.create_resource_slice(resource_slice("node-a", name="s9"))
    second = res.list_resource_slice(limit=2, _continue=first.metadata._continue)
    assert _names(second.items) == ["s2", "s3"]  # s3 as it was; s2 without the later label
    assert not (second.items[0].metadata.labels or {}).get("changed")
    assert second.metadata.resource_version == rv
    assert second.metadata.remaining_item_count == 1
    third = res.list_resource_slice(limit=2, _continue=second.metadata._continue)
    assert _names(third.items) == ["s4"]  # s9 came after the snapshot
    assert third.metadata._continue is None and third.metadata.remaining_item_count is None
    assert _names(res.list_resource_slice().items) == ["s0", "s1", "s2", "s4", "s9"]


def test_namespaced_paging_and_selectors(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    for ns in ("pa", "pb"):
        core.create_namespace({"metadata": {"name": ns}})
        for i in range(3):
            core.create_namespaced_event(ns, {"metadata": {"name": f"e{i}", "labels": {"odd": str(i % 2)}},
                                              "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
                                              "reason": "Test", "message": "m"})
    seen: list[str] = []
    token = None
    while True:
        page = core.list_event_for_all_namespaces(limit=2, _continue=token)
        seen += [f"{e.metadata.namespace}/{e.metadata.name}" for e in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert [s for s in seen if s.startswith("p")] == ["pa/e0", "pa/e1", "pa/e2", "pb/e0", "pb/e1", "pb/e2"]
    only_b = core.list_namespaced_event("pb", limit=1)
    assert _names(only_b.items) == ["e0"] and only_b.metadata.remaining_item_count == 2
    rest = core.list_namespaced_event("pb", limit=5, _continue=only_b.metadata._continue)
    assert _names(rest.items) == ["e1", "e2"]
    selected = core.list_namespaced_event("pb", limit=1, label_selector="odd=0")
    assert _names(selected.items) == ["e0"]
    assert selected.metadata._continue and selected.metadata.remaining_item_count is None  # unknown with a selector
    assert _names(core.list_namespaced_event("pb", label_selector="odd=0", _continue=selected.metadata._continue)
                  .items) == ["e2"]


def test_expired_continue_token_is_410_with_a_token_for_the_rest(embedded_server_factory: ServerFactory) -> None:
    server = embedded_server_factory(history_size=5)
    api = api_client_for(server)
    try:
        res = client.ResourceV1Api(api)
        for i in range(3):
            res.create_resource_slice(resource_slice("node-a", name=f"s{i}"))
        first = res.list_resource_slice(limit=1)
        for i in range(6):  # push the first page's version out of the 5-write history
            res.patch_resource_slice("s2", {"metadata": {"labels": {"n": str(i)}}},
                                     _content_type="application/merge-patch+json")
        with pytest.raises(ApiException) as exc:
            res.list_resource_slice(limit=1, _continue=first.metadata._continue)
        assert exc.value.status == 410
        status = json.loads(exc.value.body)
        assert status["reason"] == "Expired"
        assert status["message"].startswith("The provided continue parameter is too old to display a consistent "
                                            "list result.")
        rest = res.list_resource_slice(_continue=status["metadata"]["continue"])
        assert _names(rest.items) == ["s1", "s2"]  # continues after s0, on the current state
        assert rest.items[1].metadata.labels == {"n": "5"}
    finally:
        api.close()


def test_list_at_an_exact_version_and_bad_tokens(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="old"))
    rv = res.list_resource_slice().metadata.resource_version
    res.delete_resource_slice("old")
    res.create_resource_slice(resource_slice("node-a", name="new"))
    then = res.list_resource_slice(resource_version=rv, resource_version_match="Exact")
    assert _names(then.items) == ["old"] and then.metadata.resource_version == rv
    assert _names(res.list_resource_slice(resource_version=rv, resource_version_match="NotOlderThan").items) == [
        "new"]
    with pytest.raises(ApiException) as exc:
        res.list_resource_slice(limit=1, _continue="not-a-token")
    assert exc.value.status == 400 and "continue key is not valid" in exc.value.body
    with pytest.raises(ApiException) as exc:
        res.list_resource_slice(resource_version_match="Exact")
    assert exc.value.status == 422
    assert "resourceVersionMatch is forbidden unless resourceVersion is provided" in exc.value.body
