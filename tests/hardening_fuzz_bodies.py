"""Hypothesis strategies for API server request bodies: random JSON, and structure-aware mutations of valid
DRA and core objects, sent as JSON, YAML (with anchors and aliases), merge patches or byte-mangled text.

Shared by the unit suite (a few hundred inputs) and ``hack/bench/fuzz_apiserver.py`` (10,000 and more).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

DRIVER = "snn.dra.dev"
NAMESPACE = "default"

KINDS: dict[str, tuple[str, bool]] = {  # kind -> (collection path, namespaced)
    "ResourceSlice": ("/apis/resource.k8s.io/v1/resourceslices", False),
    "ResourceClaim": ("/apis/resource.k8s.io/v1/namespaces/default/resourceclaims", True),
    "ResourceClaimTemplate": ("/apis/resource.k8s.io/v1/namespaces/default/resourceclaimtemplates", True),
    "DeviceClass": ("/apis/resource.k8s.io/v1/deviceclasses", False),
    "DeviceTaintRule": ("/apis/resource.k8s.io/v1/devicetaintrules", False),
    "Pod": ("/api/v1/namespaces/default/pods", True),
    "Node": ("/api/v1/nodes", False),
    "Namespace": ("/api/v1/namespaces", False),
    "Event": ("/api/v1/namespaces/default/events", True),
}


def _request(name: str = "npu") -> dict[str, Any]:
    return {"name": name, "exactly": {"deviceClassName": DRIVER, "count": 1,
                                      "selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]}}


def valid_object(kind: str, name: str) -> dict[str, Any]:
    """A valid object of ``kind`` named ``name`` (accepted by the embedded server as it is)."""
    meta: dict[str, Any] = {"name": name, "labels": {"app": "fuzz"}, "annotations": {"note": "fuzz"}}
    if KINDS[kind][1]:
        meta["namespace"] = NAMESPACE
    api = "v1" if kind in ("Pod", "Node", "Namespace", "Event") else "resource.k8s.io/v1"
    obj: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": meta}
    if kind == "ResourceSlice":
        obj["spec"] = {"driver": DRIVER, "nodeName": "node-a",
                       "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1},
                       "devices": [{"name": "chip-0",
                                    "attributes": {f"{DRIVER}/family": {"string": "loihi2"},
                                                   f"{DRIVER}/chipID": {"int": 0}},
                                    "capacity": {f"{DRIVER}/cores": {"value": "128"}}}]}
    elif kind == "ResourceClaim":
        obj["spec"] = {"devices": {"requests": [_request()],
                                   "config": [{"requests": ["npu"], "opaque": {
                                       "driver": DRIVER, "parameters": {"apiVersion": f"{DRIVER}/v1alpha1",
                                                                        "kind": "SNNConfig"}}}]}}
    elif kind == "ResourceClaimTemplate":
        obj["spec"] = {"metadata": {"labels": {"a": "b"}}, "spec": {"devices": {"requests": [_request()]}}}
    elif kind == "DeviceClass":
        obj["spec"] = {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]}
    elif kind == "DeviceTaintRule":
        obj["spec"] = {"deviceSelector": {"driver": DRIVER, "pool": "node-a"},
                       "taint": {"key": f"{DRIVER}/maintenance", "value": "x", "effect": "NoSchedule"}}
    elif kind == "Pod":
        obj["spec"] = {"containers": [{"name": "main", "image": "busybox",
                                       "resources": {"claims": [{"name": "npu"}]}}],
                       "resourceClaims": [{"name": "npu", "resourceClaimTemplateName": "t"}]}
    elif kind == "Node":
        obj["spec"] = {"taints": [{"key": "k", "effect": "NoSchedule"}]}
        obj["status"] = {"capacity": {"cpu": "8"}}
    elif kind == "Event":
        obj["involvedObject"] = {"kind": "Pod", "name": "p", "namespace": NAMESPACE}
        obj.update(reason="Fuzz", message="m", type="Normal", count=1)
    return obj


_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
            | st.sampled_from(["", "a/b", "UPPER", "-bad-", "x" * 300, "1Gi", "1e3", "true", "null", "*", "$x",
                               'device.driver == "x"', "device.attributes[", "2026-01-01T00:00:00Z"]))
JSON_VALUES = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=12), kids, max_size=4), max_leaves=16)


def _slots(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``obj`` (dict keys and list indexes)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*path, k))
            out.extend(_slots(v, (*path, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*path, i))
            out.extend(_slots(v, (*path, i)))
    return out


def _parent(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path[:-1]:
        obj = obj[p]
    return obj


@st.composite
def mutated_object(draw: st.DrawFn, kind: str, name: str) -> dict[str, Any]:
    """A valid object with one to four structure-aware mutations applied."""
    obj = valid_object(kind, name)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(obj)
        if not slots:
            break
        path = draw(st.sampled_from(slots))
        parent, key = _parent(obj, path), path[-1]
        op = draw(st.sampled_from(["replace", "delete", "unknown", "wrap", "repeat", "huge", "long", "deep",
                                   "type"]))
        if op == "replace":
            parent[key] = draw(JSON_VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(JSON_VALUES)
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
        elif op == "repeat" and isinstance(parent[key], list):
            parent[key] = parent[key] * draw(st.integers(min_value=2, max_value=200))
        elif op == "huge":
            parent[key] = draw(st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, 2**31, -1, 0]))
        elif op == "long":  # long strings, also ones that make backtracking regular expressions crawl
            unit, tail = draw(st.sampled_from([("a", ""), ("1", "x"), ("a.", "!"), ("a-", "!"), ("1.", "e"),
                                               ("A_", "-")]))
            parent[key] = unit * draw(st.sampled_from([32, 64, 65, 254, 1025, 30_000])) + tail
        elif op == "deep":
            value: Any = parent[key]
            for _ in range(draw(st.integers(min_value=1, max_value=140))):
                value = [value]
            parent[key] = value
        elif op == "type":
            parent[key] = draw(st.sampled_from([None, True, 1, 1.5, "s", [], {}]))
    return obj


def _alias_yaml(obj: dict[str, Any], width: int, depth: int) -> str:
    """``obj`` as YAML with an alias chain (width**depth nodes when expanded) under an annotation."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for d in range(1, depth + 1):
        lines.append(f"a{d}: &a{d} [{', '.join([f'*a{d - 1}'] * width)}]")
    body = yaml.safe_dump(obj, default_flow_style=False)
    return "fuzz-aliases:\n" + "\n".join("  " + line for line in lines) + "\n" + body


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str
    body: bytes
    content_type: str
    kind: str

    def describe(self) -> str:
        head = self.body[:160].decode("utf-8", "replace").replace("\n", "\\n")
        return f"{self.method} {self.path} [{self.content_type}, {len(self.body)} B] {head}"


@st.composite
def fuzz_requests(draw: st.DrawFn, name: str = "fuzz") -> FuzzRequest:
    """One request: a create (POST) of a random, valid or mutated object, or a merge patch of ``<name>-base``."""
    kind = draw(st.sampled_from(sorted(KINDS)))
    path = KINDS[kind][0]
    source = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "valid"]))
    obj: Any
    if source == "random":
        obj = draw(JSON_VALUES)
    elif source == "valid":
        obj = valid_object(kind, name)
    else:
        obj = draw(mutated_object(kind, name))
    method = "POST"
    if draw(st.integers(min_value=0, max_value=5)) == 0:  # a merge patch of an object that exists
        method, path = "PATCH", f"{path}/{name}-base"
        encoding = "merge-patch"
    else:
        encoding = draw(st.sampled_from(["json", "json", "yaml", "yaml-aliases", "bytes"]))
    if encoding in ("json", "merge-patch"):
        raw = json.dumps(obj).encode()
        ctype = "application/merge-patch+json" if encoding == "merge-patch" else "application/json"
    elif encoding == "yaml":
        raw, ctype = yaml.safe_dump(obj).encode(), "application/yaml"
    elif encoding == "yaml-aliases":
        width, depth = draw(st.integers(min_value=1, max_value=12)), draw(st.integers(min_value=0, max_value=9))
        raw = _alias_yaml(obj if isinstance(obj, dict) else {"value": obj}, width, depth).encode()
        ctype = "application/yaml"
    else:
        text = bytearray(json.dumps(obj).encode())
        for _ in range(draw(st.integers(min_value=1, max_value=6))):
            if not text:
                break
            at = draw(st.integers(min_value=0, max_value=len(text) - 1))
            mangle = draw(st.sampled_from(["flip", "cut", "insert"]))
            if mangle == "flip":
                text[at] = draw(st.integers(min_value=0, max_value=255))
            elif mangle == "cut":
                del text[at:]
            else:
                text[at:at] = draw(st.sampled_from([b"[", b"{", b'"', b"\\u0000", b"\xff", b"&a", b"*a", b": "]))
        raw = bytes(text)
        ctype = draw(st.sampled_from(["application/json", "application/yaml"]))
    return FuzzRequest(method, path, raw, ctype, kind)


def base_objects(name: str = "fuzz") -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) for the ``<name>-base`` objects the merge patches target."""
    return [(path, valid_object(kind, f"{name}-base")) for kind, (path, _) in sorted(KINDS.items())]


def created_name(reply_body: bytes) -> str | None:
    """The name of an object a 201 created (to delete it again, keeping the server's memory flat)."""
    try:
        return str(json.loads(reply_body)["metadata"]["name"])
    except (ValueError, KeyError, TypeError):
        return None
