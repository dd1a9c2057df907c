"""JSON <-> Kubernetes protobuf: every served kind round-trips unchanged, the special types take their upstream wire
form, zero values follow Go's JSON rules, and bad input names the field."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import yaml
from embedded_api_objects import claim, device_class, node, resource_slice

from snn_dra.api.k8s.api.core.v1 import generated_pb2 as core_v1
from snn_dra.api.k8s.api.resource.v1 import generated_pb2 as resource_v1
from snn_dra.api.k8s.apimachinery.pkg.apis.meta.v1 import generated_pb2 as meta_v1
from snn_dra.api.k8s.apimachinery.pkg.runtime import generated_pb2 as runtime
from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.embedded import protobuf
from snn_dra.driver.embedded.errors import BadRequest
from snn_dra.driver.embedded.resources import RESOURCES
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices

REPO = Path(__file__).resolve().parent.parent


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc and not str(doc.get("apiVersion", "")).startswith(
                    ("snn.dra.dev", "kustomize.config")):
                docs.append(doc)
    return docs


def _node_slices() -> list[dict[str, Any]]:
    out = []
    for path in sorted((REPO / "deploy" / "node-configs").glob("*.yaml")):
        config = load_node_config(path)
        for profile in ("1.36", "1.37"):
            model = build_model(load_backend(config, "node-a").discover(), config.publish)
            out += build_slices(model, "node-a", profile=profile)
    return out


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2026-01-02T03:04:05Z",
                    "labels": {"app": "x"}, "managedFields": [{"manager": "m", "operation": "Update",
                                                                "fieldsType": "FieldsV1",
                                                                "fieldsV1": {"f:metadata": {"f:labels": {}}}}]},
       "spec": {"terminationGracePeriodSeconds": 0, "resourceClaims": [{"name": "npu",
                                                                       "resourceClaimTemplateName": "t"}],
                "containers": [{"name": "c", "image": "busybox",
                                "resources": {"limits": {"cpu": "500m"}, "claims": [{"name": "npu"}]},
                                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}}}],
                "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}}]},
       "status": {"phase": "Pending", "startTime": "2026-01-02T03:04:06Z"}}
EVENT = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
         "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Scheduled", "count": 1, "type": "Normal",
         "eventTime": "2026-01-02T03:04:05.123456Z", "reportingComponent": "s", "reportingInstance": "s-1"}
ALLOCATED = {**claim("c1"), "status": {"allocation": {
    "devices": {"results": [{"request": "npu", "driver": "snn.dra.dev", "pool": "node-a", "device": "chip-0"}],
                "config": [{"source": "FromClaim", "requests": ["npu"],
                            "opaque": {"driver": "snn.dra.dev", "parameters": {"apiVersion": "snn.dra.dev/v1alpha1",
                                                                                "kind": "Params", "n": 3}}}]},
    "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                             "values": ["node-a"]}]}]}}}}

TAINT_RULE = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule", "metadata": {"name": "drain"},
              "spec": {"deviceSelector": {"driver": "snn.dra.dev", "pool": "node-a", "device": "chip-0"},
                       "taint": {"key": "snn.dra.dev/maintenance", "value": "x", "effect": "NoExecute"}}}

MORE_KINDS = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "snn-dra"},
     "data": {"a": "1", "empty": ""}, "binaryData": {"blob": "AAEC"}, "immutable": False},
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "snn-dra"},
     "automountServiceAccountToken": False},
    {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "snn-dra"},
     "spec": {"hard": {"pods": "10"}, "scopeSelector": {"matchExpressions": [
         {"scopeName": "PriorityClass", "operator": "In", "values": ["system-node-critical"]}]}}},
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "snn-dra-critical"},
     "value": 0, "preemptionPolicy": "Never"},  # value has no omitempty: its zero stays
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "snn-dra"},
     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "rb", "namespace": "snn-dra"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
     "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "snn-dra"}]},
]

OBJECTS = [TAINT_RULE, *MORE_KINDS, *_manifests(), *_node_slices(), POD, EVENT, ALLOCATED, node("node-a"),
           resource_slice("node-a"), device_class(), claim("c2", allocationMode="All"),
           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"a": "b"}}}]


def test_the_examples_cover_every_served_kind() -> None:
    assert {info.kind for info in RESOURCES.values()} <= {o["kind"] for o in OBJECTS}
    assert len(_node_slices()) >= 8


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}-{o['metadata'].get('name', '')}")
def test_json_protobuf_json_round_trip(obj: dict[str, Any]) -> None:
    assert protobuf.decode(protobuf.encode(obj)) == obj


def test_envelope_and_special_types_on_the_wire() -> None:
    body = protobuf.encode(POD)
    assert body[:4] == bytes.fromhex("6b387300")
    unknown = runtime.Unknown.FromString(body[4:])
    assert (unknown.typeMeta.apiVersion, unknown.typeMeta.kind) == ("v1", "Pod")
    pod = core_v1.Pod.FromString(unknown.raw)
    assert pod.metadata.creationTimestamp.seconds == 1767323045
    assert pod.spec.terminationGracePeriodSeconds == 0 and pod.spec.HasField("terminationGracePeriodSeconds")
    assert pod.spec.containers[0].resources.limits["cpu"].string == "500m"
    ready, live = pod.spec.containers[0].readinessProbe.handler, pod.spec.containers[0].livenessProbe.handler
    assert (ready.httpGet.port.type, ready.httpGet.port.intVal) == (0, 8080)  # IntOrString; ProbeHandler inlined
    assert (live.httpGet.port.type, live.httpGet.port.strVal) == (1, "http")
    assert pod.spec.volumes[0].volumeSource.configMap.localObjectReference.name == "cm"  # Go-inlined structs
    assert pod.metadata.managedFields[0].fieldsV1.Raw == b'{"f:metadata":{"f:labels":{}}}'
    event = core_v1.Event.FromString(runtime.Unknown.FromString(protobuf.encode(EVENT)[4:]).raw)
    assert (event.eventTime.seconds, event.eventTime.nanos) == (1767323045, 123456000)
    allocated = resource_v1.ResourceClaim.FromString(runtime.Unknown.FromString(protobuf.encode(ALLOCATED)[4:]).raw)
    config = allocated.status.allocation.devices.config[0].deviceConfiguration.opaque
    assert config.parameters.raw == b'{"apiVersion":"snn.dra.dev/v1alpha1","kind":"Params","n":3}'


def test_zero_values_follow_go_json_rules() -> None:
    """Go writes every non-pointer field; JSON keeps a zero only for pointers and fields without omitempty."""
    msg = resource_v1.ResourceSlice()
    msg.metadata.name, msg.metadata.namespace, msg.metadata.generation = "s", "", 0
    msg.spec.driver, msg.spec.pool.name, msg.spec.pool.generation, msg.spec.pool.resourceSliceCount = "d", "p", 0, 1
    msg.spec.allNodes = False  # a *bool set on purpose
    unknown = runtime.Unknown(typeMeta=runtime.TypeMeta(apiVersion="resource.k8s.io/v1", kind="ResourceSlice"),
                              raw=msg.SerializeToString())
    got = protobuf.decode(b"k8s\x00" + unknown.SerializeToString())
    assert got == {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "s"},
                   "spec": {"driver": "d", "allNodes": False,
                            "pool": {"name": "p", "generation": 0, "resourceSliceCount": 1}}}


def test_durations_read_and_write_as_go_does() -> None:
    for text, ns in (("0s", 0), ("1m30s", 90 * 10**9), ("1.5s", 1_500_000_000), ("500ms", 500_000_000),
                     ("2h0m0s", 7200 * 10**9), ("1µs", 1000), ("-3s", -3 * 10**9)):
        assert protobuf._parse_duration(text, "d") == ns
        assert protobuf._format_duration(ns) == text
    with pytest.raises(protobuf.ConversionError, match=r"d: '5 minutes' is not a Go duration"):
        protobuf._parse_duration("5 minutes", "d")


def test_bad_input_names_the_field_or_the_kind() -> None:
    bad = {**node("n"), "spec": {"unschedulable": "yes"}}
    with pytest.raises(protobuf.ConversionError, match=r"spec\.unschedulable: 'yes' does not fit"):
        protobuf.encode(bad)
    with pytest.raises(BadRequest, match="no kind 'Widget' is registered for version 'v1'"):
        protobuf.encode({"apiVersion": "v1", "kind": "Widget", "metadata": {}})
    with pytest.raises(BadRequest, match="magic bytes"):
        protobuf.decode(b'{"kind": "Node"}')
    with pytest.raises(BadRequest, match=r"runtime\.Unknown"):
        protobuf.decode(b"k8s\x00\xff\xff")


def test_watch_frames_are_length_prefixed_watch_events() -> None:
    frame = protobuf.watch_frame("BOOKMARK", {"metadata": {"resourceVersion": "7"}}, RESOURCES["resourceslices"])
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    event = meta_v1.WatchEvent.FromString(frame[4:])
    assert event.type == "BOOKMARK"
    assert protobuf.decode(event.object.raw) == {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                                                 "metadata": {"resourceVersion": "7"}}


def test_negotiation_follows_the_first_accepted_type() -> None:
    assert protobuf.wants_protobuf("application/vnd.kubernetes.protobuf,application/json")
    assert not protobuf.wants_protobuf("application/json, application/vnd.kubernetes.protobuf")
    assert not protobuf.wants_protobuf("")
