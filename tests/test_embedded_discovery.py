"""Aggregated discovery (what client-go and kubectl ask for first) and /openapi/v2, over HTTPS."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
from typing import Any

import pytest
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

pytest_plugins = ["embedded_fixtures"]

AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
KUBECTL = "/usr/bin/kubectl"


def _get(server: EmbeddedApiServer, path: str, accept: str) -> tuple[int, str, Any]:
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    conn = http.client.HTTPSConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), context=ctx, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {server.token}", "Accept": accept})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", json.loads(resp.read())
    finally:
        conn.close()


def test_aggregated_discovery_when_asked_first(embedded_server: EmbeddedApiServer) -> None:
    code, ctype, body = _get(embedded_server, "/apis", AGGREGATED)
    assert code == 200
    assert ctype == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    groups = {g["metadata"]["name"]: g for g in body["items"]}
    version = groups["resource.k8s.io"]["versions"][0]
    assert version["version"] == "v1" and version["freshness"] == "Current"
    slices = next(r for r in version["resources"] if r["resource"] == "resourceslices")
    assert slices["scope"] == "Cluster" and slices["singularResource"] == "resourceslice"
    assert slices["responseKind"] == {"group": "resource.k8s.io", "version": "v1", "kind": "ResourceSlice"}
    claims = next(r for r in version["resources"] if r["resource"] == "resourceclaims")
    assert claims["scope"] == "Namespaced" and claims["subresources"][0]["subresource"] == "status"
    code, ctype, core = _get(embedded_server, "/api", AGGREGATED.replace("v=v2;", "v=v9;"))
    assert ctype.endswith("v=v2beta1;as=APIGroupDiscoveryList")  # the first version this server speaks
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    # Plain JSON first: the legacy documents, as before.
    code, ctype, legacy = _get(embedded_server, "/apis", "application/json")
    assert legacy["kind"] == "APIGroupList" and ctype.startswith("application/json")


def test_legacy_discovery_through_the_official_client(embedded_api_client: client.ApiClient) -> None:
    groups = client.ApisApi(embedded_api_client).get_api_versions()
    assert "resource.k8s.io" in [g.name for g in groups.groups]
    resources = client.ResourceV1Api(embedded_api_client).get_api_resources()
    assert "resourceslices" in [r.name for r in resources.resources]


def test_openapi_v2_document(embedded_server: EmbeddedApiServer) -> None:
    code, ctype, doc = _get(embedded_server, "/openapi/v2", "application/json")
    assert code == 200 and ctype.startswith("application/json")
    assert doc["swagger"] == "2.0"
    slice_path = doc["paths"]["/apis/resource.k8s.io/v1/resourceslices/{name}"]
    ref = slice_path["get"]["responses"]["200"]["schema"]["$ref"]
    assert ref == "#/definitions/io.k8s.api.resource.v1.ResourceSlice"
    assert slice_path["patch"]["x-kubernetes-group-version-kind"]["kind"] == "ResourceSlice"
    spec = doc["definitions"]["io.k8s.api.resource.v1.ResourceSlice"]["properties"]["spec"]
    assert spec["$ref"] == "#/definitions/io.k8s.api.resource.v1.ResourceSliceSpec"
    assert all(not json.dumps(d).count("#/components/") for d in doc["definitions"].values())
    code, _, status = _get(embedded_server, "/openapi/v2",
                           "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert code == 406 and "served as application/json only" in status["message"]


@pytest.mark.kubectl
def test_kubectl_api_resources_reads_aggregated_discovery(embedded_server: EmbeddedApiServer) -> None:
    env = {**os.environ, "KUBECONFIG": str(embedded_server.kubeconfig_path), "HOME": str(embedded_server.state_dir)}
    proc = subprocess.run([KUBECTL, "api-resources", "-v=6"], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert rows["resourceslices"][1:] == ["resource.k8s.io/v1", "false", "ResourceSlice"]
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    # One request each for /api and /apis: no per-group-version fallback requests.
    fetched = [line.split("GET ", 1)[1].split("?")[0].split("/", 3)[3] for line in proc.stderr.splitlines()
               if "GET https" in line]
    assert fetched == ["api", "apis"]
