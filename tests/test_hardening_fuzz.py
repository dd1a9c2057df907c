"""Fuzzed request bodies never get a 5xx: random JSON and mutated DRA and core objects, as JSON, YAML (with alias
chains), merge patches and mangled bytes, over HTTPS. The full run (10,000+ inputs, hold-up and memory figures)
is ``hack/bench/fuzz_apiserver.py``; this is the same generator with a small count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hardening_fuzz_bodies import FuzzRequest, base_objects, created_name, fuzz_requests
from hardening_support import send
from hypothesis import HealthCheck, given, settings
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

pytest_plugins = ["embedded_fixtures"]


@pytest.fixture
def fuzz_api(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:
    from embedded_api_objects import api_client_for

    api = api_client_for(embedded_server)
    for path, obj in base_objects():
        reply = send(api, "POST", path, obj)
        assert reply.status == 201, (path, reply.body)
    yield api
    api.close()


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(req=fuzz_requests())
def test_no_fuzzed_body_gets_a_server_error(fuzz_api: client.ApiClient, req: FuzzRequest) -> None:
    reply = send(fuzz_api, req.method, req.path, req.body, content_type=req.content_type)
    assert reply.status < 500, f"{reply.status} for {req.describe()}: {reply.body[:500]!r}"
    if reply.status == 201 and req.method == "POST" and (name := created_name(reply.body)):
        assert send(fuzz_api, "DELETE", f"{req.path}/{name}").status in (200, 202)
    assert send(fuzz_api, "GET", "/api/v1/namespaces/default").status == 200
