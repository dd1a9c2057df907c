"""Claims in the embedded API server, read over HTTPS with the official client by KubeClaimSource, prepared for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from embedded_fixtures import api_client_for, embedded_api_client, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client
from prepare_helpers import DRIVER, NODE, assert_specs_valid, env_of, make_preparer, opaque, snn

from snn_dra.driver.claims import ClaimLookupError, ClaimRef, KubeClaimSource
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer


def _create_allocated(
    api: client.ApiClient, name: str, results: list[dict[str, Any]], config: list[dict[str, Any]]
) -> ClaimRef:
    res = client.ResourceV1Api(api)
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"devices": {"requests": [{"name": "npu", "exactly": {"deviceClassName": "snn"}}]}},
    }
    created = json.loads(res.create_namespaced_resource_claim("default", body, _preload_content=False).data)
    created["status"] = {"allocation": {"devices": {"results": results, "config": config}}}
    res.replace_namespaced_resource_claim_status(name, "default", created, _preload_content=False)
    return ClaimRef("default", name, created["metadata"]["uid"])


def _result(device: str, request: str = "npu") -> dict[str, Any]:
    return {"request": request, "driver": DRIVER, "pool": NODE, "device": device}


def test_prepare_claims_from_the_api_server(tmp_path: Path, embedded_api_client: client.ApiClient) -> None:  # noqa: F811
    good = _create_allocated(
        embedded_api_client,
        "good",
        [_result("n1-c1-group-0")],
        [
            opaque(snn(neuronModel="ALIF"), source="FromClass"),
            opaque(snn(timestepMicroseconds=100), source="FromClaim", requests=["npu"]),
        ],
    )
    bad = _create_allocated(embedded_api_client, "bad", [_result("n1-c0")], [opaque(snn(sharing="shared"))])
    res = client.ResourceV1Api(embedded_api_client)
    res.create_namespaced_resource_claim(
        "default",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "pending"},
            "spec": {"devices": {"requests": [{"name": "npu", "exactly": {"deviceClassName": "snn"}}]}},
        },
    )
    pending = ClaimRef("default", "pending", res.read_namespaced_resource_claim("pending", "default").metadata.uid)
    missing = ClaimRef("default", "missing", "9f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d")

    p = make_preparer(tmp_path, KubeClaimSource(embedded_api_client))
    out = p.prepare([good, bad, pending, missing])
    assert set(out) == {good.uid, bad.uid, pending.uid, missing.uid}
    assert out[good.uid].error == ""
    assert out[good.uid].devices[0].cdi_device_ids == (f"snn.dra.dev/snn={good.uid}-n1-c1-group-0",)
    assert "sharing=shared" in out[bad.uid].error and "default/bad" in out[bad.uid].error
    assert "not allocated" in out[pending.uid].error
    assert "not found in the API server" in out[missing.uid].error
    (spec,) = assert_specs_valid(tmp_path / "cdi")
    env = env_of(spec, f"{good.uid}-n1-c1-group-0")
    assert env["SNN_DRA_N1_C1_GROUP_0_NEURON_MODEL"] == "ALIF"
    assert env["SNN_DRA_N1_C1_GROUP_0_TIMESTEP_US"] == "100"

    # the claim is deleted and recreated under the same name: the kubelet's old UID no longer matches
    res.delete_namespaced_resource_claim("good", "default")
    _create_allocated(embedded_api_client, "good", [_result("n1-c1-group-0")], [])
    replaced = p.prepare([ClaimRef("default", "good", "8f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d")])
    assert "claim was replaced" in replaced["8f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"].error
    # unprepare needs no API read: it works for the claim that is gone from the server
    assert p.unprepare([good]) == {good.uid: ""}
    assert list((tmp_path / "cdi").iterdir()) == []


def test_transient_errors_are_retried_then_succeed(
    embedded_api_client: client.ApiClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = _create_allocated(embedded_api_client, "flaky", [_result("n1-c0")], [])
    source = KubeClaimSource(embedded_api_client, initial_wait_s=0.001, max_wait_s=0.01)
    real = source._read
    calls = {"n": 0}

    def flaky(namespace: str, name: str) -> Any:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise client.ApiException(status=503, reason="Service Unavailable")
        return real(namespace, name)

    monkeypatch.setattr(source, "_read", flaky)
    assert source.get("default", "flaky")["metadata"]["uid"] == ref.uid
    assert calls["n"] == 3


def test_unreachable_server_gives_up_within_the_deadline(embedded_server_factory: Any) -> None:  # noqa: F811
    server: EmbeddedApiServer = embedded_server_factory(profile="1.37")
    api = api_client_for(server)
    try:
        server.stop()
        source = KubeClaimSource(api, deadline_s=0.5, initial_wait_s=0.01, max_wait_s=0.05)
        with pytest.raises(ClaimLookupError, match="default/x: API server unreachable after retries"):
            source.get("default", "x")
    finally:
        api.close()
