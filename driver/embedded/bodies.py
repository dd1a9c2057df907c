"""Request bodies decoded the way the real API server bounds them: size, nesting depth and YAML alias expansion.

kube-apiserver refuses a body over 3 MiB with 413 (``MaxRequestBodyBytes``: twice etcd's 1.5 MiB object limit,
since JSON is larger than the protobuf it stores), and its YAML decoder refuses "excessive aliasing", the fix for
CVE-2019-11253 ("billion laughs": a few hundred bytes of anchors and aliases that expand to gigabytes). Here the
YAML event stream is walked first, counting what the aliases would expand to and how deep the document nests,
before any Python object is built; JSON is parsed and then measured. Every refusal is a 400 ``BadRequest`` that
names the limit, so a client learns what to change instead of seeing a 500 or a stalled server.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from snn_dra.driver.embedded import protobuf
from snn_dra.driver.embedded.errors import ApiError, BadRequest

MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
"""kube-apiserver's default ``MaxRequestBodyBytes`` (3 MiB)."""
MAX_NESTING_DEPTH = 100
"""Deepest nesting of objects and lists accepted. Kubernetes objects stay far below it (a Pod with affinity
rules is about 15 levels); Go's JSON decoder stops at 10,000, which a Python server cannot recurse through."""
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000
_MIN_EXPANSION_CHECKED = 1000
_MAX_EXPANDED_NODES = 4_000_000

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader without timestamp resolution: Kubernetes reads ``2026-01-01`` as the string it is."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


def _allowed_alias_ratio(nodes: int) -> float:
    """go-yaml's rule: up to 99 % of a small document may come from aliases, scaling down to 10 % for big ones."""
    if nodes <= _ALIAS_RATIO_LOW:
        return 0.99
    if nodes >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (nodes - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _too_deep(what: str) -> BadRequest:
    return BadRequest(f"the {what} nests objects and lists deeper than {MAX_NESTING_DEPTH} levels; flatten it")


def check_yaml(raw: bytes, what: str = "request body") -> None:
    """Refuse YAML whose aliases expand too far, whose anchors contain themselves, or that nests too deep.

    Works on the parser's events (libyaml, iterative), so nothing is expanded or recursed through while checking.
    """
    anchors: dict[str, int] = {}  # anchor -> expanded node count of its (complete) node
    open_anchors: set[str] = set()
    stack: list[tuple[str | None, int]] = []  # (anchor of the open collection, nodes expanded inside it so far)
    total = real = 0

    def add(count: int) -> None:
        nonlocal total
        total += count
        if stack:
            anchor, inner = stack[-1]
            stack[-1] = (anchor, inner + count)
        if total > _MAX_EXPANDED_NODES or (
            total > _MIN_EXPANSION_CHECKED and (total - real) / total > _allowed_alias_ratio(total) and real < total
            and total - real > 100
        ):
            raise BadRequest(f"the {what} is YAML whose aliases expand to more than {min(total, _MAX_EXPANDED_NODES)} "
                             "nodes (excessive aliasing); write the values out instead of repeating aliases")

    try:
        for event in yaml.parse(raw, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise BadRequest(f"the {what} is YAML whose anchor {event.anchor!r} contains itself")
                if event.anchor not in anchors:
                    raise BadRequest(f"the {what} is YAML with an unknown alias {event.anchor!r}")
                add(anchors[event.anchor])
            elif isinstance(event, yaml.ScalarEvent):
                real += 1
                add(1)
                if event.anchor:
                    anchors[event.anchor] = 1
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_NESTING_DEPTH:
                    raise _too_deep(what)
                real += 1
                if event.anchor:
                    open_anchors.add(event.anchor)
                stack.append((event.anchor, 1))
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                anchor, inner = stack.pop()
                if anchor:
                    open_anchors.discard(anchor)
                    anchors[anchor] = inner
                total += 1
                if stack:
                    parent_anchor, parent_inner = stack[-1]
                    stack[-1] = (parent_anchor, parent_inner + inner)
    except yaml.YAMLError as e:
        raise BadRequest(f"the {what} is not valid YAML: {e}") from e


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is out of range (JSON numbers must be finite)")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _jsonable(value: Any, what: str) -> Any:
    """YAML data as the JSON the API server would see: string keys, no binary, sets, dates or non-finite floats."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(k, (dict, list, tuple)):
                raise BadRequest(f"the {what} has a map key that is a collection; keys must be strings")
            key = k if isinstance(k, str) else json.dumps(k) if isinstance(k, (bool, type(None))) else str(k)
            out[key] = _jsonable(v, what)
        return out
    if isinstance(value, list):
        return [_jsonable(v, what) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise BadRequest(f"the {what} has the number {value}, which JSON cannot hold; use a finite number")
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise BadRequest(f"the {what} has a YAML {type(value).__name__} value, which has no JSON form; use a string")


def nesting_depth(value: Any, limit: int = MAX_NESTING_DEPTH) -> int:
    """Depth of nested dicts/lists (a scalar is 0), counted iteratively; stops counting past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((c, depth) for c in children if isinstance(c, (dict, list)))
    return deepest


def decode(raw: bytes, content_type: str, what: str = "request body") -> Any:
    """The body as JSON-like Python data; ``BadRequest`` (400) for anything the real server would not decode."""
    if content_type == protobuf.MEDIA_TYPE:
        try:
            return protobuf.decode(raw)
        except ApiError:
            raise
        except Exception as e:  # any malformed protobuf is the client's error, never a 500
            raise BadRequest(f"the {what} is not a valid protobuf envelope: {e}") from e
    is_yaml = "yaml" in content_type
    try:
        if is_yaml:
            check_yaml(raw, what)
            value = _jsonable(yaml.load(raw, Loader=_Loader), what)  # noqa: S506 - a safe loader
        else:
            value = json.loads(raw, parse_float=_finite, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep(what) from None
    except (ValueError, yaml.YAMLError) as e:
        raise BadRequest(f"the {what} is not valid {'YAML' if is_yaml else 'JSON'}: {e}") from e
    if nesting_depth(value) > MAX_NESTING_DEPTH:
        raise _too_deep(what)
    return value
