"""CRUD, patches, status, selectors, GC, finalizers and errors through the official client over HTTPS."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

import pytest
from embedded_api_objects import DRIVER, claim, device_class, node, resource_slice
from kubernetes import client
from kubernetes.client.rest import ApiException

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

pytest_plugins = ["embedded_fixtures"]


def raw(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call an API method and return the JSON body (avoids model round-trips hiding fields)."""
    resp = call(*args, _preload_content=False, **kwargs)
    data: dict[str, Any] = json.loads(resp.data)
    return data


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_get_list_generate_name(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    created = res.create_resource_slice(resource_slice("node-a"))
    name = created.metadata.name
    assert name.startswith(f"node-a-{DRIVER}-") and len(name) == len(f"node-a-{DRIVER}-") + 5
    assert created.metadata.uid and created.metadata.generation == 1
    assert int(created.metadata.resource_version) > 0
    got = res.read_resource_slice(name)
    assert got.spec.devices[0].name == "chip-0"
    assert [s.metadata.name for s in res.list_resource_slice().items] == [name]
    with pytest.raises(ApiException) as e:
        res.create_resource_slice(resource_slice("node-a", name=name))
    assert e.value.status == 409 and status_of(e.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as e:
        res.read_resource_slice("missing")
    st = status_of(e.value)
    assert e.value.status == 404 and st["reason"] == "NotFound"
    assert st["message"] == 'resourceslices.resource.k8s.io "missing" not found'


def test_update_conflicts_on_stale_resource_version(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    first = raw(res.create_resource_slice, resource_slice("node-a", name="s1"))
    second = json.loads(json.dumps(first))
    first["metadata"]["labels"] = {"a": "1"}
    updated = raw(res.replace_resource_slice, "s1", first)
    assert updated["metadata"]["labels"] == {"a": "1"}
    assert int(updated["metadata"]["resourceVersion"]) > int(second["metadata"]["resourceVersion"])
    assert updated["metadata"]["generation"] == 1  # metadata-only change
    second["metadata"]["labels"] = {"b": "2"}
    with pytest.raises(ApiException) as e:
        res.replace_resource_slice("s1", second)
    assert e.value.status == 409
    st = status_of(e.value)
    assert st["reason"] == "Conflict" and "the object has been modified" in st["message"]
    spec_change = raw(res.read_resource_slice, "s1")
    spec_change["spec"]["pool"]["generation"] = 2
    assert raw(res.replace_resource_slice, "s1", spec_change)["metadata"]["generation"] == 2


def test_every_patch_type(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_device_class(device_class("cls"))
    merged = raw(res.patch_device_class, "cls", {"metadata": {"labels": {"tier": "gold"}}},
                 _content_type="application/merge-patch+json")
    assert merged["metadata"]["labels"] == {"tier": "gold"}
    strategic = raw(res.patch_device_class, "cls", {"metadata": {"labels": {"zone": "a"}}},
                    _content_type="application/strategic-merge-patch+json")
    assert strategic["metadata"]["labels"] == {"tier": "gold", "zone": "a"}
    jp = raw(res.patch_device_class, "cls", [{"op": "remove", "path": "/metadata/labels/tier"},
                                             {"op": "add", "path": "/spec/selectors/-",
                                              "value": {"cel": {"expression": "true"}}}],
             _content_type="application/json-patch+json")
    assert jp["metadata"]["labels"] == {"zone": "a"} and len(jp["spec"]["selectors"]) == 2
    with pytest.raises(ApiException) as e:
        res.patch_device_class("cls", [{"op": "test", "path": "/metadata/name", "value": "other"}],
                               _content_type="application/json-patch+json")
    assert e.value.status == 422
    applied = raw(res.patch_device_class, "applied", device_class("applied"), field_manager="test", force=True,
                  _content_type="application/apply-patch+yaml")
    assert applied["metadata"]["name"] == "applied" and applied["metadata"]["uid"]
    body = device_class("applied")
    body["metadata"]["labels"] = {"x": "y"}
    again = raw(res.patch_device_class, "applied", body, field_manager="test", force=True,
                _content_type="application/apply-patch+yaml")
    assert again["metadata"]["uid"] == applied["metadata"]["uid"] and again["metadata"]["labels"] == {"x": "y"}
    stale = {"metadata": {"resourceVersion": applied["metadata"]["resourceVersion"], "labels": {"z": "1"}}}
    with pytest.raises(ApiException) as e:
        res.patch_device_class("applied", stale, _content_type="application/merge-patch+json")
    assert e.value.status == 409


def test_claim_defaulting_status_subresource_and_immutable_spec(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    c = raw(res.create_namespaced_resource_claim, "default", claim("c1"))
    ex = c["spec"]["devices"]["requests"][0]["exactly"]
    assert ex["allocationMode"] == "ExactCount" and ex["count"] == 1
    assert "status" not in c or not c["status"]
    allocation = {"devices": {"results": [{"request": "npu", "driver": DRIVER, "pool": "node-a",
                                           "device": "chip-0"}]}}
    # status changes on the main resource are ignored ...
    c["status"] = {"allocation": allocation}
    c = raw(res.replace_namespaced_resource_claim, "c1", "default", c)
    assert not c.get("status")
    # ... and only the /status subresource writes them, ignoring spec changes there.
    c["status"] = {"allocation": allocation}
    c["spec"]["devices"]["requests"][0]["exactly"]["count"] = 5
    c = raw(res.replace_namespaced_resource_claim_status, "c1", "default", c)
    assert c["status"]["allocation"]["devices"]["results"][0]["device"] == "chip-0"
    assert c["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1
    patched = raw(res.patch_namespaced_resource_claim_status, "c1", "default",
                  {"status": {"reservedFor": [{"resource": "pods", "name": "p", "uid": "u1"}]}},
                  _content_type="application/merge-patch+json")
    assert patched["status"]["reservedFor"][0]["uid"] == "u1"
    with pytest.raises(ApiException) as e:
        res.patch_namespaced_resource_claim("c1", "default",
                                            {"spec": {"devices": {"requests": [{"name": "other", "exactly": {
                                                "deviceClassName": "x"}}]}}},
                                            _content_type="application/merge-patch+json")
    st = status_of(e.value)
    assert e.value.status == 422 and st["reason"] == "Invalid"
    assert any(c["field"] == "spec" and "immutable" in c["message"] for c in st["details"]["causes"])
    assert st["message"].startswith('ResourceClaim.resource.k8s.io "c1" is invalid: ')
    assert "spec: Invalid value: " in st["message"]


def test_slice_immutable_fields(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    s = raw(res.create_resource_slice, resource_slice("node-a", name="s1"))
    s["spec"]["nodeName"] = "node-b"
    s["spec"]["pool"]["name"] = "other"
    with pytest.raises(ApiException) as e:
        res.replace_resource_slice("s1", s)
    fields = {c["field"] for c in status_of(e.value)["details"]["causes"]}
    assert {"spec.nodeName", "spec.pool.name"} <= fields


def test_invalid_metadata_is_422_with_field_path(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    with pytest.raises(ApiException) as e:
        res.create_resource_slice(resource_slice("node-a", name="Bad_Name"))
    st = status_of(e.value)
    assert e.value.status == 422 and st["kind"] == "Status" and st["reason"] == "Invalid"
    assert st["details"]["causes"][0]["field"] == "metadata.name"
    assert st["details"]["causes"][0]["reason"] == "FieldValueInvalid"
    assert len(st["details"]["causes"]) == 1
    assert st["message"].startswith('ResourceSlice.resource.k8s.io "Bad_Name" is invalid: metadata.name: '
                                    'Invalid value: "Bad_Name"')
    with pytest.raises(ApiException) as e:
        res.create_resource_slice(resource_slice("node-a", name="ok", labels={"bad key!": "v"}))
    assert status_of(e.value)["details"]["causes"][0]["field"] == "metadata.labels"


def test_namespaced_create_needs_existing_namespace(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    with pytest.raises(ApiException) as e:
        res.create_namespaced_resource_claim("nope", claim("c1", namespace="nope"))
    assert e.value.status == 404 and status_of(e.value)["message"] == 'namespaces "nope" not found'
    with pytest.raises(ApiException) as e:
        res.create_namespaced_resource_claim("default", claim("c1", namespace="kube-system"))
    assert e.value.status == 400


def test_label_and_field_selectors(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="a1", labels={"tier": "gold"}))
    res.create_resource_slice(resource_slice("node-a", name="a2", pool="node-a-extra"))
    res.create_resource_slice(resource_slice("node-b", name="b1", labels={"tier": "silver"}))

    def names(**kw: Any) -> list[str]:
        return [s.metadata.name for s in res.list_resource_slice(**kw).items]

    assert names(field_selector="spec.nodeName=node-a") == ["a1", "a2"]
    assert names(field_selector=f"spec.driver={DRIVER},spec.nodeName!=node-a") == ["b1"]
    assert names(field_selector="spec.pool.name=node-a-extra") == ["a2"]
    assert names(field_selector="metadata.name=b1") == ["b1"]
    assert names(label_selector="tier=gold") == ["a1"]
    assert names(label_selector="tier in (gold,silver)") == ["a1", "b1"]
    assert names(label_selector="!tier") == ["a2"]
    with pytest.raises(ApiException) as e:
        res.list_resource_slice(field_selector="spec.devices=x")
    assert e.value.status == 400 and "field label not supported" in status_of(e.value)["message"]


def test_pod_field_selector_and_binding(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    core.create_namespaced_pod("default", pod)
    assert core.read_namespaced_pod("p1", "default").status.phase == "Pending"
    core.create_namespaced_binding("default", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
                                               "target": {"kind": "Node", "name": "node-a"}},
                                   _preload_content=False)
    assert [p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a").items] \
        == ["p1"]
    assert core.list_namespaced_pod("default", field_selector="spec.nodeName=node-b").items == []


def test_garbage_collection_of_slices_owned_by_deleted_node(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    res = client.ResourceV1Api(embedded_api_client)
    n = core.create_node(node("node-a"))
    other = core.create_node(node("node-b"))
    res.create_resource_slice(resource_slice("node-a", owner_uid=n.metadata.uid))
    res.create_resource_slice(resource_slice("node-a", owner_uid=n.metadata.uid, pool="second"))
    kept = res.create_resource_slice(resource_slice("node-b", owner_uid=other.metadata.uid))
    assert len(res.list_resource_slice().items) == 3
    core.delete_node("node-a")
    assert [s.metadata.name for s in res.list_resource_slice().items] == [kept.metadata.name]


def test_claims_owned_by_deleted_pod_are_collected(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    res = client.ResourceV1Api(embedded_api_client)
    pod = core.create_namespaced_pod("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                                 "spec": {"containers": [{"name": "c", "image": "i"}]}})
    body = claim("p-npu")
    body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "p",
                                            "uid": pod.metadata.uid, "controller": True}]
    res.create_namespaced_resource_claim("default", body)
    core.delete_namespaced_pod("p", "default")
    assert res.list_namespaced_resource_claim("default").items == []


def test_finalizers_delay_deletion(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    body = claim("c1")
    body["metadata"]["finalizers"] = ["resource.kubernetes.io/delete-protection"]
    res.create_namespaced_resource_claim("default", body)
    res.delete_namespaced_resource_claim("c1", "default")
    marked = raw(res.read_namespaced_resource_claim, "c1", "default")
    assert marked["metadata"]["deletionTimestamp"]
    raw(res.patch_namespaced_resource_claim, "c1", "default", {"metadata": {"finalizers": None}},
        _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as e:
        res.read_namespaced_resource_claim("c1", "default")
    assert e.value.status == 404


def test_delete_preconditions_and_deletecollection(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    s = res.create_resource_slice(resource_slice("node-a", name="s1"))
    with pytest.raises(ApiException) as e:
        res.delete_resource_slice("s1", body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")))
    assert e.value.status == 409 and "Precondition failed" in status_of(e.value)["message"]
    with pytest.raises(ApiException) as e:
        res.delete_resource_slice("s1", body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version="1")))
    assert e.value.status == 409
    res.delete_resource_slice("s1", body=client.V1DeleteOptions(preconditions=client.V1Preconditions(
        uid=s.metadata.uid, resource_version=s.metadata.resource_version)))
    assert res.list_resource_slice().items == []
    for i in range(3):
        res.create_resource_slice(resource_slice("node-a", name=f"x{i}", labels={"g": "1" if i else "2"}))
    res.delete_collection_resource_slice(label_selector="g=1")
    assert [s.metadata.name for s in res.list_resource_slice().items] == ["x0"]


def test_unauthenticated_requests_get_401_status(embedded_server: EmbeddedApiServer) -> None:
    for token in (None, "wrong-token"):
        cfg = client.Configuration()
        cfg.host = embedded_server.url
        cfg.ssl_ca_cert = str(embedded_server.ca_path)
        if token:
            cfg.api_key = {"authorization": f"Bearer {token}"}
        with client.ApiClient(cfg) as api, pytest.raises(ApiException) as e:
            client.ResourceV1Api(api).list_resource_slice()
        assert e.value.status == 401
        assert status_of(e.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                      "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_server_is_https_on_loopback_with_private_kubeconfig(embedded_server: EmbeddedApiServer) -> None:
    assert embedded_server.url.startswith("https://127.0.0.1:")
    assert embedded_server.kubeconfig_path.stat().st_mode & 0o777 == 0o600
    assert (embedded_server.state_dir / "pki" / "server.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedApiServer(host="0.0.0.0")



def _post(server: EmbeddedApiServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    """A raw HTTPS POST: the official client refuses unknown fields before sending them."""
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    conn = http.client.HTTPSConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), context=ctx, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {server.token}",
                                                      "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), resp.getheader("Warning") or ""
    finally:
        conn.close()


def test_unknown_fields_follow_field_validation(embedded_server: EmbeddedApiServer) -> None:
    body = resource_slice("node-a", name="typo")
    body["spec"]["devices"][0]["atributes"] = {"x": {"int": 1}}
    path = "/apis/resource.k8s.io/v1/resourceslices"
    code, st, _ = _post(embedded_server, path + "?fieldValidation=Strict", body)
    assert code == 400 and st["reason"] == "BadRequest"
    assert 'strict decoding error: unknown field "spec.devices[0].atributes"' in st["message"]
    # Without fieldValidation the server default (Warn) drops the field and says so in a Warning header.
    code, created, warning = _post(embedded_server, path, body)
    assert code == 201 and "atributes" not in created["spec"]["devices"][0]
    assert 'unknown field \\"spec.devices[0].atributes\\"' in warning


def test_count_zero_is_defaulted_and_templates_keep_an_empty_spec_metadata(
    embedded_api_client: client.ApiClient,
) -> None:
    """As a real API server (found by e2e/test_differential_validation.py on the local cluster): v1 ``count`` is
    omitempty, so 0 decodes as unset and is defaulted to 1 instead of refused; a template's ``spec.metadata`` is a
    struct upstream and is always stored, ``{}`` when empty."""
    res = client.ResourceV1Api(embedded_api_client)
    body = claim("c0")
    body["spec"]["devices"]["requests"][0]["exactly"]["count"] = 0
    c = raw(res.create_namespaced_resource_claim, "default", body)
    assert c["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "t0"},
        "spec": {"spec": claim("unused")["spec"]},
    }
    t = raw(res.create_namespaced_resource_claim_template, "default", template)
    assert t["spec"]["metadata"] == {}
    assert t["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1
