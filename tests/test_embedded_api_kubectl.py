"""Real kubectl 1.32 against the embedded API server: tables, apply, describe, delete, errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from embedded_api_objects import claim, resource_slice
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

KUBECTL = "/usr/bin/kubectl"
pytestmark = pytest.mark.kubectl

pytest_plugins = ["embedded_fixtures"]


def kubectl(server: EmbeddedApiServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(server.state_dir)}
    proc = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def test_get_resourceslices_table(embedded_server: EmbeddedApiServer, embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_resource_slice(resource_slice("node-a", name="node-a-slice", pool="pool-a"))
    out = kubectl(embedded_server, "get", "resourceslices").stdout.splitlines()
    assert out[0].split() == ["NAME", "NODE", "DRIVER", "POOL", "AGE"]
    assert out[1].split()[:4] == ["node-a-slice", "node-a", "snn.dra.dev", "pool-a"]


def test_get_resourceclaims_state_column(embedded_server: EmbeddedApiServer,
                                        embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    res.create_namespaced_resource_claim("default", claim("pending-claim"))
    res.create_namespaced_resource_claim("default", claim("used-claim"))
    res.patch_namespaced_resource_claim_status(
        "used-claim", "default",
        {"status": {"allocation": {"devices": {"results": [
            {"request": "npu", "driver": "snn.dra.dev", "pool": "node-a", "device": "chip-0"}]}},
            "reservedFor": [{"resource": "pods", "name": "p", "uid": "u1"}]}},
        _content_type="application/merge-patch+json")
    lines = kubectl(embedded_server, "get", "resourceclaims").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "AGE"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {"pending-claim": "pending", "used-claim": "allocated,reserved"}


def test_apply_describe_delete_roundtrip(embedded_server: EmbeddedApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "objects.yaml"
    manifest.write_text("""\
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: snn.dra.dev
spec:
  selectors:
  - cel:
      expression: device.driver == "snn.dra.dev"
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata:
  name: one-chip
  namespace: default
spec:
  spec:
    devices:
      requests:
      - name: npu
        exactly:
          deviceClassName: snn.dra.dev
""")
    out = kubectl(embedded_server, "apply", "-f", str(manifest)).stdout
    assert "deviceclass.resource.k8s.io/snn.dra.dev created" in out
    assert "resourceclaimtemplate.resource.k8s.io/one-chip created" in out
    again = kubectl(embedded_server, "apply", "-f", str(manifest)).stdout
    assert "unchanged" in again
    table = kubectl(embedded_server, "get", "deviceclasses").stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE"] and table[1].split()[0] == "snn.dra.dev"
    described = kubectl(embedded_server, "describe", "resourceclaimtemplate", "one-chip").stdout
    assert "Device Class Name:" in described and "ExactCount" in described
    deleted = kubectl(embedded_server, "delete", "-f", str(manifest)).stdout
    assert 'deviceclass.resource.k8s.io "snn.dra.dev" deleted' in deleted
    gone = kubectl(embedded_server, "get", "deviceclass", "snn.dra.dev", check=False)
    assert gone.returncode != 0
    assert 'deviceclasses.resource.k8s.io "snn.dra.dev" not found' in gone.stderr


def test_kubectl_shows_invalid_object_error(embedded_server: EmbeddedApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("""\
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: Not_A_Name
spec: {}
""")
    proc = kubectl(embedded_server, "apply", "-f", str(manifest), check=False)
    assert proc.returncode != 0
    # kubectl rebuilds the message from Status.details, exactly as for a real cluster.
    assert 'The DeviceClass "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name"' in proc.stderr


def test_kubectl_rejects_missing_token(embedded_server: EmbeddedApiServer) -> None:
    env = {**os.environ, "HOME": str(embedded_server.state_dir)}
    ca = embedded_server.ca_path
    proc = subprocess.run([KUBECTL, "--server", embedded_server.url, "--certificate-authority", str(ca),
                           "--token", "wrong", "get", "resourceslices"], env={**env, "KUBECONFIG": "/dev/null"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "You must be logged in to the server (the server has asked for the client to provide credentials)" \
        in proc.stderr


def test_kubectl_create_namespace_protobuf_and_cascading_delete(embedded_server: EmbeddedApiServer,
                                                                 embedded_api_client: client.ApiClient) -> None:
    # kubectl's generators send protobuf; the server decodes Namespace and answers in JSON.
    assert "namespace/team-a created" in kubectl(embedded_server, "create", "namespace", "team-a").stdout
    res = client.ResourceV1Api(embedded_api_client)
    res.create_namespaced_resource_claim("team-a", claim("c1", namespace="team-a"))
    assert "NAME" in kubectl(embedded_server, "get", "resourceclaims", "-n", "team-a").stdout
    kubectl(embedded_server, "delete", "namespace", "team-a")
    assert res.list_resource_claim_for_all_namespaces().items == []
    described = kubectl(embedded_server, "describe", "node", "missing", check=False)
    assert described.returncode != 0 and 'nodes "missing" not found' in described.stderr


def test_kubectl_apply_rejects_unknown_fields_strictly(embedded_server: EmbeddedApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text("""\
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: typo
spec:
  selector: []
""")
    proc = kubectl(embedded_server, "apply", "-f", str(manifest), check=False)
    assert proc.returncode != 0 and 'unknown field "spec.selector"' in proc.stderr
    warned = kubectl(embedded_server, "apply", "--validate=warn", "-f", str(manifest))
    assert 'unknown field "spec.selector"' in warned.stderr and "created" in warned.stdout


def test_get_events_and_pods_columns(embedded_server: EmbeddedApiServer) -> None:
    store = embedded_server.store
    pod = store.create("pods", {"metadata": {"name": "p1", "namespace": "default"},
                                "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "i"}]}})
    store.create("events", {"metadata": {"generateName": "p1.", "namespace": "default"},
                            "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default",
                                               "uid": pod["metadata"]["uid"]},
                            "type": "Warning", "reason": "FailedPrepareDynamicResources",
                            "message": "claim not allocated", "source": {"component": "kubelet"}})
    events = kubectl(embedded_server, "get", "events").stdout.splitlines()
    assert events[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert events[1].split()[1:4] == ["Warning", "FailedPrepareDynamicResources", "pod/p1"]
    pods = kubectl(embedded_server, "get", "pods", "-o", "wide").stdout.splitlines()
    assert pods[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert pods[1].split()[:3] == ["p1", "0/1", "Pending"] and "node-a" in pods[1]
    described = kubectl(embedded_server, "describe", "pod", "p1").stdout
    assert "FailedPrepareDynamicResources" in described


def test_kubectl_explain_uses_served_openapi(embedded_server_factory: Any) -> None:
    srv = embedded_server_factory(profile="1.34")
    pool = kubectl(srv, "explain", "resourceslice.spec.pool").stdout
    assert "resourceSliceCount\t<integer> -required-" in pool and "GROUP:      resource.k8s.io" in pool
    assert "nodeName" in kubectl(srv, "explain", "pods.spec").stdout
    missing = kubectl(srv, "explain", "devicetaintrules", check=False)
    assert missing.returncode != 0  # not served on 1.34


def test_kubectl_server_side_apply(embedded_server: EmbeddedApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "class.yaml"
    body = """\
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: ssa
  labels: {%s}
spec:
  selectors:
  - cel:
      expression: device.driver == "snn.dra.dev"
"""
    manifest.write_text(body % "tier: gold")
    assert "serverside-applied" in kubectl(embedded_server, "apply", "--server-side", "-f", str(manifest)).stdout
    manifest.write_text(body % "zone: a")
    kubectl(embedded_server, "apply", "--server-side", "-f", str(manifest))
    labels = embedded_server.store.get("deviceclasses", None, "ssa")["metadata"]["labels"]
    assert labels == {"zone": "a"}
