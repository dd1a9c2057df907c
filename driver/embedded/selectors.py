"""Label and field selectors with the syntax and error messages of the real API server."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from snn_dra.driver.embedded.errors import BadRequest
from snn_dra.driver.embedded.resources import ResourceInfo, field_selectors

Predicate = Callable[[Mapping[str, Any]], bool]


def _split_top(expr: str) -> list[str]:
    """Split at commas outside parentheses (``a in (x,y),b``)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_RE = re.compile(r"^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$")
_EXISTS_RE = re.compile(r"^(!?)\s*([^\s!=(),]+)$")


def parse_label_selector(selector: str) -> Predicate:
    terms: list[Predicate] = []
    for raw in _split_top(selector or ""):
        m = _SET_RE.match(raw)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                terms.append(lambda lb, k=key, vs=vals: lb.get(k) in vs)  # type: ignore[misc]
            else:
                terms.append(lambda lb, k=key, vs=vals: lb.get(k) not in vs)  # type: ignore[misc]
            continue
        m = _EQ_RE.match(raw)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            if op == "!=":
                terms.append(lambda lb, k=key, v=val: lb.get(k) != v)  # type: ignore[misc]
            else:
                terms.append(lambda lb, k=key, v=val: lb.get(k) == v)  # type: ignore[misc]
            continue
        m = _EXISTS_RE.match(raw)
        if m:
            key = m.group(2)
            if m.group(1):
                terms.append(lambda lb, k=key: k not in lb)  # type: ignore[misc]
            else:
                terms.append(lambda lb, k=key: k in lb)  # type: ignore[misc]
            continue
        raise BadRequest(f"unable to parse requirement: found '{raw}', expected: in, notin, =, ==, !=, gt, lt")

    def match(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        return all(t(labels if isinstance(labels, Mapping) else {}) for t in terms)

    return match


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(selector: str, info: ResourceInfo, version: str | None = None) -> Predicate:
    """``version`` (the emulated Kubernetes minor) limits the fields to those that version supports."""
    supported = field_selectors(info, version)
    terms: list[tuple[str, bool, str]] = []
    for raw in _split_top(selector or ""):
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", raw)
        if not m:
            raise BadRequest(f"invalid selector: '{selector}'; can't understand '{raw}'")
        key, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        if key not in supported:
            raise BadRequest(f'field label not supported: {key}', {"causes": [
                {"reason": "FieldValueNotSupported", "message": f"supported: {', '.join(sorted(supported))}",
                 "field": "fieldSelector"}]})
        terms.append((key, op != "!=", val))

    def match(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, k) == v) == eq for k, eq, v in terms)

    return match
