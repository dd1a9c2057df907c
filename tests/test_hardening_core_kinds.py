"""Core kinds (Pod, Node, Namespace, Event) are validated like the DRA kinds: 422 naming the field, over HTTPS.

Each body here is one a real API server refuses; before this, the embedded server stored them and the loops
tripped over them later. A valid object of each kind is accepted, so the checks cannot pass by refusing all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hardening_support import send
from kubernetes import client
from kubernetes.client.rest import ApiException

pytest_plugins = ["embedded_fixtures"]


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    body = {"containers": [{"name": "main", "image": "busybox"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": body}


def refused(call: Any, *args: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as e:
        call(*args)
    return e.value.status, json.loads(e.value.body)


def fields(status: dict[str, Any]) -> set[str]:
    return {c.get("field", "") for c in (status.get("details") or {}).get("causes") or []}


@pytest.mark.parametrize(("spec", "field"), [
    ({"containers": "nope"}, "spec.containers"),
    ({"containers": []}, "spec.containers"),
    ({"containers": [{"name": "Main_1", "image": "busybox"}]}, "spec.containers[0].name"),
    ({"containers": [{"name": "main"}]}, "spec.containers[0].image"),
    ({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}, "spec.containers[1].name"),
    ({"resourceClaims": [{"name": "gpu", "resourceClaimName": "c", "resourceClaimTemplateName": "t"}]},
     "spec.resourceClaims[0]"),
    ({"containers": [{"name": "main", "image": "x", "resources": {"claims": [{"name": "missing"}]}}]},
     "spec.containers[0].resources.claims[0].name"),
    ({"terminationGracePeriodSeconds": 2**70}, "spec.terminationGracePeriodSeconds"),
    ({"nodeName": "Not A Node"}, "spec.nodeName"),
    ({"restartPolicy": 3}, "spec.restartPolicy"),
])
def test_malformed_pod_is_refused_with_422_naming_the_field(embedded_api_client: client.ApiClient,
                                                            spec: dict[str, Any], field: str) -> None:
    core = client.CoreV1Api(embedded_api_client)
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces/default/pods", pod(**spec))
    status = reply.json()
    assert reply.status == 422 and status["reason"] == "Invalid", status
    assert field in reply.fields(), status
    assert status["message"].startswith('Pod "p" is invalid: ')
    assert core.list_namespaced_pod("default").items == []  # nothing was stored


def test_valid_core_objects_are_accepted(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    created = core.create_namespaced_pod("default", pod(resourceClaims=[{"name": "npu", "resourceClaimName": "c"}],
                                                        containers=[{"name": "main", "image": "busybox",
                                                                     "resources": {"claims": [{"name": "npu"}]}}]))
    assert created.metadata.uid
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                      "spec": {"taints": [{"key": "snn.dra.dev/maintenance", "effect": "NoSchedule"}]}})
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    core.create_namespaced_event("default", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Test", "type": "Normal"})


def test_pod_updates_may_not_rebind_or_change_claims(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    core.create_namespaced_pod("default", pod(nodeName="node-a"))
    body = core.read_namespaced_pod("p", "default", _preload_content=False)
    obj = json.loads(body.data)
    obj["spec"]["nodeName"] = "node-b"
    code, status = refused(core.replace_namespaced_pod, "p", "default", obj)
    assert code == 422 and "spec.nodeName" in fields(status)


@pytest.mark.parametrize(("body", "field"), [
    ({"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}, "spec.taints[0].effect"),
    ({"spec": {"taints": [{"key": "bad key!", "effect": "NoSchedule"}]}}, "spec.taints[0].key"),
    ({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}]}},
     "spec.taints[1]"),
    ({"spec": {"unschedulable": "yes"}}, "spec.unschedulable"),
    ({"status": {"capacity": {"cpu": ["8"]}}}, "status.capacity.cpu"),
])
def test_malformed_node_is_refused(embedded_api_client: client.ApiClient, body: dict[str, Any], field: str) -> None:
    reply = send(embedded_api_client, "POST", "/api/v1/nodes",
                 {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, **body})
    assert reply.status == 422 and field in reply.fields(), reply.json()


def test_malformed_namespace_and_event_are_refused(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    code, status = refused(core.create_namespace, {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "ns1"}, "spec": {"finalizers": ["a/b/c"]}})
    assert code == 422 and "spec.finalizers[0]" in fields(status), status
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces/default/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"}, "reason": "X"})
    assert reply.status == 422 and "involvedObject" in reply.fields(), reply.json()
    code, status = refused(core.create_namespaced_event, "default", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "kube-system"}})
    assert code == 422 and "involvedObject.namespace" in fields(status), status
    reply = send(embedded_api_client, "POST", "/api/v1/namespaces/default/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e3", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p"}, "count": 2**64})
    assert reply.status == 422 and "count" in reply.fields(), reply.json()
