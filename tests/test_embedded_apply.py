"""Server-side apply through the official client: managedFields per manager, 409 conflicts, force, Update owners."""

from __future__ import annotations

import json
from typing import Any

import pytest
from embedded_api_objects import resource_slice
from kubernetes import client
from kubernetes.client.rest import ApiException

pytest_plugins = ["embedded_fixtures"]

APPLY = "application/apply-patch+yaml"


def _claim_cfg(**labels: str) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "c", "labels": labels},
            "spec": {"devices": {"requests": [{"name": "r", "exactly": {"deviceClassName": "snn"}}]}}}


def _managers(obj: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.manager, m.operation): m.fields_v1 for m in obj.metadata.managed_fields or []}


def _apply_raw(api: client.ApiClient, path: str, body: dict[str, Any], manager: str,
               force: bool = False) -> tuple[int, dict[str, Any]]:
    """Apply with the official client's typed PATCH (apply content type); the status and the decoded body."""
    parts = path.strip("/").split("/")
    kwargs: dict[str, Any] = {"field_manager": manager, "_content_type": APPLY, "_preload_content": False}
    if force:
        kwargs["force"] = True
    if parts[:3] == ["apis", "resource.k8s.io", "v1"]:
        typed: Any = client.ResourceV1Api(api)
        rest = parts[3:]
    else:
        typed = client.CoreV1Api(api)
        rest = parts[2:]
    singular = {"resourceclaims": "resource_claim", "resourceslices": "resource_slice", "pods": "pod"}
    try:
        if rest[0] == "namespaces":
            resp = getattr(typed, f"patch_namespaced_{singular[rest[2]]}")(rest[3], rest[1], body, **kwargs)
        else:
            resp = getattr(typed, f"patch_{singular[rest[0]]}")(rest[1], body, **kwargs)
    except ApiException as e:
        return int(e.status), json.loads(e.body)
    return int(resp.status), json.loads(resp.data)


def test_apply_records_managed_fields_and_conflicts(embedded_api_client: client.ApiClient) -> None:
    api = embedded_api_client
    path = "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/c"
    code, obj = _apply_raw(api, path, _claim_cfg(team="a"), "alice")
    assert code == 201, obj
    fields = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert fields["alice"]["operation"] == "Apply" and fields["alice"]["fieldsType"] == "FieldsV1"
    assert fields["alice"]["apiVersion"] == "resource.k8s.io/v1"
    assert fields["alice"]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:team": {}}},
        "f:spec": {"f:devices": {"f:requests": {}}}}  # requests is an atomic list upstream
    # Bob sets the same label to another value: 409 naming the field and the manager.
    code, status = _apply_raw(api, path, {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                                          "metadata": {"name": "c", "labels": {"team": "b", "bob": "1"}}}, "bob")
    assert code == 409, status
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "alice": .metadata.labels.team'
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "alice"',
                                            "field": ".metadata.labels.team"}]
    # The same value is no conflict: both own it.
    code, obj = _apply_raw(api, path, {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                                       "metadata": {"name": "c", "labels": {"team": "a", "bob": "1"}}}, "bob")
    assert code == 200, obj
    got = {m["manager"]: m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
    assert got["bob"] == {"f:metadata": {"f:labels": {"f:bob": {}, "f:team": {}}}}
    assert "f:team" in got["alice"]["f:metadata"]["f:labels"]
    # force=true takes the field over.
    code, obj = _apply_raw(api, path, {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                                       "metadata": {"name": "c", "labels": {"team": "b", "bob": "1"}}}, "bob",
                           force=True)
    assert code == 200, obj
    assert obj["metadata"]["labels"] == {"team": "b", "bob": "1"}
    got = {m["manager"]: m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
    assert "f:labels" not in got["alice"].get("f:metadata", {})
    assert got["bob"]["f:metadata"]["f:labels"] == {"f:bob": {}, "f:team": {}}


def test_fields_a_manager_stops_applying_are_removed_unless_others_own_them(
        embedded_api_client: client.ApiClient) -> None:
    api = embedded_api_client
    path = "/apis/resource.k8s.io/v1/resourceslices/s"
    body = resource_slice("node-a", name="s", labels={"a": "1", "shared": "x"})
    assert _apply_raw(api, path, body, "one")[0] == 201
    other = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
             "metadata": {"name": "s", "labels": {"shared": "x"}}}
    assert _apply_raw(api, path, other, "two")[0] == 200
    body["metadata"]["labels"] = {}
    code, obj = _apply_raw(api, path, body, "one")
    assert code == 200, obj
    assert obj["metadata"]["labels"] == {"shared": "x"}  # "a" removed; "shared" kept: "two" still applies it


def test_update_managers_are_recorded_and_conflict_with_apply(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="u"), field_manager="creator")
    obj = res.patch_resource_slice("u", {"metadata": {"labels": {"tier": "gold"}}}, field_manager="labeler",
                                   _content_type="application/merge-patch+json")
    managers = _managers(obj)
    assert set(managers) == {("creator", "Update"), ("labeler", "Update")}
    assert managers[("labeler", "Update")] == {"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}}
    assert "f:spec" in managers[("creator", "Update")]
    entry = next(m for m in obj.metadata.managed_fields if m.manager == "labeler")
    assert entry.api_version == "resource.k8s.io/v1" and entry.fields_type == "FieldsV1" and entry.time
    # An Update-owned field with another value is an apply conflict too (Update managers named with version).
    code, status = _apply_raw(embedded_api_client, "/apis/resource.k8s.io/v1/resourceslices/u",
                              {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                               "metadata": {"name": "u", "labels": {"tier": "silver"}}}, "applier")
    assert code == 409
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "labeler" using resource.k8s.io/v1: '
                                 ".metadata.labels.tier")
    # Without a fieldManager the client's User-Agent product names the manager (as upstream).
    obj = res.patch_resource_slice("u", {"metadata": {"labels": {"x": "y"}}},
                                   _content_type="application/merge-patch+json")
    assert any(m.manager == "OpenAPI-Generator" for m in obj.metadata.managed_fields)


def test_apply_merges_associative_lists_by_key(embedded_api_client: client.ApiClient) -> None:
    api = embedded_api_client
    core = client.CoreV1Api(api)
    path = "/api/v1/namespaces/default/pods/p"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "busybox"}]}}
    assert _apply_raw(api, path, pod, "first")[0] == 201
    code, obj = _apply_raw(api, path, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}}, "second")
    assert code == 200, obj
    stored = core.read_namespaced_pod("p", "default")
    assert [c.name for c in stored.spec.containers] == ["a"]  # the other manager's containers stay
    fields = _managers(stored)[("first", "Apply")]
    assert fields["f:spec"]["f:containers"] == {'k:{"name":"a"}': {".": {}, "f:image": {}, "f:name": {}}}
    code, status = _apply_raw(api, path, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                          "spec": {"containers": [{"name": "a", "image": "nginx"}]}}, "second")
    assert code == 409 and status["details"]["causes"][0]["field"] == '.spec.containers[name="a"].image'


def test_apply_needs_a_field_manager_and_force_only_applies(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="f"))
    with pytest.raises(ApiException) as exc:
        res.patch_resource_slice("f", {"metadata": {"labels": {"a": "b"}}}, force=True,
                                 _content_type="application/merge-patch+json")
    assert exc.value.status == 422 and "force: Forbidden: may not be specified for non-apply patch" in exc.value.body
    with pytest.raises(ApiException) as exc:
        res.patch_resource_slice("f", {"metadata": {"labels": {"a": "b"}}}, _content_type=APPLY)
    assert exc.value.status == 400 and "fieldManager is required" in exc.value.body
