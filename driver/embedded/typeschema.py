"""How server-side apply sees a kind's fields: structs, granular maps, associative lists, sets and atomic values.

Read from the upstream OpenAPI definitions (``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``,
``x-kubernetes-map-type``) that kubernetes-validate ships, the same schemas ``/openapi/v3`` serves, so ownership
and merging follow the markers upstream's structured-merge-diff follows. A list without a list type is atomic,
as there.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from snn_dra.driver.embedded import openapi

Shape = Literal["struct", "map", "listmap", "set", "atomic"]
_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True)
class Node:
    """One schema node, resolved; ``schema`` is empty when the kind's schema does not describe the field."""

    defs: Mapping[str, Any]
    schema: Mapping[str, Any]

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        for _ in range(16):
            ref = node.get("$ref")
            if isinstance(ref, str):
                node = self.defs.get(ref.rsplit("/", 1)[-1], _EMPTY)
                continue
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
                node = all_of[0]
                continue
            break
        return node

    def shape(self, value: Any) -> Shape:
        s = self.schema
        if s.get("x-kubernetes-map-type") == "atomic" or s.get("x-kubernetes-list-type") == "atomic":
            return "atomic"
        if "properties" in s:
            return "struct"
        if "additionalProperties" in s:
            return "map"
        if "items" in s:
            kind = s.get("x-kubernetes-list-type")
            return "listmap" if kind == "map" and self.keys() else "set" if kind == "set" else "atomic"
        if not s and isinstance(value, dict):
            return "map"  # undescribed object (fields this profile does not know): granular, as unstructured
        return "atomic"

    def child(self, field: str) -> Node:
        props = self.schema.get("properties")
        if isinstance(props, Mapping) and isinstance(props.get(field), Mapping):
            return Node(self.defs, self._resolve(props[field]))
        extra = self.schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            return Node(self.defs, self._resolve(extra))
        return Node(self.defs, _EMPTY)

    def declares(self, field: str) -> bool:
        props = self.schema.get("properties")
        return isinstance(props, Mapping) and field in props

    def item(self) -> Node:
        items = self.schema.get("items")
        return Node(self.defs, self._resolve(items) if isinstance(items, Mapping) else _EMPTY)

    def keys(self) -> tuple[str, ...]:
        keys = self.schema.get("x-kubernetes-list-map-keys")
        return tuple(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else ()


@functools.lru_cache(maxsize=64)
def root(profile: str, group: str, kind: str) -> Node:
    """The schema of ``kind`` (group/v1) in ``profile``; an empty node (everything granular) if unknown."""
    defs = openapi.definitions(profile)
    name = openapi.schema_name(defs, group, kind)
    return Node(defs, defs.get(name, _EMPTY) if name else _EMPTY)
