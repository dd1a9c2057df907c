"""Field ownership (``metadata.managedFields``) and server-side apply, the subset of structured-merge-diff we need.

Every write that names a field manager (the ``fieldManager`` parameter, else the client's User-Agent product, as
upstream) records which fields that manager set: an Update takes the fields it changed away from every other
manager; an Apply owns exactly the fields of its configuration, merges them into the object (structs and granular
maps field by field, associative lists item by item on their keys, sets by value, everything else atomic; the
markers come from ``typeschema``), removes the fields it owned before and no longer applies (unless another
manager owns them too), and answers 409 when another manager owns a field it would set to a different value,
unless ``force`` hands that field over.

Paths are tuples of upstream's FieldsV1 keys (``f:name``, ``k:{"name":"x"}``, ``v:"value"``), so encoding them
as ``fieldsV1`` is a matter of nesting (``.`` marks a node owned itself that also has owned children).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snn_dra.driver.embedded.errors import BadRequest, Conflict
from snn_dra.driver.embedded.typeschema import Node

Path = tuple[str, ...]
FieldSet = set[Path]
MISSING: Any = object()
APPLY, UPDATE = "Apply", "Update"

# Fields no manager owns (upstream's stripMetaManager): identity and server-set metadata.
_STRIPPED: frozenset[Path] = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {
    ("f:metadata", f"f:{f}") for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid", "generation",
                                       "managedFields", "resourceVersion", "deletionTimestamp",
                                       "deletionGracePeriodSeconds")})


def _key_of(item: Mapping[str, Any], keys: Iterable[str]) -> str:
    return "k:" + json.dumps({k: item[k] for k in keys if k in item}, sort_keys=True, separators=(",", ":"))


def _value_key(value: Any) -> str:
    return "v:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def _item_key(node: Node, item: Any) -> str | None:
    return _key_of(item, node.keys()) if isinstance(item, dict) else None


# -- field sets ---------------------------------------------------------------------------------------------------

def field_set(value: Any, node: Node, path: Path = ()) -> FieldSet:
    """The fields ``value`` sets, as upstream's ToFieldSet lists them (leaves, list items, map entries)."""
    out: FieldSet = set()
    _walk(value, node, path, out)
    return out


def _walk(value: Any, node: Node, path: Path, out: FieldSet) -> None:
    shape = node.shape(value)
    if shape in ("struct", "map") and isinstance(value, dict):
        if not value:
            out.add(path)
            return
        for k, v in value.items():
            child, p = node.child(k), (*path, f"f:{k}")
            _walk(v, child, p, out)
            if v is None or v == {} or shape == "map" or not node.declares(k):
                out.add(p)
    elif shape == "listmap" and isinstance(value, list) and value:
        item = node.item()
        for v in value:
            key = _item_key(node, v)
            if key is None:
                out.add(path)  # not an object: the list cannot be merged, own it whole
                return
            out.add((*path, key))
            _walk(v, item, (*path, key), out)
    elif shape == "set" and isinstance(value, list) and value:
        out.update((*path, _value_key(v)) for v in value)
    elif path:
        out.add(path)


def value_at(obj: Any, path: Path) -> Any:
    cur = obj
    for el in path:
        cur = _step(cur, el)
        if cur is MISSING:
            return MISSING
    return cur


def _step(cur: Any, el: str) -> Any:
    kind, rest = el[:2], el[2:]
    if kind == "f:":
        return cur.get(rest, MISSING) if isinstance(cur, dict) else MISSING
    if not isinstance(cur, list):
        return MISSING
    if kind == "k:":
        want = json.loads(rest)
        return next((i for i in cur if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())),
                    MISSING)
    if kind == "v:":
        want = json.loads(rest)
        return next((i for i in cur if i == want), MISSING)
    if kind == "i:" and rest.isdigit() and int(rest) < len(cur):
        return cur[int(rest)]
    return MISSING


def remove_at(obj: Any, path: Path) -> None:
    parent = value_at(obj, path[:-1])
    el = path[-1]
    if el.startswith("f:") and isinstance(parent, dict):
        parent.pop(el[2:], None)
    elif isinstance(parent, list):
        found = _step(parent, el)
        if found is not MISSING:
            parent.remove(found)


def _strip(paths: FieldSet, subresource: str | None, has_status: bool) -> FieldSet:
    out = {p for p in paths if p and p not in _STRIPPED}
    if subresource == "status":
        return {p for p in out if p[0] == "f:status"}
    if has_status:
        return {p for p in out if p[0] != "f:status"}
    return out


def changed(old: Any, new: Any, node: Node, path: Path = ()) -> FieldSet:
    """Fields ``new`` adds or changes compared with ``old`` (upstream's Added + Modified of an Update)."""
    out: FieldSet = set()
    _diff(old, new, node, path, out)
    return out


def _diff(old: Any, new: Any, node: Node, path: Path, out: FieldSet) -> None:
    if old is MISSING:
        if path:
            out.add(path)
        _walk(new, node, path, out)
        return
    shape = node.shape(new)
    if shape in ("struct", "map") and isinstance(new, dict) and isinstance(old, dict) and (new or old):
        for k, v in new.items():
            _diff(old.get(k, MISSING), v, node.child(k), (*path, f"f:{k}"), out)
    elif shape == "listmap" and isinstance(new, list) and isinstance(old, list):
        item = node.item()
        before = {_item_key(node, i): i for i in old}
        for v in new:
            key = _item_key(node, v)
            if key is None:
                if old != new:
                    out.add(path)
                return
            _diff(before.get(key, MISSING), v, item, (*path, key), out)
    elif shape == "set" and isinstance(new, list) and isinstance(old, list):
        out.update((*path, _value_key(v)) for v in new if v not in old)
    elif old != new and path:
        out.add(path)


# -- managedFields entries ----------------------------------------------------------------------------------------

def encode(paths: FieldSet) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    members: list[dict[str, Any]] = []
    for p in sorted(paths):
        node = tree
        for el in p:
            node = node.setdefault(el, {})
        members.append(node)
    for node in members:
        if node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(v) for k, v in sorted(tree.items())}


def decode(fields: Any, path: Path = ()) -> FieldSet:
    out: FieldSet = set()
    if not isinstance(fields, Mapping):
        return out
    if not fields and path:
        out.add(path)
    for k, v in fields.items():
        if k == ".":
            out.add(path)
        elif isinstance(k, str):
            out |= decode(v, (*path, k))
    return out


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str
    fields: FieldSet = field(default_factory=set)

    @property
    def ident(self) -> tuple[str, str, str]:
        return self.manager, self.operation, self.subresource

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
                               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": encode(self.fields)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """How upstream names a manager in a conflict (Update managers with the version they wrote)."""
        return f'"{self.manager}"' if self.operation == APPLY else f'"{self.manager}" using {self.api_version}'


def entries_of(obj: Mapping[str, Any]) -> list[Entry]:
    """The managedFields of a stored object (entries that cannot be read are dropped, as upstream resets them)."""
    meta = obj.get("metadata")
    raw = meta.get("managedFields") if isinstance(meta, Mapping) else None
    out: list[Entry] = []
    for e in raw if isinstance(raw, list) else []:
        if not isinstance(e, Mapping) or not isinstance(e.get("manager"), str):
            continue
        out.append(Entry(e["manager"], str(e.get("operation") or UPDATE), str(e.get("apiVersion") or ""),
                         str(e.get("subresource") or ""), str(e.get("time") or ""), decode(e.get("fieldsV1"))))
    return out


def _finish(entries: list[Entry], obj: Any) -> list[dict[str, Any]]:
    """Entries as JSON, each keeping only fields the object still has; empty ones dropped."""
    out = []
    for e in entries:
        e.fields = {p for p in e.fields if value_at(obj, p) is not MISSING}
        if e.fields:
            out.append(e.to_json())
    return out


def record_update(old: Mapping[str, Any] | None, new: Mapping[str, Any], node: Node, manager: str,
                  api_version: str, subresource: str | None, has_status: bool, now: str) -> list[dict[str, Any]]:
    """managedFields after ``manager`` turned ``old`` (None: nothing, a create) into ``new`` by an Update."""
    if old is None:
        base: Any = {k: {} for k, v in new.items() if isinstance(v, dict)}
        entries: list[Entry] = []
    else:
        base, entries = old, entries_of(new)
    taken = _strip(changed(base, new, node), subresource, has_status)
    sub = subresource or ""
    mine = next((e for e in entries if e.ident == (manager, UPDATE, sub)), None)
    for e in entries:
        if e is not mine:
            e.fields -= taken
    if taken:
        if mine is None:
            mine = Entry(manager, UPDATE, api_version, sub, now)
            entries.append(mine)
        mine.fields |= taken
        mine.time, mine.api_version = now, api_version
    return _finish(entries, new)


# -- apply --------------------------------------------------------------------------------------------------------

@dataclass
class Applied:
    obj: dict[str, Any]
    managed_fields: list[dict[str, Any]]


def merge(live: Any, cfg: Any, node: Node) -> Any:
    """``cfg`` merged into ``live`` with the schema's merge rules."""
    if live is MISSING or live is None or cfg is None:
        return copy.deepcopy(cfg)
    shape = node.shape(cfg)
    if shape in ("struct", "map") and isinstance(live, dict) and isinstance(cfg, dict):
        out = dict(live)
        for k, v in cfg.items():
            out[k] = merge(live.get(k, MISSING), v, node.child(k))
        return out
    if shape == "listmap" and isinstance(live, list) and isinstance(cfg, list):
        keys = [_item_key(node, i) for i in live]
        if None in keys or any(_item_key(node, i) is None for i in cfg):
            return copy.deepcopy(cfg)
        out_list = list(live)
        item = node.item()
        for v in cfg:
            key = _item_key(node, v)
            if key in keys:
                idx = keys.index(key)
                out_list[idx] = merge(out_list[idx], v, item)
            else:
                out_list.append(copy.deepcopy(v))
                keys.append(key)
        return out_list
    if shape == "set" and isinstance(live, list) and isinstance(cfg, list):
        return list(live) + [copy.deepcopy(v) for v in cfg if v not in live]
    return copy.deepcopy(cfg)


def _conflict_path(path: Path) -> str:
    out = ""
    for el in path:
        kind, rest = el[:2], el[2:]
        if kind == "f:":
            out += f".{rest}"
        elif kind == "k:":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]"
        elif kind == "v:":
            out += f"[={rest}]"
        else:
            out += f"[{rest}]"
    return out


def _conflict_error(resource: str, group: str, name: str, found: list[tuple[Entry, Path]]) -> Conflict:
    n = len(found)
    if n == 1:
        who, p = found[0]
        body = f"conflict with {who.describe()}: {_conflict_path(p)}"
    else:
        by: dict[str, list[str]] = {}
        for who, p in found:
            by.setdefault(who.describe(), []).append(_conflict_path(p))
        if len(by) == 1:
            (who_s, paths), = by.items()
            body = f"conflicts with {who_s}:\n" + "".join(f"- {p}\n" for p in paths)
        else:
            body = "conflicts with:\n" + "".join(f"{w}:\n" + "".join(f"- {p}\n" for p in ps) for w, ps in by.items())
    err = Conflict(f"Apply failed with {n} conflict{'s' if n != 1 else ''}: {body}")
    err.details = {"name": name, "kind": resource, "causes": [
        {"reason": "FieldManagerConflict", "message": f"conflict with {who.describe()}", "field": _conflict_path(p)}
        for who, p in found]}
    if group:
        err.details["group"] = group
    return err


def apply(live: Mapping[str, Any] | None, cfg: Mapping[str, Any], node: Node, *, manager: str, force: bool,
          api_version: str, subresource: str | None, has_status: bool, now: str,
          who: tuple[str, str, str]) -> Applied:
    """Server-side apply of ``cfg`` by ``manager`` to ``live`` (None: the object does not exist yet).

    ``who`` is (resource, group, name) for the 409's wording.
    """
    if not isinstance(cfg, Mapping):
        raise BadRequest("an apply configuration must be an object")
    sub = subresource or ""
    applied = _strip(field_set(dict(cfg), node), subresource, has_status)
    current: dict[str, Any] = copy.deepcopy(dict(live)) if live is not None else {}
    entries = entries_of(current) if live is not None else []
    mine = next((e for e in entries if e.ident == (manager, APPLY, sub)), None)
    conflicts: list[tuple[Entry, Path]] = []
    for e in entries:
        if e is mine:
            continue
        for p in sorted(applied & e.fields):
            want, have = value_at(cfg, p), value_at(current, p)
            if have is MISSING or p[-1][:2] in ("k:", "v:") or (isinstance(want, dict) and want):
                continue
            if want != have:
                conflicts.append((e, p))
    if conflicts and not force:
        raise _conflict_error(*who, conflicts)
    for e, p in conflicts:
        e.fields.discard(p)
    merged = merge(current, dict(cfg), node) if current else copy.deepcopy(dict(cfg))
    if mine is not None:
        others = [e for e in entries if e is not mine]
        for p in sorted(mine.fields - applied, key=len, reverse=True):
            if any(q[:len(p)] == p for q in applied):
                continue  # still applied below this path
            if any(q[:len(p)] == p for e in others for q in e.fields):
                continue  # another manager still owns it
            remove_at(merged, p)
    if mine is None:
        mine = Entry(manager, APPLY, api_version, sub, now)
        entries.append(mine)
    mine.fields, mine.time, mine.api_version = applied, now, api_version
    return Applied(merged, _finish(entries, merged))
