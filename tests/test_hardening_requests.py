"""Request bodies and edge requests answered like upstream, over HTTPS with the official client's transport.

YAML alias bombs (CVE-2019-11253 class), deep nesting, oversized bodies, integers beyond int64, protected
namespaces, a watch from a future resourceVersion, plain HTTP on the TLS port; and one slow request does not
hold up the others (ordering shown with events, not timings).
"""

from __future__ import annotations

import json
import resource
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from embedded_api_objects import api_client_for, claim, resource_slice
from hardening_support import send
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.bodies import MAX_NESTING_DEPTH, MAX_REQUEST_BODY_BYTES
from snn_dra.driver.embedded.store import Store
from snn_dra.driver.validation import validate_object
from snn_dra.driver.validation.errors import FieldError

pytest_plugins = ["embedded_fixtures"]

BILLION_LAUGHS = b"""apiVersion: v1
kind: Namespace
metadata:
  name: lol
  annotations:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_yaml_alias_bomb_is_refused_with_400_without_expanding(embedded_api_client: client.ApiClient) -> None:
    assert len(BILLION_LAUGHS) < 1024
    before = peak_rss_mib()
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces", BILLION_LAUGHS, content_type="application/yaml",
                 timeout=20)
    assert reply.status == 400, reply.body
    assert "excessive aliasing" in reply.json()["message"]
    assert peak_rss_mib() - before < 50  # expanded, it would be 9**9 strings: gigabytes
    # A recursive anchor and a modest, legitimate use of aliases.
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces", b"metadata: &m {name: *m}\n",
                 content_type="application/yaml")
    assert reply.status == 400 and "contains itself" in reply.json()["message"]
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces",
                 b"metadata:\n  name: ok\n  labels: &l {team: snn}\n  annotations: *l\n",
                 content_type="application/yaml")
    assert reply.status == 201, reply.body


@pytest.mark.parametrize(("body", "ctype"), [
    (b'{"metadata":' * 20000 + b"{}" + b"}" * 20000, "application/json"),
    (b"[" * 50000 + b"]" * 50000, "application/json"),
    (b"metadata: " + b"[" * 50000 + b"]" * 50000, "application/yaml"),
    (json.dumps({"metadata": {"name": "deep"}, "spec": {"x": "DEEP"}}).replace(
        '"DEEP"', "[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH).encode(), "application/json"),
])
def test_deep_nesting_is_a_400_not_a_500(embedded_api_client: client.ApiClient, body: bytes, ctype: str) -> None:
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces", body, content_type=ctype)
    assert reply.status == 400, reply.body[:300]
    assert "nest" in reply.json()["message"]  # ours: "deeper than 100 levels"; libyaml's own limit says so too


def test_body_over_the_limit_is_413_like_upstream(embedded_api_client: client.ApiClient) -> None:
    assert MAX_REQUEST_BODY_BYTES == 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes
    big = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "big", "annotations": {"a": "x" * MAX_REQUEST_BODY_BYTES}}}
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces", big)
    assert reply.status == 413, reply.body[:300]
    st = reply.json()
    assert st["reason"] == "RequestEntityTooLarge" and st["message"] == "Request entity too large: limit is 3145728"
    # Just under the limit the body is read and judged on its content (annotations over 256 KiB: 422).
    big["metadata"]["annotations"]["a"] = "x" * (MAX_REQUEST_BODY_BYTES - 200)
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces", big)
    assert reply.status == 422 and "metadata.annotations" in reply.fields()
    # The server still serves after both.
    assert send(embedded_api_client, "GET", "/api/v1/namespaces/default").status == 200


@pytest.mark.parametrize("ctype", ["application/json", "application/yaml"])
def test_integers_beyond_int64_in_dra_objects_name_the_field(embedded_api_client: client.ApiClient,
                                                             ctype: str) -> None:
    body = resource_slice("node-a", name="huge")
    body["spec"]["pool"]["generation"] = 2**63
    raw = json.dumps(body).encode()  # JSON is YAML too
    reply = send(embedded_api_client, "POST", "/apis/resource.k8s.io/v1/resourceslices", raw, content_type=ctype)
    assert reply.status == 422 and "spec.pool.generation" in reply.fields(), reply.body
    body["spec"]["pool"]["generation"] = 2**63 - 1  # the largest int64 is fine
    reply = send(embedded_api_client, "POST", "/apis/resource.k8s.io/v1/resourceslices", body, content_type=ctype)
    assert reply.status == 201, reply.body
    c = claim("wide", count=2**64)
    reply = send(embedded_api_client, "POST", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims", c)
    assert reply.status == 422 and "spec.devices.requests[0].exactly.count" in reply.fields(), reply.body


@pytest.mark.parametrize("namespace", ["default", "kube-system", "kube-public"])
def test_protected_namespaces_cannot_be_deleted(embedded_api_client: client.ApiClient, namespace: str) -> None:
    reply = send(embedded_api_client, "DELETE", f"/api/v1/namespaces/{namespace}")
    assert reply.status == 403, reply.body
    st = reply.json()
    assert st["reason"] == "Forbidden"
    assert st["message"] == f'namespaces "{namespace}" is forbidden: this namespace may not be deleted'
    assert send(embedded_api_client, "GET", f"/api/v1/namespaces/{namespace}").json()["status"]["phase"] == "Active"
    # Other namespaces still go.
    assert send(embedded_api_client, "DELETE", "/api/v1/namespaces/kube-node-lease").status == 200


def test_watch_from_a_future_resource_version_is_a_504_timeout(embedded_server: EmbeddedApiServer,
                                                               embedded_api_client: client.ApiClient) -> None:
    embedded_server.store.future_rv_wait = 0.3
    current = int(embedded_server.store.resource_version)
    reply = send(embedded_api_client, "GET", f"/api/v1/namespaces?watch=true&resourceVersion={current + 1000}")
    assert reply.status == 504, reply.body
    st = reply.json()
    assert st["reason"] == "Timeout"
    assert st["message"] == f"Timeout: Too large resource version: {current + 1000}, current: {current}"
    assert st["details"]["causes"] == [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]


def test_watch_from_a_version_reached_while_waiting_streams(embedded_server: EmbeddedApiServer,
                                                            embedded_api_client: client.ApiClient) -> None:
    store = embedded_server.store
    store.future_rv_wait = 30.0
    target = int(store.resource_version) + 1
    result: dict[str, Any] = {}

    def watch() -> None:
        result["reply"] = send(embedded_api_client, "GET",
                               f"/api/v1/namespaces?watch=true&resourceVersion={target - 1}&timeoutSeconds=1")

    # A watch from exactly "now" must not wait at all; then a version one ahead is reached by a write.
    watch()
    assert result["reply"].status == 200
    thread = threading.Thread(target=lambda: result.update(
        late=send(embedded_api_client, "GET", f"/api/v1/namespaces?watch=true&resourceVersion={target}"
                                              "&timeoutSeconds=1")))
    thread.start()
    store.create("namespaces", {"metadata": {"name": "arrives"}})
    thread.join(30)
    assert result["late"].status == 200


def test_plain_http_on_the_tls_port_gets_upstreams_400(embedded_server: EmbeddedApiServer) -> None:
    with socket.create_connection((embedded_server.host, embedded_server.port), timeout=10) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    # TLS on the same port still works afterwards.
    api = api_client_for(embedded_server)
    try:
        assert client.VersionApi(api).get_code().major == "1"
    finally:
        api.close()


class _Gate:
    """A validator that holds one chosen write until released: a stand-in for a slow CEL compile."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
        if (obj.get("metadata") or {}).get("name") == "slow":
            self.entered.set()
            assert self.release.wait(60), "the test never released the slow write"
        return validate_object(obj, old, profile)


@pytest.fixture
def gated_server(tmp_path: Any) -> Iterator[tuple[EmbeddedApiServer, _Gate]]:
    gate = _Gate()
    srv = EmbeddedApiServer(store=Store("1.37", validator=gate), state_dir=tmp_path / "srv").start()
    yield srv, gate
    gate.release.set()
    srv.stop()


def test_a_slow_write_holds_up_no_other_request(gated_server: tuple[EmbeddedApiServer, _Gate]) -> None:
    srv, gate = gated_server
    api = api_client_for(srv)
    try:
        outcome: dict[str, Any] = {}
        slow = threading.Thread(target=lambda: outcome.update(slow=send(
            api, "POST", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims", claim("slow"))))
        slow.start()
        assert gate.entered.wait(30), "the slow write never reached validation"
        # While it is held inside validation: reads, a list, another write and a watch event all complete.
        assert send(api, "GET", "/api/v1/namespaces/default").status == 200
        assert send(api, "GET", "/apis/resource.k8s.io/v1/resourceclaims").status == 200
        assert send(api, "POST", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims",
                    claim("fast")).status == 201
        assert send(api, "DELETE", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/fast").status == 200
        assert slow.is_alive() and "slow" not in outcome
        gate.release.set()
        slow.join(30)
        assert outcome["slow"].status == 201
    finally:
        api.close()


def test_regressions_found_by_the_fuzzer(embedded_api_client: client.ApiClient) -> None:
    api = embedded_api_client
    # A long digit string in a quantity once made the quantity pattern backtrack for minutes, GIL held.
    c = claim("q", capacity={"requests": {f"{'snn.dra.dev'}/cores": "1" * 30_000 + "x"}})
    reply = send(api, "POST", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims", c, timeout=20)
    assert reply.status == 422, reply.body[:300]
    # An unknown field whose name holds a newline is reported in a Warning header that stays a valid header.
    body = {**claim("w"), "bad\nfield": 1}
    reply = send(api, "POST", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims?fieldValidation=Warn",
                 body)
    assert reply.status == 201, reply.body[:300]
    # Mistyped values deep in objects the semantic rules read are 422s, never 500s.
    for path, obj in [
        ("/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod",
                                             "metadata": {"name": "p", "namespace": "default"},
                                             "spec": {"containers": [{"name": ["x"], "image": "i"}]}}),
        ("/apis/resource.k8s.io/v1/namespaces/default/resourceclaimtemplates",
         {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
          "metadata": {"name": "t", "namespace": "default"}, "spec": {"spec": {"devices": 2**63}}}),
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": []}}),
    ]:
        reply = send(api, "POST", path, obj)
        assert reply.status in (400, 422), (path, reply.body[:300])


def test_unknown_fields_with_odd_names_are_dropped_under_warn(embedded_api_client: client.ApiClient) -> None:
    """fieldValidation=Warn drops unknown fields by their path; keys that are empty or hold dots are found too
    (the empty key under metadata once dropped all of metadata, and the write then failed with a 500)."""
    api = embedded_api_client
    path = "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims"
    assert send(api, "POST", path, claim("odd")).status == 201
    reply = send(api, "PATCH", f"{path}/odd?fieldValidation=Warn",
                 {"metadata": {"": {"a": 1}, "labels": {"team": "snn"}}, "spec": {"a.b": 1}},
                 content_type="application/merge-patch+json")
    # Dropped before the rules run: the (immutable) spec is unchanged, so the label change goes through.
    assert reply.status == 200, reply.body[:300]
    meta = reply.json()["metadata"]
    assert meta["labels"] == {"team": "snn"} and "" not in meta and meta["name"] == "odd"
    assert "a.b" not in reply.json()["spec"]
    reply = send(api, "PATCH", f"{path}/odd", {"spec": {"a.b": 1}}, content_type="application/merge-patch+json")
    assert reply.status == 200  # the server's default for PATCH is Warn, as upstream
