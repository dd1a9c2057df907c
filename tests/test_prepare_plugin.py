"""The real Preparer behind the real plugin gRPC service: NodePrepare/NodeUnprepare over the unix socket (v1 and
v1beta1), claims read from the embedded API server over HTTPS."""

from __future__ import annotations

import json
from typing import Any

from embedded_fixtures import embedded_api_client, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client
from plugin_support import channel, running_server, short_dir
from prepare_helpers import DRIVER, NODE, assert_specs_valid, make_preparer

from snn_dra.api.kubelet.dra.v1 import api_pb2 as v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as v1beta1
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as v1beta1_grpc
from snn_dra.driver.claims import KubeClaimSource


def _allocated(api: client.ApiClient, name: str, results: list[dict[str, Any]]) -> str:
    res = client.ResourceV1Api(api)
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "devices": {
                "requests": [
                    {"name": "npu", "firstAvailable": [{"name": "big", "deviceClassName": "snn"}]},
                    {"name": "q", "exactly": {"deviceClassName": "snn"}},
                ]
            }
        },
    }
    obj = json.loads(res.create_namespaced_resource_claim("default", body, _preload_content=False).data)
    obj["status"] = {"allocation": {"devices": {"results": results, "config": []}}}
    res.replace_namespaced_resource_claim_status(name, "default", obj, _preload_content=False)
    uid: str = obj["metadata"]["uid"]
    return uid


def test_prepare_over_the_plugin_socket(embedded_api_client: client.ApiClient) -> None:  # noqa: F811
    share = "4f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
    uid = _allocated(
        embedded_api_client,
        "c1",
        [
            {"request": "npu/big", "driver": DRIVER, "pool": NODE, "device": "n1-c1"},
            {"request": "q", "driver": DRIVER, "pool": NODE, "device": "n1-c0-router", "shareID": share},
        ],
    )
    bad_uid = _allocated(
        embedded_api_client, "c2", [{"request": "npu", "driver": DRIVER, "pool": NODE, "device": "n1-c1"}]
    )
    with short_dir() as tmp:
        preparer = make_preparer(tmp / "state-root", KubeClaimSource(embedded_api_client))
        with running_server(tmp, preparer) as server:
            stub = v1_grpc.DRAPluginStub(channel(server.paths.dra))
            claims = [
                v1.Claim(namespace="default", uid=uid, name="c1"),
                v1.Claim(namespace="default", uid=bad_uid, name="c2"),
            ]
            resp = stub.NodePrepareResources(v1.NodePrepareResourcesRequest(claims=claims), timeout=30)
            assert set(resp.claims) == {uid, bad_uid}
            good = resp.claims[uid]
            assert good.error == ""
            assert [(list(d.request_names), d.pool_name, d.device_name) for d in good.devices] == [
                (["npu"], NODE, "n1-c1"),
                (["q"], NODE, "n1-c0-router"),
            ]
            assert list(good.devices[0].cdi_device_ids) == [f"snn.dra.dev/snn={uid}-n1-c1"]
            assert good.devices[1].share_id == share
            assert "already prepared for resourceclaim default/c1" in resp.claims[bad_uid].error

            old = v1beta1_grpc.DRAPluginStub(channel(server.paths.dra))
            again = old.NodePrepareResources(
                v1beta1.NodePrepareResourcesRequest(claims=[v1beta1.Claim(namespace="default", uid=uid, name="c1")]),
                timeout=30,
            )
            assert list(again.claims[uid].devices[0].cdi_device_ids) == [f"snn.dra.dev/snn={uid}-n1-c1"]
            assert len(assert_specs_valid(tmp / "state-root" / "cdi")) == 1

            un = stub.NodeUnprepareResources(v1.NodeUnprepareResourcesRequest(claims=claims), timeout=30)
            assert {k: v.error for k, v in un.claims.items()} == {uid: "", bad_uid: ""}
            assert list((tmp / "state-root" / "cdi").iterdir()) == []
