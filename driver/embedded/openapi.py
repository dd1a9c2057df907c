"""OpenAPI v3 documents for the served group-versions, derived from kubernetes-validate's upstream schemas.

kubectl needs them for two things: ``apply``/``create`` check that PATCH accepts ``fieldValidation`` (else it
refuses without ``--validate=false``), and ``explain`` reads the schemas. The upstream definitions ship as JSON
Schema (nullable type lists, ``$defs``); they are turned back into OpenAPI 3 component schemas here.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import kubernetes_validate

from snn_dra.driver.embedded.resources import RESOURCES

_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
           for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")]


@functools.lru_cache(maxsize=8)
def definitions(profile: str) -> dict[str, Any]:
    """The upstream schema definitions of Kubernetes ``profile`` (loaded once; callers must not modify them)."""
    return _definitions(profile)


def _definitions(profile: str) -> dict[str, Any]:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{profile}.0-local"
    with open(base / "_definitions.json") as f:
        defs: dict[str, Any] = json.load(f)["$defs"]
    return defs


def _convert(node: Any, ref_prefix: str = "#/components/schemas/") -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out[k] = v.replace("#/$defs/", ref_prefix)
            elif k == "type" and isinstance(v, list):
                types = [t for t in v if t != "null"]
                out[k] = types[0] if types else "object"
            elif k == "enum" and node.get("type") and isinstance(node.get("type"), list):
                continue  # apiVersion/kind enums were added by the JSON-schema conversion
            else:
                out[k] = _convert(v, ref_prefix)
        return out
    if isinstance(node, list):
        return [_convert(v, ref_prefix) for v in node]
    return node


def _refs(node: Any, acc: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            acc.add(ref[len("#/$defs/"):])
        for v in node.values():
            _refs(v, acc)
    elif isinstance(node, list):
        for v in node:
            _refs(v, acc)


def schema_name(defs: dict[str, Any], group: str, kind: str) -> str | None:
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if gvk.get("group") == group and gvk.get("version") == "v1" and gvk.get("kind") == kind:
                return name
    return None


@functools.lru_cache(maxsize=16)
def _document(profile: str, group: str, served: frozenset[str]) -> str:
    defs = definitions(profile)
    paths: dict[str, Any] = {}
    wanted: set[str] = set()
    for plural in sorted(served):
        info = RESOURCES[plural]
        if info.group != group:
            continue
        gvk = {"group": group, "version": "v1", "kind": info.kind}
        schema = schema_name(defs, group, info.kind)
        if schema:
            wanted.add(schema)
        prefix = f"/apis/{group}/v1" if group else "/api/v1"
        item = f"{prefix}/namespaces/{{namespace}}/{plural}/{{name}}" if info.namespaced else \
            f"{prefix}/{plural}/{{name}}"
        collection = item.rsplit("/", 1)[0]
        ref = {"$ref": f"#/components/schemas/{schema}"} if schema else {"type": "object"}
        body = {"content": {"application/json": {"schema": ref}}}
        op = {"x-kubernetes-group-version-kind": gvk, "parameters": _PARAMS,
              "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}}
        paths[collection] = {"post": {**op, "x-kubernetes-action": "post", "requestBody": body}}
        paths[item] = {"get": {**op, "x-kubernetes-action": "get"},
                       "put": {**op, "x-kubernetes-action": "put", "requestBody": body},
                       "patch": {**op, "x-kubernetes-action": "patch",
                                 "requestBody": {"content": {"application/merge-patch+json": {"schema": {
                                     "type": "object"}}}}},
                       "delete": {**op, "x-kubernetes-action": "delete"}}
    seen = _closure(defs, wanted)
    schemas = {name: _convert(defs[name]) for name in sorted(seen)}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes (snn-dra embedded)", "version": f"v{profile}.0"},
           "paths": paths, "components": {"schemas": schemas}}
    return json.dumps(doc)


def group_version_path(group: str) -> str:
    return f"apis/{group}/v1" if group else "api/v1"


def document(profile: str, group: str, served: frozenset[str]) -> str:
    return _document(profile, group, served)


def index(profile: str, groups: list[str], served: frozenset[str]) -> dict[str, Any]:
    paths = {}
    for g in groups:
        digest = hashlib.sha256(document(profile, g, served).encode()).hexdigest()[:32].upper()
        gvp = group_version_path(g)
        paths[gvp] = {"serverRelativeURL": f"/openapi/v3/{gvp}?hash={digest}"}
    return {"paths": paths}


def _closure(defs: dict[str, Any], wanted: set[str]) -> set[str]:
    todo, seen = list(wanted), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        acc: set[str] = set()
        _refs(defs[name], acc)
        todo.extend(acc - seen)
    return seen


@functools.lru_cache(maxsize=8)
def swagger(profile: str, served: frozenset[str]) -> str:
    """The OpenAPI v2 (Swagger 2.0) document of every served kind, as ``/openapi/v2`` answers it in JSON.

    Some clients and kubectl commands (``explain --output=plaintext-openapiv2``, older validation paths) read it;
    it holds the same upstream schemas as the v3 documents.
    """
    defs = definitions(profile)
    params = [{"name": n, "in": "query", "type": "string", "uniqueItems": True}
              for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")]
    paths: dict[str, Any] = {}
    wanted: set[str] = set()
    for plural in sorted(served):
        info = RESOURCES[plural]
        gvk = {"group": info.group, "version": info.version, "kind": info.kind}
        schema = schema_name(defs, info.group, info.kind)
        if schema:
            wanted.add(schema)
        prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
        item = f"{prefix}/namespaces/{{namespace}}/{plural}/{{name}}" if info.namespaced else \
            f"{prefix}/{plural}/{{name}}"
        ref = {"$ref": f"#/definitions/{schema}"} if schema else {"type": "object"}
        op = {"x-kubernetes-group-version-kind": gvk, "parameters": params, "consumes": ["application/json"],
              "produces": ["application/json"], "responses": {"200": {"description": "OK", "schema": ref}}}
        body = {"name": "body", "in": "body", "required": True, "schema": ref}
        paths[item.rsplit("/", 1)[0]] = {"post": {**op, "x-kubernetes-action": "post",
                                                  "parameters": [*params, body]}}
        paths[item] = {"get": {**op, "x-kubernetes-action": "get"},
                       "put": {**op, "x-kubernetes-action": "put", "parameters": [*params, body]},
                       "patch": {**op, "x-kubernetes-action": "patch", "consumes": [
                           "application/json-patch+json", "application/merge-patch+json",
                           "application/strategic-merge-patch+json", "application/apply-patch+yaml"],
                           "parameters": [*params, {**body, "schema": {"type": "object"}}]},
                       "delete": {**op, "x-kubernetes-action": "delete"}}
    schemas = {name: _convert(defs[name], "#/definitions/") for name in sorted(_closure(defs, wanted))}
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes (snn-dra embedded)", "version": f"v{profile}.0"},
           "paths": paths, "definitions": schemas}
    return json.dumps(doc)
