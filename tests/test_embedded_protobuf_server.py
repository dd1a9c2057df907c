"""The embedded API server speaks client-go's protobuf defaults: protobuf request bodies for any served kind,
protobuf answers (objects, lists, Status errors) when Accept lists protobuf first, and length-delimited protobuf watch
frames. Requests go over HTTPS through the official client; answers are read with the generated classes."""

from __future__ import annotations

import struct
from typing import Any

from embedded_api_objects import api_client_for, claim, resource_slice
from kubernetes import client

from snn_dra.api.k8s.api.resource.v1 import generated_pb2 as resource_v1
from snn_dra.api.k8s.apimachinery.pkg.apis.meta.v1 import generated_pb2 as meta_v1
from snn_dra.api.k8s.apimachinery.pkg.runtime import generated_pb2 as runtime
from snn_dra.driver.embedded import protobuf

pytest_plugins = ["embedded_fixtures"]

PROTO = "application/vnd.kubernetes.protobuf"
CLIENT_GO_ACCEPT = "application/vnd.kubernetes.protobuf,application/json"
SLICES = "/apis/resource.k8s.io/v1/resourceslices"


def _call(api: client.ApiClient, method: str, path: str, body: bytes | None = None,
          accept: str = CLIENT_GO_ACCEPT) -> Any:
    cfg = api.configuration
    headers = {"Accept": accept, "Authorization": cfg.auth_settings()["BearerToken"]["value"]}
    if body is not None:
        headers["Content-Type"] = PROTO
    return api.call_api(method, cfg.host + path, header_params=headers, body=body)


def _unwrap(data: bytes) -> runtime.Unknown:
    assert data[:4] == b"k8s\x00"
    return runtime.Unknown.FromString(data[4:])


def test_protobuf_create_get_list_and_status(embedded_api_client: client.ApiClient) -> None:
    created = _call(embedded_api_client, "POST", SLICES, protobuf.encode(resource_slice("node-a", name="s1")))
    assert created.status == 201 and created.headers["Content-Type"] == PROTO
    unknown = _unwrap(created.read())
    assert (unknown.typeMeta.apiVersion, unknown.typeMeta.kind) == ("resource.k8s.io/v1", "ResourceSlice")
    slice_ = resource_v1.ResourceSlice.FromString(unknown.raw)
    assert slice_.metadata.name == "s1" and slice_.metadata.uid and slice_.metadata.creationTimestamp.seconds > 0
    assert slice_.spec.devices[0].capacity["snn.dra.dev/cores"].value.string == "128"

    got = resource_v1.ResourceSlice.FromString(_unwrap(_call(embedded_api_client, "GET", f"{SLICES}/s1").read()).raw)
    assert got.metadata.resourceVersion == slice_.metadata.resourceVersion
    listed = resource_v1.ResourceSliceList.FromString(_unwrap(_call(embedded_api_client, "GET", SLICES).read()).raw)
    assert [s.metadata.name for s in listed.items] == ["s1"] and listed.metadata.resourceVersion

    # The JSON clients see what the protobuf client wrote.
    as_json = client.ResourceV1Api(embedded_api_client).read_resource_slice("s1")
    assert as_json.spec.pool.generation == 1 and as_json.spec.node_name == "node-a"

    missing = _call(embedded_api_client, "GET", f"{SLICES}/nope")
    assert missing.status == 404 and missing.headers["Content-Type"] == PROTO
    status = meta_v1.Status.FromString(_unwrap(missing.read()).raw)
    assert (status.code, status.reason) == (404, "NotFound") and "nope" in status.message

    json_first = _call(embedded_api_client, "GET", f"{SLICES}/s1", accept="application/json")
    assert json_first.headers["Content-Type"].startswith("application/json")


def test_protobuf_update_and_namespaced_create_and_delete(embedded_api_client: client.ApiClient) -> None:
    path = "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims"
    assert _call(embedded_api_client, "POST", path, protobuf.encode(claim("c1"))).status == 201
    current = protobuf.decode(_call(embedded_api_client, "GET", f"{path}/c1").read())
    current["metadata"]["labels"] = {"team": "a"}
    updated = _call(embedded_api_client, "PUT", f"{path}/c1", protobuf.encode(current))
    assert updated.status == 200
    assert resource_v1.ResourceClaim.FromString(_unwrap(updated.read()).raw).metadata.labels["team"] == "a"
    options = protobuf.encode({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions",
                               "preconditions": {"uid": current["metadata"]["uid"]}})
    assert _call(embedded_api_client, "DELETE", f"{path}/c1", options).status == 200
    assert client.ResourceV1Api(embedded_api_client).list_namespaced_resource_claim("default").items == []


def test_bad_protobuf_body_is_a_clear_400(embedded_api_client: client.ApiClient) -> None:
    bad = _call(embedded_api_client, "POST", SLICES, b"k8s\x00\xff\xff", accept="application/json")
    assert bad.status == 400 and b"runtime.Unknown" in bad.read()


def _frames(resp: Any, count: int) -> list[meta_v1.WatchEvent]:
    out = []
    for _ in range(count):
        (length,) = struct.unpack(">I", resp.response.read(4))
        out.append(meta_v1.WatchEvent.FromString(resp.response.read(length)))
    return out


def test_protobuf_watch_streams_length_delimited_events(embedded_api_client: client.ApiClient) -> None:
    created = _call(embedded_api_client, "POST", SLICES, protobuf.encode(resource_slice("node-a", name="w1")))
    assert created.status == 201
    rv = resource_v1.ResourceSliceList.FromString(
        _unwrap(_call(embedded_api_client, "GET", SLICES).read()).raw).metadata.resourceVersion
    watch = _call(embedded_api_client, "GET", f"{SLICES}?watch=true&resourceVersion=0&timeoutSeconds=10")
    try:
        assert watch.headers["Content-Type"] == "application/vnd.kubernetes.protobuf;stream=watch"
        (added,) = _frames(watch, 1)
        assert added.type == "ADDED"
        assert resource_v1.ResourceSlice.FromString(_unwrap(added.object.raw).raw).metadata.name == "w1"
        _call(embedded_api_client, "DELETE", f"{SLICES}/w1")
        (deleted,) = _frames(watch, 1)
        assert deleted.type == "DELETED"
        gone = resource_v1.ResourceSlice.FromString(_unwrap(deleted.object.raw).raw)
        assert gone.metadata.name == "w1" and int(gone.metadata.resourceVersion) > int(rv)
    finally:
        watch.response.release_conn()


def test_protobuf_watch_error_event_is_a_status(embedded_server_factory: Any) -> None:
    api = api_client_for(embedded_server_factory(history_size=3))
    try:
        for i in range(6):
            assert _call(api, "POST", SLICES, protobuf.encode(resource_slice("node-a", name=f"s{i}"))).status == 201
        watch = _call(api, "GET", f"{SLICES}?watch=true&resourceVersion=2&timeoutSeconds=5")
        try:
            (error,) = _frames(watch, 1)
            assert error.type == "ERROR"
            unknown = _unwrap(error.object.raw)
            assert (unknown.typeMeta.apiVersion, unknown.typeMeta.kind) == ("v1", "Status")
            status = meta_v1.Status.FromString(unknown.raw)
            assert (status.code, status.reason) == (410, "Expired")
        finally:
            watch.response.release_conn()
    finally:
        api.close()
