"""Patch formats the API server accepts: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge.

Strategic merge is a JSON merge patch plus merge-by-key for the core lists kubectl patches that way
(``containers`` by ``name``, ``conditions`` by ``type``...) and ``$patch: delete`` elements; the DRA types
declare no patch strategies upstream, so for them it is a merge patch plus ObjectMeta's strategies (finalizers are
a merge list, with ``$deleteFromPrimitiveList/finalizers``; ownerReferences merge by uid). Other directives are
ignored.
"""

from __future__ import annotations

import copy
from typing import Any

from snn_dra.driver.embedded.errors import ApiError, BadRequest, UnsupportedMediaType

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC, APPLY)


# Upstream patchMergeKey of core/v1 lists (field name -> key); lists not named here are replaced.
STRATEGIC_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
    "env": "name", "volumeMounts": "mountPath", "ports": "containerPort", "resourceClaims": "name",
    "claims": "name", "imagePullSecrets": "name", "conditions": "type", "ownerReferences": "uid",
}


def merge_patch(target: Any, patch: Any, keys: dict[str, str] | None = None) -> Any:
    """RFC 7386 merge; with ``keys`` (strategic merge), the named lists of objects are merged by their key."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # strategic-merge directives ($setElementOrder, $retainKeys...) are ignored
            continue
        if value is None:
            out.pop(key, None)
        elif keys and key in keys and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_list(out[key], value, keys[key], keys)
        else:
            out[key] = merge_patch(out.get(key), value, keys)
    return out


def _merge_list(target: list[Any], patch: list[Any], key: str, keys: dict[str, str]) -> list[Any]:
    if not all(isinstance(e, dict) and key in e for e in patch + target):
        return copy.deepcopy(patch)
    out = [copy.deepcopy(e) for e in target]
    for element in patch:
        idx = next((i for i, e in enumerate(out) if e.get(key) == element[key]), None)
        if element.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(merge_patch({}, element, keys))
        else:
            out[idx] = merge_patch(out[idx], element, keys)
    return out


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    if not pointer.startswith("/"):
        raise BadRequest(f"the JSON pointer {pointer!r} must start with '/'")
    tokens = [_unescape(t) for t in pointer[1:].split("/")]
    cur = doc
    for t in tokens[:-1]:
        cur = _child(cur, t, pointer)
    return cur, tokens[-1]


def _child(cur: Any, token: str, pointer: str) -> Any:
    if isinstance(cur, dict):
        if token not in cur:
            raise _Unprocessable._make(f"jsonpatch: path {pointer!r} not found: missing key {token!r}")
        return cur[token]
    if isinstance(cur, list):
        try:
            return cur[int(token)]
        except (ValueError, IndexError):
            raise _Unprocessable._make(f"jsonpatch: path {pointer!r}: invalid index {token!r}") from None
    raise _Unprocessable._make(f"jsonpatch: path {pointer!r} does not exist")


class _Unprocessable(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 422
    reason = "Invalid"

    @classmethod
    def _make(cls, message: str) -> _Unprocessable:
        return cls(message)


def _get(doc: Any, pointer: str) -> Any:
    if pointer == "":
        return doc
    parent, key = _parent(doc, pointer)
    return copy.deepcopy(_child(parent, key, pointer))


def _add(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    parent, key = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        else:
            try:
                idx = int(key)
            except ValueError:
                raise _Unprocessable._make(f"jsonpatch: invalid index {key!r} in {pointer!r}") from None
            if idx < 0 or idx > len(parent):
                raise _Unprocessable._make(f"jsonpatch: index {idx} out of range in {pointer!r}")
            parent.insert(idx, value)
    else:
        raise _Unprocessable._make(f"jsonpatch: cannot add at {pointer!r}")
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    parent, key = _parent(doc, pointer)
    _child(parent, key, pointer)
    if isinstance(parent, dict):
        del parent[key]
    else:
        del parent[int(key)]
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise BadRequest("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise BadRequest(f"invalid JSON patch operation {op!r}: needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            doc = _remove(doc, path) if path else doc
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = _get(doc, op["from"])
            doc = _add(_remove(doc, op["from"]), path, value)
        elif kind == "copy":
            doc = _add(doc, path, _get(doc, op["from"]))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise _Unprocessable._make(f"jsonpatch: test operation for path {path!r} failed")
        else:
            raise BadRequest(f"unknown JSON patch operation {kind!r}: use add, remove, replace, move, copy or test")
    return doc


# ObjectMeta's own strategies hold for every kind, DRA kinds included (ObjectMeta carries the struct tags).
_META_MERGE_KEYS = {"ownerReferences": "uid"}
_DELETE_FROM = "$deleteFromPrimitiveList/"


def _merge_finalizers(target: Any, body: Any) -> Any:
    """``metadata.finalizers`` is a merge list of strings upstream: a patch adds to it, never replaces it.

    ``$deleteFromPrimitiveList/finalizers`` removes the named entries; ``finalizers: null`` still clears the list.
    Returns the body with the merged list in place, ready for the generic merge.
    """
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        return body
    meta = body["metadata"]
    if "finalizers" not in meta and _DELETE_FROM + "finalizers" not in meta:
        return body
    old_meta = target.get("metadata") if isinstance(target, dict) else None
    current = old_meta.get("finalizers") if isinstance(old_meta, dict) else None
    merged = [f for f in current if isinstance(f, str)] if isinstance(current, list) else []
    removed = meta.get(_DELETE_FROM + "finalizers")
    if removed is not None and not isinstance(removed, list):
        raise BadRequest("$deleteFromPrimitiveList/finalizers must be a list of finalizer names")
    merged = [f for f in merged if f not in (removed or [])]
    added = meta.get("finalizers", [])
    if added is None:
        merged = []
    elif not isinstance(added, list):
        raise BadRequest("metadata.finalizers must be a list of finalizer names")
    else:
        merged += [f for f in dict.fromkeys(added) if f not in merged]
    out = dict(body)
    out["metadata"] = {k: v for k, v in meta.items() if k != _DELETE_FROM + "finalizers"}
    out["metadata"]["finalizers"] = merged or None
    return out


def apply_patch(patch_type: str, target: Any, body: Any) -> Any:
    if patch_type in (MERGE, APPLY):
        return merge_patch(target, body)
    if patch_type == STRATEGIC:
        core = isinstance(target, dict) and target.get("apiVersion") == "v1"
        return merge_patch(target, _merge_finalizers(target, body), STRATEGIC_MERGE_KEYS if core else _META_MERGE_KEYS)
    if patch_type == JSON_PATCH:
        return json_patch(target, body)
    raise UnsupportedMediaType(f"the body of the request was in an unknown format - accepted media types include: "
                               f"{', '.join(PATCH_TYPES)}")
