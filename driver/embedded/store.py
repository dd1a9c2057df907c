"""Thread-safe in-memory object storage with the semantics of the real API server.

One ``Store`` backs both the HTTP API and in-process callers (scheduler, kubelet emulation), so defaulting,
field dropping by feature gate, validation, resourceVersion, finalizers, garbage collection and watch are the
same whichever way an object is written. Objects are plain JSON dicts (camelCase), always copied in and out.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from snn_dra.driver.embedded import managedfields, paging, patches, typeschema
from snn_dra.driver.embedded.canonical import canonicalize_quantities
from snn_dra.driver.embedded.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    InternalError,
    Invalid,
    NotFound,
    Timeout,
)
from snn_dra.driver.embedded.listoptions import INITIAL_EVENTS_END
from snn_dra.driver.embedded.metavalidation import validate_metadata
from snn_dra.driver.embedded.profiles import Profile, drop_disabled_fields, resolve_profile, served_resources
from snn_dra.driver.embedded.resources import RESOURCE_GROUP, RESOURCES, STRUCTURAL_ONLY, ResourceInfo
from snn_dra.driver.embedded.selectors import parse_field_selector, parse_label_selector
from snn_dra.driver.validation import validate_object
from snn_dra.driver.validation.admission import admin_access_errors
from snn_dra.driver.validation.errors import CauseType, FieldError
from snn_dra.driver.validation.structural import validate_structure

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjList = list[Obj]
Warnings = list[str]
Managed = list[dict[str, Any]]  # metadata.managedFields
FieldErrors = list[FieldError]
Validator = Callable[[Mapping[str, Any], Mapping[str, Any] | None, str], list[FieldError]]

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")  # as a new cluster has
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
"""Namespaces the NamespaceLifecycle admission plugin refuses to delete (403)."""
_UPDATE_ATTEMPTS = 20
"""How often an update computed outside the lock is recomputed when another write beat it."""
FUTURE_RESOURCE_VERSION_WAIT = 3.0
"""How long a watch from a resourceVersion the store has not reached waits for it (upstream's watch cache: 3 s)."""
NAMESPACE_FINALIZER = "kubernetes"
"""``spec.finalizers`` of every namespace: the namespace controller removes it once the content is gone."""
DEFAULT_POD_GRACE_SECONDS = 30
_INITIAL_END = "INITIAL_END"  # queue marker: the watch-list's initial events are all out
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # upstream generateName alphabet (no vowels, no confusables)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_in(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")




@dataclass
class _Event:
    rv: int
    resource: str
    type: str
    obj: Obj
    prev: Obj | None
    before: Obj | None = None  # the stored object this write replaced or removed (None: there was none)


@dataclass
class _Subscriber:
    resource: str
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event
    pending: deque[_Event] = field(default_factory=deque)

    def notify(self, ev: _Event) -> None:
        self.pending.append(ev)
        with contextlib.suppress(RuntimeError):  # loop closed: the watcher's finally-block unsubscribes it
            self.loop.call_soon_threadsafe(self.wake.set)


def _key(info: ResourceInfo, namespace: str | None, name: str) -> tuple[str, str]:
    return (namespace or "") if info.namespaced else "", name


def _strip_volatile(obj: Mapping[str, Any]) -> Obj:
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata") or {}
    for k in ("resourceVersion", "generation"):
        meta.pop(k, None)
    managed = meta.get("managedFields")
    if isinstance(managed, list):  # a change of owners is a change; a newer timestamp alone is not (as upstream)
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
                                 for e in managed]
    return out


def _content(obj: Mapping[str, Any]) -> Obj:
    """Everything except metadata and status: what ``metadata.generation`` tracks."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _immutable(field_path: str, value: Any) -> FieldError:
    return FieldError(CauseType.INVALID, field_path, f"Invalid value: {json.dumps(value, sort_keys=True)}: "
                                                     "field is immutable")


class Store:
    """In-memory API storage. Every method copies objects in and out; all writes are serialised by one lock.

    ``resource`` arguments are plural REST names (``resourceslices``). Errors are ``errors.ApiError`` subclasses
    carrying the HTTP code and ``Status`` the real API server would return.
    """

    def __init__(self, profile: str = "1.37", feature_gates: Mapping[str, bool] | None = None,
                 history_size: int = 1000, validator: Validator | None = None,
                 namespaces: tuple[str, ...] = BOOTSTRAP_NAMESPACES) -> None:
        self.profile: Profile = resolve_profile(profile, feature_gates)
        self._served = frozenset({r for r, i in RESOURCES.items() if i.group != RESOURCE_GROUP}
                                 | served_resources(self.profile))
        self._lock = threading.RLock()
        self._objs: dict[str, dict[tuple[str, str], Obj]] = {r: {} for r in RESOURCES}
        self._uids: dict[str, tuple[str, tuple[str, str]]] = {}
        self._rv = 0
        self._history: deque[_Event] = deque()
        self._history_size = max(1, history_size)
        self._compacted = 0  # newest resourceVersion no longer in the history
        self._subs: list[_Subscriber] = []
        self._validator = validator
        self._unchecked: set[str] = set()  # uids of objects stored without validation (load_unchecked)
        # owner uid -> the (resource, key) of its dependents, so garbage collection never walks the whole store
        self._dependents: dict[str, set[tuple[str, tuple[str, str]]]] = {}
        self.future_rv_wait = FUTURE_RESOURCE_VERSION_WAIT
        self.namespace_controller_delay: float | None = None
        """Seconds before a deleted namespace's content is deleted (None: within the delete call). The API server
        sets a delay, as a namespace controller reacts after the request: clients may still delete that content
        themselves meanwhile (``kubectl delete -k`` does)."""
        self.kubelet_nodes: set[str] = set()
        """Nodes whose kubelet (emulation) runs: their pods terminate gracefully (see ``delete``)."""
        for ns in namespaces:
            self.create("namespaces", {"metadata": {"name": ns}})

    # -- introspection -----------------------------------------------------------------------------------------

    @property
    def served(self) -> frozenset[str]:
        return self._served

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def info(self, resource: str) -> ResourceInfo:
        if resource not in self._served:
            raise NotFound(f"the server could not find the requested resource ({resource!r} is not served by "
                           f"profile {self.profile.version}; served: {', '.join(sorted(self._served))})")
        return RESOURCES[resource]

    def validated(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` (as read from this store) passed validation when it was written."""
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        uid = meta.get("uid") if isinstance(meta, Mapping) else None
        return isinstance(uid, str) and bool(uid) and uid not in self._unchecked

    def load_unchecked(self, resource: str, obj: Mapping[str, Any]) -> Obj:
        """Store ``obj`` as given: no defaulting, no validation, no admission; watchers see it as ADDED.

        This is what an upgraded API server serves when an older, looser version wrote the object, and every
        controller must survive it (the hardening tests use this). Only uid and resourceVersion are assigned;
        ``metadata`` must be an object with a string name so the object can be addressed (and deleted) at all.
        """
        info = self.info(resource)
        new: Obj = copy.deepcopy(dict(obj))
        meta = new.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise ValueError("load_unchecked needs metadata.name (a string) to address the object")
        with self._lock:
            ns = meta.get("namespace") if info.namespaced else None
            if info.namespaced and not isinstance(ns, str):
                raise ValueError(f"load_unchecked: a {info.kind} needs metadata.namespace (a string)")
            meta["uid"] = str(meta.get("uid") or uuid.uuid4())
            self._unchecked.add(meta["uid"])
            return self._commit(info, "ADDED", new, None)

    # -- reads -------------------------------------------------------------------------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> Obj:
        info = self.info(resource)
        with self._lock:
            obj = self._objs[resource].get(_key(info, namespace, name))
            if obj is None:
                raise NotFound.of(resource, info.group, name)
            return copy.deepcopy(obj)

    def snapshot(self, resource: str) -> tuple[ObjList, str]:
        """The stored objects themselves (unsorted, not copied) and the resourceVersion they were read at.

        For in-process controllers that only read: a write replaces the stored object and never modifies it,
        so a snapshot stays consistent without copying. Modifying one of these objects would corrupt the store.
        """
        self.info(resource)
        with self._lock:
            return list(self._objs[resource].values()), str(self._rv)

    def list(self, resource: str, namespace: str | None = None, label_selector: str = "",
             field_selector: str = "") -> ObjList:
        return self.list_with_version(resource, namespace, label_selector, field_selector)[0]

    def list_with_version(self, resource: str, namespace: str | None = None, label_selector: str = "",
                          field_selector: str = "") -> tuple[ObjList, str]:
        """Matching objects sorted by namespace/name, plus the resourceVersion of the snapshot."""
        info = self.info(resource)
        lsel = parse_label_selector(label_selector)
        fsel = parse_field_selector(field_selector, info, self.profile.version)
        with self._lock:
            out = [copy.deepcopy(o) for (ns, _), o in sorted(self._objs[resource].items())
                   if (not namespace or not info.namespaced or ns == namespace) and lsel(o) and fsel(o)]
            return out, str(self._rv)

    def list_page(self, resource: str, namespace: str | None = None, label_selector: str = "",
                  field_selector: str = "", *, limit: int = 0, continue_token: str = "", resource_version: str = "",
                  resource_version_match: str = "") -> paging.Page:
        """One page of a list (all of it without ``limit``), consistent across pages (see ``paging``).

        ``resource_version`` with ``Exact`` (or, with a ``limit``, a non-zero version without a match: upstream's
        legacy rule) reads the objects as they were at that version; otherwise the newest state is read, after
        waiting (``future_rv_wait``) for a version the store has not reached yet.
        """
        info = self.info(resource)
        lsel = parse_label_selector(label_selector)
        fsel = parse_field_selector(field_selector, info, self.profile.version)
        after: tuple[str, str] | None = None
        at: int | None = None
        if continue_token:
            token = paging.decode(continue_token, info.namespaced)
            after = token.after
            at = None if token.resource_version == paging.INCONSISTENT else token.resource_version
        elif resource_version not in ("", "0"):
            try:
                wanted = int(resource_version)
            except ValueError:
                raise BadRequest(f"invalid resourceVersion {resource_version!r}: must be an integer") from None
            if resource_version_match == "Exact" or (limit > 0 and not resource_version_match):
                at = wanted
            self._wait_until(wanted)

        def matches(o: Obj) -> bool:
            ns_ok = not namespace or not info.namespaced or o["metadata"].get("namespace") == namespace
            return ns_ok and lsel(o) and fsel(o)

        with self._lock:
            if at is None:
                entries = sorted(self._objs[resource].items())
                version = self._rv
            else:
                if at < self._compacted:
                    if continue_token and after is not None:
                        raise paging.expired(after)
                    raise Gone.too_old(at, self._compacted + 1)
                if at > self._rv:
                    raise Timeout.too_large_resource_version(at, self._rv)
                entries = sorted(self._state_at(info, at).items())
                version = at
            page = paging.cut(entries, matches, limit, after, version, bool(label_selector or field_selector))
            page.items = [copy.deepcopy(o) for o in page.items]
            return page

    def _state_at(self, info: ResourceInfo, version: int) -> dict[tuple[str, str], Obj]:
        """The objects of one resource as they were at ``version`` (within the history; under the lock)."""
        state = dict(self._objs[info.plural])
        for ev in reversed(self._history):
            if ev.rv <= version:
                break
            if ev.resource != info.plural:
                continue
            meta = ev.obj["metadata"]
            key = _key(info, meta.get("namespace"), meta["name"])
            if ev.before is None:
                state.pop(key, None)
            else:
                state[key] = ev.before
        return state

    def _wait_until(self, version: int) -> None:
        """Block (a worker thread) until the store reached ``version``; 504 after ``future_rv_wait``."""
        deadline = time.monotonic() + self.future_rv_wait
        while version > self._rv:
            if time.monotonic() >= deadline:
                raise Timeout.too_large_resource_version(version, self._rv)
            time.sleep(0.02)

    # -- writes ------------------------------------------------------------------------------------------------

    def create(self, resource: str, obj: Mapping[str, Any], *, dry_run: bool = False,
               field_validation: str = "Strict", warnings: Warnings | None = None, field_manager: str | None = None,
               managed: Managed | None = None) -> Obj:
        """Create; ``field_validation`` (Strict | Warn | Ignore) decides what unknown fields do, as upstream.

        Strict rejects them (400); Warn and Ignore drop them, Warn appending a message to ``warnings``.
        Validation runs outside the store lock (it may compile CEL), so a large write never holds up the others.
        """
        info = self.info(resource)
        new = self._typed_copy(info, obj)
        meta = new["metadata"]
        if meta.get("resourceVersion"):
            raise BadRequest("resourceVersion should not be set on objects to be created")
        ns = meta.get("namespace") or ""
        if info.namespaced and not ns:
            raise BadRequest(f"{info.kind} {meta.get('name') or meta.get('generateName')!r}: metadata.namespace is "
                             "required for a namespaced resource")
        self._check_namespace_open(info, resource, ns, meta)
        for k in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
            meta.pop(k, None)
        generated = not meta.get("name") and isinstance(meta.get("generateName"), str) and bool(meta["generateName"])
        if generated:
            meta["name"] = self._generate_name(info, ns, meta["generateName"])
        self._prepare_create(info, new)
        self._normalize(info, new, None, field_validation)
        self._validate(info, new, None, field_validation, warnings)
        if managed is not None:
            meta["managedFields"] = managed
        elif field_manager:
            meta["managedFields"] = managedfields.record_update(
                None, new, self._schema(info), field_manager, info.api_version, None, info.has_status, now_rfc3339())
        with self._lock:
            self._check_namespace_open(info, resource, ns, meta)  # again: it may have gone meanwhile
            key = _key(info, ns, meta["name"])
            if key in self._objs[resource]:
                if not generated:
                    raise AlreadyExists.of(resource, info.group, meta["name"])
                meta["name"] = self._generate_name(info, ns, meta["generateName"])  # same prefix: still valid
                key = _key(info, ns, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            if dry_run:
                return copy.deepcopy(new)
            return self._commit(info, "ADDED", new, None)

    def _check_namespace_open(self, info: ResourceInfo, resource: str, ns: str, meta: Mapping[str, Any]) -> None:
        if not info.namespaced:
            return
        with self._lock:
            nsobj = self._objs["namespaces"].get(("", ns))
            if nsobj is None:
                raise NotFound.of("namespaces", "", ns)
            if (nsobj.get("metadata") or {}).get("deletionTimestamp"):
                raise _forbidden(f'{resource} "{meta.get("name", "")}" is forbidden: unable to create new '
                                 f"content in namespace {ns} because it is being terminated")

    def update(self, resource: str, obj: Mapping[str, Any], subresource: str | None = None, *,
               dry_run: bool = False, field_validation: str = "Strict", warnings: Warnings | None = None,
               field_manager: str | None = None, managed: Managed | None = None) -> Obj:
        """Replace (or, with ``subresource="status"``, replace the status of) a stored object.

        Validation runs outside the store lock; if the object changed meanwhile, an update that named no
        resourceVersion is computed again on the new state (one that did gets its 409, as upstream).
        """
        info = self.info(resource)
        if subresource not in (None, "", "status") or (subresource == "status" and not info.has_status):
            raise NotFound(f"the server could not find the requested resource ({resource}/{subresource})")
        given = self._typed_copy(info, obj)
        name = given["metadata"].get("name") or ""
        if not name:
            raise BadRequest(f"{info.kind}: metadata.name is required for an update")
        for _ in range(_UPDATE_ATTEMPTS):
            new = copy.deepcopy(given)
            meta = new["metadata"]
            key = _key(info, meta.get("namespace"), name)
            with self._lock:
                old = self._objs[resource].get(key)
                if old is None:
                    raise NotFound.of(resource, info.group, name)
                if not info.namespaced:
                    meta.pop("namespace", None)
                elif meta.get("namespace") != old["metadata"].get("namespace"):
                    raise BadRequest("the namespace of the object does not match the namespace of the stored object")
                self._check_preconditions(info, old, meta.get("uid"), meta.get("resourceVersion"))
            new = self._updated(info, resource, new, old, subresource, field_validation, warnings)
            self._record_managers(info, new, old, subresource, field_manager, managed)
            with self._lock:
                if self._objs[resource].get(key) is not old:
                    continue  # changed while we validated: stored objects are replaced, never mutated
                if _strip_volatile(new) == _strip_volatile(old):
                    return copy.deepcopy(old)  # no-op update: no new resourceVersion, no event (as upstream)
                if dry_run:
                    return copy.deepcopy(new)
                if (new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers")
                        and not new["metadata"].get("deletionGracePeriodSeconds") and resource != "namespaces"):
                    return self._remove(info, new, propagation=None)  # the last finalizer went
                if resource == "namespaces" and new["metadata"].get("deletionTimestamp"):
                    out = self._commit(info, "MODIFIED", new, old)
                    self._finish_namespace(new["metadata"]["name"])
                    return out
                self._unchecked.discard(new["metadata"]["uid"])  # it passed validation just now
                return self._commit(info, "MODIFIED", new, old)
        raise Conflict.stale(resource, info.group, name)

    def _schema(self, info: ResourceInfo) -> typeschema.Node:
        return typeschema.root(self.profile.version, info.group, info.kind)

    def _record_managers(self, info: ResourceInfo, new: Obj, old: Obj, subresource: str | None,
                         field_manager: str | None, managed: Managed | None) -> None:
        """managedFields of an update: given (apply), recomputed for ``field_manager``, else kept as they were."""
        meta = new["metadata"]
        if managed is not None:
            meta["managedFields"] = managed
            return
        sent = meta.get("managedFields")
        if sent is None or not isinstance(sent, list):  # not sent: the stored ones stay (as upstream)
            if old["metadata"].get("managedFields"):
                meta["managedFields"] = old["metadata"]["managedFields"]
            else:
                meta.pop("managedFields", None)
        if field_manager:
            meta["managedFields"] = managedfields.record_update(
                old, new, self._schema(info), field_manager, info.api_version, subresource, info.has_status,
                now_rfc3339())
        if not meta.get("managedFields"):
            meta.pop("managedFields", None)

    def _updated(self, info: ResourceInfo, resource: str, new: Obj, old: Obj, subresource: str | None,
                 field_validation: str, warnings: Warnings | None) -> Obj:
        """The object an update of ``old`` to ``new`` stores (kept fields, defaults), validated."""
        meta = new["metadata"]
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            if info.has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        self._normalize(info, new, old, field_validation)
        local_warnings: Warnings = []
        self._validate(info, new, old, field_validation, local_warnings)
        if warnings is not None:
            warnings.extend(w for w in local_warnings if w not in warnings)
        new["metadata"]["generation"] = old["metadata"].get("generation", 1) + (
            1 if _content(new) != _content(old) else 0)
        return new

    def patch(self, resource: str, namespace: str | None, name: str, patch_type: str, body: Any,
              subresource: str | None = None, *, field_manager: str | None = None, dry_run: bool = False,
              field_validation: str = "Strict", warnings: Warnings | None = None, force: bool = False) -> Obj:
        """Apply a merge / JSON / strategic-merge patch or a server-side apply (``managedfields``).

        A patch that sets no resourceVersion itself is applied again to the newest object when another write
        came in between (as upstream's patch handler retries), so concurrent patches never lose each other.
        """
        info = self.info(resource)
        conditional = isinstance(body, dict) and isinstance(body.get("metadata"), dict) and bool(
            body["metadata"].get("resourceVersion")) and patch_type != patches.APPLY
        if patch_type == patches.APPLY and not field_manager:
            raise BadRequest("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        for _ in range(_UPDATE_ATTEMPTS):
            try:
                current = self.get(resource, namespace, name)
            except NotFound:
                if patch_type != patches.APPLY or subresource:
                    raise
                return self._apply_create(info, resource, namespace, name, body, field_manager or "", dry_run,
                                          field_validation, warnings)
            managed: Managed | None = None
            if patch_type == patches.APPLY:
                applied = self._apply(info, current, body, field_manager or "", force, subresource, name)
                patched: Any = applied.obj
                managed = applied.managed_fields
            else:
                patched = patches.apply_patch(patch_type, current, body)
            if not isinstance(patched, dict):
                raise BadRequest("the patch turned the object into a non-object")
            pmeta = patched.setdefault("metadata", {})
            if not isinstance(pmeta, dict):
                raise BadRequest("the patch turned metadata into a non-object")
            if pmeta.get("name", name) != name:
                raise BadRequest(f"the patch may not change metadata.name ({name!r} -> {pmeta.get('name')!r})")
            pmeta["name"] = name
            if info.namespaced:
                pmeta["namespace"] = namespace
            if not conditional:
                pmeta["resourceVersion"] = current["metadata"].get("resourceVersion")
            try:
                return self.update(resource, patched, subresource, dry_run=dry_run,
                                   field_validation=field_validation, warnings=warnings,
                                   field_manager=None if managed is not None else field_manager, managed=managed)
            except Conflict:
                if conditional:
                    raise
                continue  # another write came in between: patch the newest object
        raise Conflict.stale(resource, info.group, name)

    def _apply(self, info: ResourceInfo, current: Obj | None, body: Any, manager: str, force: bool,
               subresource: str | None, name: str) -> managedfields.Applied:
        if not isinstance(body, dict):
            raise BadRequest("an apply patch must be an object")
        cfg = copy.deepcopy(body)
        if isinstance(cfg.get("metadata"), dict):
            cfg["metadata"].pop("resourceVersion", None)  # apply is never a conditional write
        return managedfields.apply(current, cfg, self._schema(info), manager=manager, force=force,
                                   api_version=info.api_version, subresource=subresource,
                                   has_status=info.has_status, now=now_rfc3339(),
                                   who=(info.plural, info.group, name))

    def _apply_create(self, info: ResourceInfo, resource: str, namespace: str | None, name: str, body: Any,
                      field_manager: str, dry_run: bool, field_validation: str,
                      warnings: Warnings | None) -> Obj:
        applied = self._apply(info, None, body, field_manager, False, None, name)
        obj = applied.obj
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise BadRequest("metadata must be an object")
        obj["metadata"].setdefault("name", name)
        if info.namespaced:
            obj["metadata"].setdefault("namespace", namespace)
        if obj["metadata"].get("name") != name:
            raise BadRequest(f"the name of the object ({obj['metadata'].get('name')}) does not match the "
                             f"name on the URL ({name})") from None
        return self.create(resource, obj, dry_run=dry_run, field_validation=field_validation, warnings=warnings,
                           managed=applied.managed_fields)

    def delete(self, resource: str, namespace: str | None, name: str, *, uid: str | None = None,
               resource_version: str | None = None, propagation: str | None = None, dry_run: bool = False,
               grace_period: int | None = None) -> Obj:
        """Delete (or, with finalizers, mark for deletion). Returns the object as deleted or marked.

        Namespaces and pods go as on a cluster. A namespace turns Terminating, its content is deleted, and it
        goes once the last object in it has gone (``_finish_namespace``). A pod bound to a node whose kubelet
        runs (``kubelet_nodes``) gets ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` (``grace_period``,
        else its ``terminationGracePeriodSeconds``, else 30) and stays until that kubelet stopped it, released
        its claims and deletes it with grace 0; other pods go at once (nothing would ever stop them).
        """
        info = self.info(resource)
        if resource == "namespaces" and name in IMMORTAL_NAMESPACES:
            raise Forbidden.of(resource, info.group, name, "this namespace may not be deleted")
        with self._lock:
            old = self._objs[resource].get(_key(info, namespace, name))
            if old is None:
                raise NotFound.of(resource, info.group, name)
            self._check_preconditions(info, old, uid, resource_version)
            if dry_run:
                return copy.deepcopy(old)
            if resource == "namespaces":
                return self._terminate_namespace(info, old)
            if resource == "pods":
                grace = self._pod_grace(old, grace_period)
                if grace > 0:
                    if old["metadata"].get("deletionTimestamp"):
                        return copy.deepcopy(old)  # already terminating: the kubelet finishes it
                    marked = copy.deepcopy(old)
                    marked["metadata"]["deletionTimestamp"] = _rfc3339_in(grace)
                    marked["metadata"]["deletionGracePeriodSeconds"] = grace
                    return self._commit(info, "MODIFIED", marked, old)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    if not old["metadata"].get("deletionGracePeriodSeconds"):
                        return copy.deepcopy(old)
                    marked = copy.deepcopy(old)  # a graceful pod stopped: now only its finalizers keep it
                    marked["metadata"]["deletionGracePeriodSeconds"] = 0
                    return self._commit(info, "MODIFIED", marked, old)
                marked = copy.deepcopy(old)
                marked["metadata"]["deletionTimestamp"] = now_rfc3339()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                marked["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
                return self._commit(info, "MODIFIED", marked, old)
            return self._remove(info, copy.deepcopy(old), propagation)

    def _pod_grace(self, pod: Obj, grace_period: int | None) -> int:
        """Seconds of graceful termination a deletion gives ``pod`` (0: it goes at once)."""
        node = (pod.get("spec") or {}).get("nodeName") if isinstance(pod.get("spec"), dict) else None
        if not node or node not in self.kubelet_nodes:
            return 0
        if grace_period is not None:
            return max(0, int(grace_period))
        spec_grace = pod["spec"].get("terminationGracePeriodSeconds")
        current = pod["metadata"].get("deletionGracePeriodSeconds")
        if isinstance(current, int) and pod["metadata"].get("deletionTimestamp"):
            return current
        return spec_grace if isinstance(spec_grace, int) and spec_grace >= 0 else DEFAULT_POD_GRACE_SECONDS

    def _terminate_namespace(self, info: ResourceInfo, old: Obj) -> Obj:
        """Namespace deletion: Terminating, its content deleted; it goes once empty (under the lock)."""
        ns = old["metadata"]["name"]
        marked = old
        if not old["metadata"].get("deletionTimestamp"):
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked.setdefault("status", {})["phase"] = "Terminating"
            self._commit(info, "MODIFIED", marked, old)
        if self.namespace_controller_delay is None:
            self._clean_namespace(ns)
        else:
            timer = threading.Timer(self.namespace_controller_delay, self._clean_namespace, args=(ns,))
            timer.daemon = True
            timer.start()
        return copy.deepcopy(marked)

    def _clean_namespace(self, ns: str) -> None:
        """The namespace controller's pass: delete what is in a Terminating namespace, then finish it if empty."""
        with self._lock:
            nsobj = self._objs["namespaces"].get(("", ns))
            if nsobj is None or not nsobj["metadata"].get("deletionTimestamp"):
                return
            for resource, objs in self._objs.items():
                if RESOURCES[resource].namespaced:
                    for key in [k for k in objs if k[0] == ns]:
                        self._delete_quietly(resource, key)
            self._finish_namespace(ns)

    def _finish_namespace(self, ns: str) -> None:
        """Remove a Terminating namespace once nothing is left in it (the namespace controller's last step)."""
        nsobj = self._objs["namespaces"].get(("", ns))
        if nsobj is None or not nsobj["metadata"].get("deletionTimestamp"):
            return
        for resource, objs in self._objs.items():
            if RESOURCES[resource].namespaced and any(k[0] == ns for k in objs):
                return
        if nsobj["metadata"].get("finalizers"):
            return  # metadata finalizers are their owners' to remove
        done = copy.deepcopy(nsobj)
        spec = done.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("finalizers"), list):
            spec["finalizers"] = [f for f in spec["finalizers"] if f != NAMESPACE_FINALIZER]
        self._remove(RESOURCES["namespaces"], done, None)

    def delete_collection(self, resource: str, namespace: str | None = None, label_selector: str = "",
                          field_selector: str = "", *, dry_run: bool = False) -> ObjList:
        out: ObjList = []
        with self._lock:
            for obj in self.list(resource, namespace, label_selector, field_selector):
                m = obj["metadata"]
                with contextlib.suppress(NotFound, Forbidden):  # GC removed it meanwhile, or it may not be deleted
                    out.append(self.delete(resource, m.get("namespace"), m["name"], dry_run=dry_run))
        return out

    def bind_pod(self, namespace: str, name: str, node: str) -> Obj:
        """The ``pods/binding`` subresource: set ``spec.nodeName`` once (409 if already bound)."""
        if not node:
            raise BadRequest(f"binding of pod {namespace}/{name}: target.name (the node) is required")
        for _ in range(_UPDATE_ATTEMPTS):
            pod = self.get("pods", namespace, name)
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise Conflict.of("pods", "", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            spec["nodeName"] = node
            try:
                return self.update("pods", pod)  # carries the resourceVersion read: 409 if the pod changed
            except Conflict:
                continue
        raise Conflict.stale("pods", "", name)

    # -- watch -------------------------------------------------------------------------------------------------

    async def wait_for_resource_version(self, resource_version: str | None) -> None:
        """Wait (up to ``future_rv_wait``) until the store has reached ``resource_version``.

        A client that saw a newer version elsewhere may watch from it; upstream's watch cache waits 3 s for it
        and then answers 504 ``Timeout`` with the ``ResourceVersionTooLarge`` cause instead of streaming nothing.
        """
        try:
            wanted = int(resource_version) if resource_version not in (None, "") else 0
        except ValueError:
            raise BadRequest(f"invalid resourceVersion {resource_version!r}: must be an integer") from None
        deadline = asyncio.get_running_loop().time() + self.future_rv_wait
        while wanted > self._rv:
            if asyncio.get_running_loop().time() >= deadline:
                raise Timeout.too_large_resource_version(wanted, self._rv)
            await asyncio.sleep(0.02)

    async def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None, *,
                    label_selector: str = "", field_selector: str = "",
                    bookmark_interval: float | None = None, copy_objects: bool = True,
                    send_initial_events: bool | None = None,
                    initial_events_end: bool = False) -> AsyncGenerator[Obj, None]:
        """Events ``{"type", "object"}`` after ``resource_version`` (unset or "0": current state as ADDED first).

        Raises ``Gone`` (410 Expired) when the version is older than the kept history. With
        ``bookmark_interval``, an idle watch yields a BOOKMARK carrying the newest resourceVersion.
        ``copy_objects=False`` yields the stored objects themselves, for callers that only read (and encode) them.

        ``send_initial_events`` is the watch-list switch: True streams the current state as ADDED whatever the
        version (the caller has waited until the store reached it: NotOlderThan), then, with
        ``initial_events_end``, a BOOKMARK annotated ``k8s.io/initial-events-end`` carrying the version of that
        state; False streams only changes (from now when no version is given). None is the legacy behaviour.
        """
        info = self.info(resource)
        lsel = parse_label_selector(label_selector)
        fsel = parse_field_selector(field_selector, info, self.profile.version)

        def visible(o: Obj | None) -> bool:
            if o is None:
                return False
            if namespace and info.namespaced and o["metadata"].get("namespace") != namespace:
                return False
            return lsel(o) and fsel(o)

        try:
            since = int(resource_version) if resource_version not in (None, "") else 0
        except ValueError:
            raise BadRequest(f"invalid resourceVersion {resource_version!r}: must be an integer") from None
        sub = _Subscriber(resource, asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if send_initial_events:
                backlog = [_Event(self._rv, resource, "ADDED", o, None)
                           for _, o in sorted(self._objs[resource].items())]
                if initial_events_end:
                    backlog.append(_Event(self._rv, resource, _INITIAL_END, {}, None))
            elif since == 0 and send_initial_events is False:
                backlog = []
            elif since == 0:
                backlog = [_Event(self._rv, resource, "ADDED", o, None)
                           for _, o in sorted(self._objs[resource].items())]
            else:
                if since < self._compacted:
                    raise Gone.too_old(since, self._compacted + 1)
                backlog = [e for e in self._history if e.rv > since and e.resource == resource]
            sub.pending.extend(backlog)
            self._subs.append(sub)
        try:
            while True:
                if not sub.pending:
                    sub.wake.clear()
                    if sub.pending:
                        continue
                    if bookmark_interval is None:
                        await sub.wake.wait()
                    else:
                        try:
                            await asyncio.wait_for(sub.wake.wait(), bookmark_interval)
                        except TimeoutError:
                            with self._lock:
                                if sub.pending:
                                    continue
                                rv = str(self._rv)
                            yield {"type": "BOOKMARK", "object": {
                                "kind": info.kind, "apiVersion": info.api_version,
                                "metadata": {"resourceVersion": rv}}}
                    continue
                ev = sub.pending.popleft()
                if ev.type == _INITIAL_END:
                    yield {"type": "BOOKMARK", "object": {
                        "kind": info.kind, "apiVersion": info.api_version,
                        "metadata": {"resourceVersion": str(ev.rv), "annotations": {INITIAL_EVENTS_END: "true"}}}}
                    continue
                now, before = visible(ev.obj), visible(ev.prev)
                if ev.type == "MODIFIED":
                    kind = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else ""
                else:
                    kind = ev.type if now else ""
                if kind:
                    yield {"type": kind, "object": copy.deepcopy(ev.obj) if copy_objects else ev.obj}
        finally:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)

    # -- internals ---------------------------------------------------------------------------------------------

    def _typed_copy(self, info: ResourceInfo, obj: Mapping[str, Any]) -> Obj:
        if not isinstance(obj, Mapping):
            raise BadRequest(f"{info.kind}: the body must be a JSON object")
        new: Obj = copy.deepcopy(dict(obj))
        kind, api_version = new.get("kind"), new.get("apiVersion")
        if kind not in (None, "", info.kind) or api_version not in (None, "", info.api_version):
            raise BadRequest(f"the API version in the data ({api_version}) and kind ({kind}) do not match the "
                             f"resource {info.plural} ({info.api_version}, {info.kind})")
        new["kind"], new["apiVersion"] = info.kind, info.api_version
        meta = new.get("metadata")
        if meta is None:
            meta = new["metadata"] = {}
        if not isinstance(meta, dict):
            raise BadRequest(f"{info.kind}: metadata must be an object")
        if not info.namespaced:
            meta.pop("namespace", None)
        return new

    def _generate_name(self, info: ResourceInfo, ns: str, prefix: str) -> str:
        for _ in range(100):
            # As upstream's SimpleNameGenerator: the prefix is cut to 58 characters, then 5 random ones follow.
            name = prefix[:58] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
            if _key(info, ns, name) not in self._objs[info.plural]:
                return name
        raise AlreadyExists.of(info.plural, info.group, prefix)

    @staticmethod
    def _prepare_create(info: ResourceInfo, obj: Obj) -> None:
        meta = obj["metadata"]
        if info.plural == "resourceclaims":
            obj.pop("status", None)
        elif info.plural == "pods":
            obj["status"] = {"phase": "Pending"}
        elif info.plural == "namespaces":
            obj["status"] = {"phase": "Active"}
            spec = obj.setdefault("spec", {})
            if isinstance(spec, dict) and "finalizers" not in spec:
                spec["finalizers"] = [NAMESPACE_FINALIZER]
            labels = meta.get("labels")
            if labels is None:
                labels = meta["labels"] = {}
            if meta.get("name") and isinstance(labels, dict):  # a non-map is the metadata check's to report
                labels["kubernetes.io/metadata.name"] = meta["name"]

    def _normalize(self, info: ResourceInfo, obj: Obj, old: Obj | None, field_validation: str) -> None:
        """What the server does to an object before validating it: drop gated fields, default, canonicalize.

        These steps expect the schema's shapes; on a malformed object (``devices: 5``) one of them can fail, and
        then validation names the field instead (a 422, never a 500 from a half-defaulted object).
        """
        resource = info.plural
        try:
            drop_disabled_fields(self.profile, resource, obj, old)
            _default(resource, obj)
            canonicalize_quantities(resource, obj)
            _default_taint_times(resource, obj, old)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            self._validate(info, obj, old, field_validation, [])  # raises Invalid / BadRequest for the field
            raise InternalError(f"{info.kind}: cannot default a valid object ({type(exc).__name__}: {exc})") from exc

    def _check_preconditions(self, info: ResourceInfo, old: Obj, uid: str | None, rv: str | None) -> None:
        om = old["metadata"]
        if uid and uid != om.get("uid"):
            raise Conflict.of(info.plural, info.group, om["name"],
                              f"Precondition failed: UID in precondition: {uid}, UID in object meta: {om.get('uid')}")
        if rv and rv != om.get("resourceVersion"):
            raise Conflict.stale(info.plural, info.group, om["name"])

    def _validate(self, info: ResourceInfo, obj: Obj, old: Obj | None, field_validation: str = "Strict",
                  warnings: Warnings | None = None) -> None:
        if field_validation not in FIELD_VALIDATION:
            raise BadRequest(f"invalid fieldValidation {field_validation!r}: use one of {', '.join(FIELD_VALIDATION)}")
        meta = obj["metadata"]
        # Every served kind gets its upstream schema and rules (core/v1 as well as resource.k8s.io), so nothing
        # the loops would trip over is ever stored.
        found = self._rules(info, obj, old)
        found += admin_access_errors(info.kind, obj, old, self._namespace_labels)  # upstream's admission check
        # Unknown fields are a decoding matter upstream: refused (Strict) or dropped before any rule looks.
        unknown = [e for e in found if e.message.startswith("unknown field")]
        if unknown:
            paths = ", ".join(f'unknown field "{e.field}"' for e in unknown)
            if field_validation == "Strict":
                raise BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                                 f"strict decoding error: {paths}")
            for e in unknown:
                if not _remove_path(obj, e.field):
                    raise BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                                     f'unknown field "{e.field}" cannot be dropped; remove it')
                if warnings is not None and field_validation == "Warn":
                    warnings.append(f'unknown field "{e.field}"')
            found = [e for e in self._rules(info, obj, old) if not e.message.startswith("unknown field")]
        errs = validate_metadata(meta, info.name_rule, info.namespaced, creating=old is None)
        if old is not None:
            errs += _immutability(info.plural, obj, old)
        covered = {e.field for e in errs if e.field.startswith("metadata.")}  # reported once, in those words
        errs += [e for e in found if e.field not in covered]
        if errs:
            seen: set[tuple[str, str]] = set()
            unique: list[FieldError] = []
            for e in errs:
                if (e.field, e.message) not in seen:
                    seen.add((e.field, e.message))
                    unique.append(e)
            raise Invalid(info.kind, info.group, meta.get("name") or meta.get("generateName") or "", unique)

    def _namespace_labels(self, name: str) -> Mapping[str, str] | None:
        ns = self._objs["namespaces"].get(("", name))
        return None if ns is None else (ns["metadata"].get("labels") or {})

    def _rules(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> FieldErrors:
        if info.plural in STRUCTURAL_ONLY:
            return validate_structure(obj, self.profile.version)
        if self._validator is not None and info.group == RESOURCE_GROUP:
            return self._validator(obj, old, self.profile.version)
        # The effective gates, so --feature-gates overrides reach every gate-dependent rule.
        return validate_object(obj, old, self.profile.version, gates=self.profile.gates)

    def _commit(self, info: ResourceInfo, kind: str, obj: Obj, prev: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = _key(info, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        entry = (info.plural, key)
        before = self._objs[info.plural].get(key)
        for owner in _owner_uids(prev if prev is not None else self._objs[info.plural].get(key)):
            held = self._dependents.get(owner)
            if held is not None:
                held.discard(entry)
                if not held:
                    del self._dependents[owner]
        if kind != "DELETED":
            for owner in _owner_uids(obj):
                self._dependents.setdefault(owner, set()).add(entry)
        if kind == "DELETED":
            self._objs[info.plural].pop(key, None)
            self._uids.pop(obj["metadata"]["uid"], None)
            self._unchecked.discard(obj["metadata"]["uid"])
        else:
            self._objs[info.plural][key] = obj
            self._uids[obj["metadata"]["uid"]] = (info.plural, key)
        # Stored objects are never mutated after commit (writers work on copies), so events share them.
        ev = _Event(self._rv, info.plural, kind, obj, prev, before)
        self._history.append(ev)
        while len(self._history) > self._history_size:
            self._compacted = self._history.popleft().rv
        for sub in self._subs:
            if sub.resource == info.plural:
                sub.notify(ev)
        return copy.deepcopy(obj)

    def _remove(self, info: ResourceInfo, obj: Obj, propagation: str | None) -> Obj:
        uid = obj["metadata"]["uid"]
        out = self._commit(info, "DELETED", obj, None)
        if propagation != "Orphan":
            self._collect_garbage(uid)
        if info.namespaced:
            self._finish_namespace(obj["metadata"].get("namespace") or "")
        return out

    def _delete_quietly(self, resource: str, key: tuple[str, str]) -> None:
        with contextlib.suppress(ApiError):
            self.delete(resource, key[0] or None, key[1])

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion: dependents whose every owner is gone are deleted.

        One dependent that cannot be handled (malformed, written by an older version) is logged and skipped;
        it never stops the collection of the others.
        """
        for resource, key in sorted(self._dependents.get(owner_uid, ())):
            obj = self._objs[resource].get(key)
            if obj is not None:
                try:
                    meta = obj["metadata"]
                    refs = [r for r in (meta.get("ownerReferences") or []) if isinstance(r, Mapping)]
                    if not any(r.get("uid") == owner_uid for r in refs):
                        continue
                    if any(r.get("uid") in self._uids for r in refs if r.get("uid") != owner_uid):
                        continue  # another owner still exists: keep the dependent
                    if meta.get("deletionTimestamp"):
                        continue
                    self._delete_quietly(resource, key)
                except Exception as exc:  # one bad dependent must not stop the collection
                    log.exception("garbage collection skipped %s %s/%s", resource, key[0], key[1])
                    from snn_dra.driver.embedded.events import record_event  # events.py builds on this module

                    record_event(self, resource, obj, type_="Warning", reason="GarbageCollectionFailed",
                                 message=f"the garbage collector could not delete this dependent of a deleted "
                                         f"owner ({owner_uid}): {type(exc).__name__}: {exc}",
                                 component="garbage-collector-controller")


def _owner_uids(obj: Mapping[str, Any] | None) -> set[str]:
    """The uids in ``metadata.ownerReferences`` (tolerant: the object may be one an older version stored)."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    if not isinstance(refs, list):
        return set()
    return {r["uid"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("uid"), str) and r["uid"]}


_INDEX = re.compile(r"\[(\d+)\]")


def _remove_path(obj: Obj, path: str) -> bool:
    """Delete the field at a FieldError path (``spec.devices[0].capacity[a/b].x``); False if it is not there.

    Keys are matched against the object itself (longest first), so keys holding dots, brackets or nothing at
    all (``metadata.`` is the empty key under metadata) are found too.
    """
    cur: Any = obj
    rest = path
    while True:
        if isinstance(cur, dict):
            found: tuple[str, str] | None = None
            for k in cur:
                if not isinstance(k, str):
                    continue
                for spelled in (k, f"[{k}]"):
                    if (rest == spelled or rest.startswith(spelled + ".") or rest.startswith(spelled + "[")) and (
                            found is None or len(spelled) > len(found[1])):
                        found = (k, spelled)
            if found is None:
                return False
            key, spelled = found
            if rest == spelled:
                del cur[key]
                return True
            cur, rest = cur[key], rest[len(spelled):]
            rest = rest[1:] if rest.startswith(".") else rest
        elif isinstance(cur, list):
            m = _INDEX.match(rest)
            if m is None or int(m.group(1)) >= len(cur):
                return False
            cur, rest = cur[int(m.group(1))], rest[m.end():]
            rest = rest[1:] if rest.startswith(".") else rest
            if not rest:
                return False  # a list item is never an unknown field
        else:
            return False


def _forbidden(message: str) -> ApiError:
    err = ApiError(message)
    err.code, err.reason = 403, "Forbidden"
    return err


def _immutability(resource: str, obj: Obj, old: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    if old["metadata"].get("deletionTimestamp"):
        before = old["metadata"].get("finalizers") or []
        added = [f for f in obj["metadata"].get("finalizers") or [] if f not in before]
        if added:
            errs.append(FieldError(CauseType.FORBIDDEN, "metadata.finalizers",
                                   "Forbidden: no new finalizers can be added if the object is being deleted, found "
                                   f"new finalizers {json.dumps(added)}"))
    if resource in ("resourceclaims", "resourceclaimtemplates"):
        if obj.get("spec") != old.get("spec"):
            errs.append(_immutable("spec", obj.get("spec")))
    elif resource == "resourceslices":
        new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
        if new_spec.get("driver") != old_spec.get("driver"):
            errs.append(_immutable("spec.driver", new_spec.get("driver")))
        if (new_spec.get("pool") or {}).get("name") != (old_spec.get("pool") or {}).get("name"):
            errs.append(_immutable("spec.pool.name", (new_spec.get("pool") or {}).get("name")))
        if new_spec.get("nodeName") != old_spec.get("nodeName"):
            errs.append(_immutable("spec.nodeName", new_spec.get("nodeName")))
    return errs


def _taints(resource: str, obj: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not obj:
        return []
    spec = obj.get("spec") or {}
    if resource == "resourceslices":
        return [t for d in spec.get("devices") or [] if isinstance(d, dict)
                for t in d.get("taints") or [] if isinstance(t, dict)]
    if resource == "devicetaintrules" and isinstance(spec.get("taint"), dict):
        return [spec["taint"]]
    return []


def _default_taint_times(resource: str, obj: Obj, old: Obj | None) -> None:
    """``timeAdded`` is set by the server when missing: kept from the same taint before, else now (upstream)."""
    taints = _taints(resource, obj)
    if not taints:
        return
    before = {(t.get("key"), t.get("value"), t.get("effect")): t.get("timeAdded") for t in _taints(resource, old)}
    now = now_rfc3339()
    for t in taints:
        if not t.get("timeAdded"):
            t["timeAdded"] = before.get((t.get("key"), t.get("value"), t.get("effect"))) or now


def _default_request(req: dict[str, Any]) -> None:
    mode = req.setdefault("allocationMode", "ExactCount")
    # count is omitempty upstream: a 0 decodes as unset and is defaulted like a missing one.
    if mode == "ExactCount" and not req.get("count"):
        req["count"] = 1
    for tol in req.get("tolerations") or []:
        if isinstance(tol, dict):
            tol.setdefault("operator", "Equal")


def _default(resource: str, obj: Obj) -> None:
    """Upstream v1 defaulting of claim requests (allocationMode ExactCount, count 1, toleration operator Equal).

    A template's spec.metadata is a non-pointer struct upstream, so a real server always stores it, as {} when
    empty; clients that compare what they read back expect it.
    """
    if resource == "resourceclaims":
        spec = obj.get("spec")
    elif resource == "resourceclaimtemplates":
        template = obj.get("spec")
        if not isinstance(template, dict):
            return
        template.setdefault("metadata", {})
        spec = template.get("spec")
    else:
        return
    if not isinstance(spec, dict):
        return
    for req in ((spec.get("devices") or {}).get("requests") or []):
        if not isinstance(req, dict):
            continue
        if isinstance(req.get("exactly"), dict):
            _default_request(req["exactly"])
        for sub in req.get("firstAvailable") or []:
            if isinstance(sub, dict):
                _default_request(sub)
