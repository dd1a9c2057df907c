"""The embedded cluster's scheduler: claims for pending pods, device allocation, binding, and release.

It plays three upstream parts at once, all against the in-process :class:`Store`:

* the **resourceclaim controller**: creates a claim per ``resourceClaimTemplateName`` of a pod (name
  ``<pod>-<claim>-<5 random>``, owned by the pod, annotated with the pod claim name) and records it in
  ``pod.status.resourceClaimStatuses``; releases reservations of pods that are gone or finished, and
  deallocates claims nobody reserves (generated claims then disappear through the store's owner-reference GC);
* the **DRA scheduler plugin**: allocates every unallocated claim of a pod on the first node (by name) where
  all of them fit, writes the finalizer ``resource.kubernetes.io/delete-protection`` and then
  ``status.allocation`` + ``reservedFor`` through the status subresource;
* the **binder**: sets ``spec.nodeName`` with a plain pod update (the store has no ``pods/binding``
  subresource; nothing else in the embedded world cares about the difference) and the ``PodScheduled``
  condition. A pod that fits nowhere gets ``PodScheduled=False``, reason ``Unschedulable``, with the
  allocator's explanation per node, and a ``FailedScheduling`` Warning event when that message changes.

Everything happens in :meth:`Scheduler.reconcile`, a level-triggered pass over the store's current state
that writes only what differs, so running it again is harmless. :meth:`Scheduler.run` repeats the pass
whenever a watched resource changes (no polling, no sleeps); the pass runs in a worker thread so a long
allocation never stalls the API server's event loop (the store is thread-safe).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snn_dra.driver.embedded.allocator import (
    AllocationError,
    AllocatorCache,
    Unsatisfiable,
    allocate_claims,
)
from snn_dra.driver.embedded.errors import ApiError, Gone, NotFound
from snn_dra.driver.embedded.events import record_event
from snn_dra.driver.embedded.pools import node_selector_matches
from snn_dra.driver.embedded.store import Store
from snn_dra.driver.embedded.wellformed import ShapeCheck

log = logging.getLogger(__name__)

FINALIZER = "resource.kubernetes.io/delete-protection"
POD_CLAIM_NAME_ANNOTATION = "resource.kubernetes.io/pod-claim-name"
CLAIM_API_VERSION = "resource.k8s.io/v1"
SCHEDULER_NAME = "default-scheduler"
"""Pods naming another scheduler are left alone, as the real default scheduler does."""
MAX_RESERVED_FOR = 256
"""``ResourceClaimReservedForMaxSize``."""
WATCHED = ("pods", "resourceclaims", "resourceclaimtemplates", "resourceslices", "deviceclasses", "nodes",
           "namespaces", "devicetaintrules")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet the API server uses for generateName suffixes."""
_MAX_BASE_LEN = 57
"""63 minus the hyphen and 5 random characters, as upstream truncates ``<pod>-<claim>``."""

Obj = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _ref(obj: Mapping[str, Any]) -> str:
    m = _meta(obj)
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def _pod_done(pod: Mapping[str, Any]) -> bool:
    """Upstream's notion of a pod that no longer needs its claims."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return True
    return bool(_meta(pod).get("deletionTimestamp")) and not (pod.get("spec") or {}).get("nodeName")


@dataclass
class ReconcileReport:
    """What one pass did, for tests, logs and the benchmark."""

    scheduled: dict[str, str] = field(default_factory=dict)
    """pod ns/name -> node."""
    unschedulable: dict[str, str] = field(default_factory=dict)
    """pod ns/name -> why."""
    released: list[str] = field(default_factory=list)
    """claims whose reservation or allocation was dropped (ns/name)."""
    created_claims: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """"<resource> ns/name" -> why the pass could not handle that object (malformed, or a bug met on it)."""


ClaimKey = tuple[str, str]


def _key(obj: Mapping[str, Any]) -> ClaimKey:
    m = _meta(obj)
    return str(m.get("namespace", "")), str(m.get("name", ""))


def _controllers(claim: Mapping[str, Any]) -> list[str]:
    refs = _meta(claim).get("ownerReferences")
    return [str(r.get("uid")) for r in refs if isinstance(r, Mapping) and r.get("controller")] \
        if isinstance(refs, list) else []


def _needs_controller(claim: Mapping[str, Any]) -> bool:
    """Whether the claim controller may have anything to do for this claim (reserved, allocated or deleted)."""
    status = claim.get("status")
    status = status if isinstance(status, Mapping) else {}
    return bool(status.get("reservedFor") or status.get("allocation") or _meta(claim).get("deletionTimestamp"))


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int(_meta(obj).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class _Index:
    """Claims and pods as the store holds them, indexed so that a pass costs what is in use, not what is stored.

    The objects are the store's own (it replaces stored objects on every write and never modifies them), so
    nothing is copied; the pass only reads them and writes through the store. ``run`` keeps one index current
    from watch events; ``reconcile`` builds a fresh one. Events at or below ``synced_rv`` are already in it.
    """

    def __init__(self) -> None:
        self.claims: dict[ClaimKey, Obj] = {}
        self.active: set[ClaimKey] = set()
        """Claims the claim controller may have to release (reserved, allocated or being deleted)."""
        self.owned: dict[str, set[ClaimKey]] = {}
        """Controller (pod) uid -> the claims it owns (template claims)."""
        self.pods: dict[ClaimKey, Obj] = {}
        self.synced_rv: dict[str, int] = {"pods": 0, "resourceclaims": 0}

    def put(self, resource: str, obj: Obj) -> None:
        key = _key(obj)
        if resource == "pods":
            self.pods[key] = obj
            return
        self.drop(resource, key)
        self.claims[key] = obj
        if _needs_controller(obj):
            self.active.add(key)
        for uid in _controllers(obj):
            self.owned.setdefault(uid, set()).add(key)

    def drop(self, resource: str, key: ClaimKey) -> None:
        if resource == "pods":
            self.pods.pop(key, None)
            return
        old = self.claims.pop(key, None)
        if old is None:
            return
        self.active.discard(key)
        for uid in _controllers(old):
            keys = self.owned.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.owned[uid]


class _Snapshot:
    """One pass's view: the index plus the pass's own writes (an overlay), and the allocator's inputs.

    Nodes, slices, classes and taint rules are read from the store only when a pod is pending, as they are.
    """

    def __init__(self, store: Store, index: _Index, usable: Callable[[str, list[Obj]], list[Obj]]) -> None:
        self._store = store
        self._index = index
        self._usable = usable
        self._overlay: dict[ClaimKey, Obj | None] = {}
        self._nodes: list[Obj] | None = None
        self._alloc_inputs: tuple[list[Obj], list[Obj], list[Obj]] | None = None
        self._ns_labels: dict[str, dict[str, str]] = {}

    def claim(self, ns: str, name: str) -> Obj | None:
        key = (ns, name)
        if key in self._overlay:
            return self._overlay[key]
        return self._index.claims.get(key)

    def put(self, claim: Obj | None, ns: str, name: str) -> None:
        self._overlay[(ns, name)] = claim

    def _claims(self, keys: set[ClaimKey]) -> list[Obj]:
        found = (self.claim(*k) for k in sorted(keys | set(self._overlay)))
        return [c for c in found if c is not None]

    def owned_by(self, uid: str) -> list[Obj]:
        """Claims whose controlling owner has ``uid`` (template claims of a pod)."""
        return [c for c in self._claims(set(self._index.owned.get(uid, ()))) if uid in _controllers(c)]

    def active(self) -> list[Obj]:
        """Claims the claim controller may have to release."""
        return [c for c in self._claims(self._index.active) if _needs_controller(c)]

    def allocated(self) -> list[Obj]:
        return [c for c in self._claims(self._index.active) if (c.get("status") or {}).get("allocation")]

    def _listed(self, resource: str) -> list[Obj]:
        objs, _ = self._store.snapshot(resource)
        return sorted(self._usable(resource, objs), key=lambda o: str(_meta(o).get("name", "")))

    @property
    def nodes(self) -> list[Obj]:
        if self._nodes is None:
            self._nodes = [n for n in self._listed("nodes") if not (n.get("spec") or {}).get("unschedulable")]
        return self._nodes

    def allocation_inputs(self) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(slices, classes, device taint rules), listed on first need."""
        if self._alloc_inputs is None:
            rules = self._listed("devicetaintrules") if "devicetaintrules" in self._store.served else []
            self._alloc_inputs = (self._listed("resourceslices"), self._listed("deviceclasses"), rules)
        return self._alloc_inputs

    def namespace_labels(self, ns: str) -> dict[str, str]:
        if ns not in self._ns_labels:
            try:
                self._ns_labels[ns] = dict(_meta(self._store.get("namespaces", None, ns)).get("labels") or {})
            except NotFound:
                self._ns_labels[ns] = {}
        return self._ns_labels[ns]


class _PodProblemError(Exception):
    """The pod cannot be scheduled for a reason outside the allocator (missing claim or template)."""


class Scheduler:
    """Schedules pending pods of one :class:`Store` and releases claims of finished pods."""

    def __init__(self, store: Store, *, cache: AllocatorCache | None = None, timeout: float = 10.0) -> None:
        self.store = store
        self.cache = cache or AllocatorCache()
        self.timeout = timeout
        self.shapes = ShapeCheck(store.profile.version, trusted=store.validated)
        self._reported: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    # -- objects the pass cannot handle -------------------------------------------------------------

    def _skip(self, report: ReconcileReport, resource: str, obj: Any, why: str) -> None:
        """Log and record (once per object version) an object the pass leaves alone, then go on."""
        meta = _meta(obj) if isinstance(obj, Mapping) else {}
        ref = f"{resource} {meta.get('namespace') or ''}/{meta.get('name') or '?'}".replace(" /", " ")
        report.skipped[ref] = why
        ident = (resource, str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        if ident in self._reported:
            return
        self._reported[ident] = None
        while len(self._reported) > 10_000:
            self._reported.popitem(last=False)
        log.warning("scheduler skips %s: %s", ref, why)
        record_event(self.store, resource, obj if isinstance(obj, Mapping) else {}, type_="Warning",
                     reason="FailedScheduling" if resource == "pods" else "InvalidObject",
                     message=f"the scheduler skips this object: {why}", component=SCHEDULER_NAME)

    def _usable_for(self, report: ReconcileReport) -> Callable[[str, list[Obj]], list[Obj]]:
        def usable(resource: str, objs: list[Obj]) -> list[Obj]:
            return self.shapes.usable(objs, lambda o, why: self._skip(report, resource, o, f"malformed: {why}"))

        return usable

    # -- the pass ---------------------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """One level-triggered pass over the store's current state (builds its own index)."""
        report = ReconcileReport()
        index = _Index()
        self._resync(index, "pods", report)
        self._resync(index, "resourceclaims", report)
        return self._pass(index, report)

    def _resync(self, index: _Index, resource: str, report: ReconcileReport) -> None:
        objs, rv = self.store.snapshot(resource)
        for key in list(index.pods if resource == "pods" else index.claims):
            index.drop(resource, key)
        for obj in self._usable_for(report)(resource, objs):
            index.put(resource, obj)
        index.synced_rv[resource] = int(rv)

    def _apply(self, index: _Index, events: list[tuple[str, str, Obj]], report: ReconcileReport) -> None:
        """Watch events (in order) into the index; those it already holds are skipped."""
        for resource, kind, obj in events:
            if _rv(obj) <= index.synced_rv[resource]:
                continue
            index.synced_rv[resource] = _rv(obj)
            if kind == "DELETED":
                index.drop(resource, _key(obj))
                continue
            why = self.shapes.problem(obj)
            if why:
                index.drop(resource, _key(obj))
                self._skip(report, resource, obj, f"malformed: {why}")
            else:
                index.put(resource, obj)

    def _pass(self, index: _Index, report: ReconcileReport) -> ReconcileReport:
        usable = self._usable_for(report)
        pods = list(index.pods.values())
        snap = _Snapshot(self.store, index, usable)
        self._release(pods, snap, report)
        pending = [
            p for p in pods
            if not (p.get("spec") or {}).get("nodeName")
            and (p.get("spec") or {}).get("schedulerName", SCHEDULER_NAME) in ("", SCHEDULER_NAME)
            and not _meta(p).get("deletionTimestamp")
            and (p.get("status") or {}).get("phase", "Pending") == "Pending"
        ]
        pending.sort(key=lambda p: (str(_meta(p).get("creationTimestamp", "")), _ref(p)))
        for pod in pending:
            try:
                self._schedule(pod, snap, report)
            except ApiError as err:
                # A concurrent write won: the event it produced triggers another pass.
                log.info("scheduling pod %s deferred: %s", _ref(pod), err)
            except Exception as err:  # one pod the pass cannot handle must not stop the others
                log.exception("scheduling pod %s failed", _ref(pod))
                self._skip(report, "pods", pod, f"{type(err).__name__}: {err}")
        return report

    # -- release ----------------------------------------------------------------------------------

    def _release(self, pods: list[Obj], snap: _Snapshot, report: ReconcileReport) -> None:
        live = {str(_meta(p).get("uid")) for p in pods if not _pod_done(p)}
        for claim in snap.active():
            status = claim.get("status") or {}
            reserved = list(status.get("reservedFor") or [])
            keep = [r for r in reserved if r.get("resource") != "pods" or str(r.get("uid")) in live]
            deleting = bool(_meta(claim).get("deletionTimestamp"))
            if keep == reserved and (keep or not status.get("allocation")) and not (deleting and not keep):
                continue
            try:
                self._release_claim(claim, keep, snap, report)
            except ApiError as err:
                log.info("releasing claim %s deferred: %s", _ref(claim), err)
            except Exception as err:  # one claim the controller cannot handle must not stop the rest
                log.exception("releasing claim %s failed", _ref(claim))
                self._skip(report, "resourceclaims", claim, f"{type(err).__name__}: {err}")

    def _release_claim(self, claim: Obj, keep: list[Any], snap: _Snapshot, report: ReconcileReport) -> None:
        ns, name = str(_meta(claim).get("namespace", "")), str(_meta(claim).get("name", ""))
        status = dict(claim.get("status") or {})
        changed = False
        if keep != list(status.get("reservedFor") or []):
            status["reservedFor"] = keep
            changed = True
        if not keep:
            status.pop("reservedFor", None)
            if status.get("allocation"):
                status.pop("allocation", None)
                status.pop("devices", None)
                changed = True
        if changed:
            claim = self.store.update("resourceclaims", {**claim, "status": status}, subresource="status")
            snap.put(claim, ns, name)
            report.released.append(_ref(claim))
        if not keep and FINALIZER in (_meta(claim).get("finalizers") or []):
            meta = dict(_meta(claim))
            meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            updated = self.store.update("resourceclaims", {**claim, "metadata": meta})
            # A deleted claim is gone once its last finalizer is: keep it out of the snapshot then.
            gone = bool(meta.get("deletionTimestamp")) and not meta["finalizers"]
            snap.put(None if gone else updated, ns, name)

    # -- scheduling one pod -------------------------------------------------------------------------

    def _schedule(self, pod: Obj, snap: _Snapshot, report: ReconcileReport) -> None:
        ns = str(_meta(pod).get("namespace", ""))
        try:
            pod, claims = self._pod_claims(pod, snap, report)
        except _PodProblemError as err:
            self._unschedulable(pod, str(err), report)
            return
        nodes = snap.nodes
        if not nodes:
            self._unschedulable(pod, "0/0 nodes are available: no schedulable nodes registered", report)
            return
        pending_claims = [c for c in claims if not (c.get("status") or {}).get("allocation")]
        allocated_here = [c for c in claims if (c.get("status") or {}).get("allocation")]
        if pending_claims:
            slices, classes, rules = snap.allocation_inputs()
            allocated = snap.allocated()
            ns_labels = snap.namespace_labels(ns)
        reasons: list[str] = []
        for node in nodes:
            node_name = str(_meta(node).get("name", ""))
            misfit = next(
                (c for c in allocated_here
                 if (sel := ((c.get("status") or {}).get("allocation") or {}).get("nodeSelector"))
                 and not node_selector_matches(sel, node)),
                None,
            )
            if misfit is not None:
                reasons.append(f"{node_name}: claim {_ref(misfit)} is allocated for another node")
                continue
            allocations: list[Obj] = []
            if pending_claims:
                try:
                    allocations = allocate_claims(
                        pending_claims,
                        node_name=node_name,
                        slices=slices,
                        classes=classes,
                        allocated_claims=allocated,
                        namespace_labels=ns_labels,
                        node=node,
                        device_taint_rules=rules,
                        cache=self.cache,
                        timeout=self.timeout,
                    )
                except (Unsatisfiable, AllocationError) as err:
                    reasons.append(f"{node_name}: {err}")
                    continue
            self._commit(pod, claims, pending_claims, allocations, node_name, snap, report)
            return
        self._unschedulable(pod, f"0/{len(nodes)} nodes are available: " + "; ".join(reasons), report)

    def _pod_claims(self, pod: Obj, snap: _Snapshot, report: ReconcileReport) -> tuple[Obj, list[Obj]]:
        """The pod's claims (creating template claims as needed) and the pod with updated claim statuses."""
        meta = _meta(pod)
        ns, uid = str(meta.get("namespace", "")), str(meta.get("uid", ""))
        statuses = {s.get("name"): s.get("resourceClaimName") for s in (pod.get("status") or {}).get(
            "resourceClaimStatuses") or []}
        claims: list[Obj] = []
        new_statuses: list[dict[str, Any]] = []
        for entry in (pod.get("spec") or {}).get("resourceClaims") or []:
            pod_claim = str(entry.get("name", ""))
            if entry.get("resourceClaimName"):
                name = str(entry["resourceClaimName"])
                found_claim = snap.claim(ns, name)
                if found_claim is None:
                    raise _PodProblemError(f'resourceclaim "{name}" not found')
                claim = found_claim
            elif entry.get("resourceClaimTemplateName"):
                owned = snap.owned_by(uid)
                found = [c for c in owned if _meta(c).get("name") == statuses.get(pod_claim)] or [
                    c for c in owned
                    if (_meta(c).get("annotations") or {}).get(POD_CLAIM_NAME_ANNOTATION) == pod_claim
                ]
                if found:
                    claim = found[0]
                else:
                    claim = self._claim_from_template(pod, pod_claim, str(entry["resourceClaimTemplateName"]))
                    snap.put(claim, ns, str(_meta(claim).get("name")))
                    report.created_claims.append(_ref(claim))
                new_statuses.append({"name": pod_claim, "resourceClaimName": _meta(claim).get("name")})
            else:
                raise _PodProblemError(f"pod claim {pod_claim} names neither a claim nor a template")
            if _meta(claim).get("deletionTimestamp"):
                raise _PodProblemError(f'resourceclaim "{_meta(claim).get("name")}" is being deleted')
            reserved = (claim.get("status") or {}).get("reservedFor") or []
            if len(reserved) >= MAX_RESERVED_FOR and not any(r.get("uid") == uid for r in reserved):
                raise _PodProblemError(f'resourceclaim "{_meta(claim).get("name")}" is already reserved for '
                                       f"{len(reserved)} consumers, the maximum; it cannot be shared further")
            claims.append(claim)
        if new_statuses and new_statuses != (pod.get("status") or {}).get("resourceClaimStatuses"):
            status = dict(pod.get("status") or {})
            status["resourceClaimStatuses"] = new_statuses
            pod = self.store.update("pods", {**pod, "status": status}, subresource="status")
        return pod, claims

    def _claim_from_template(self, pod: Obj, pod_claim: str, template_name: str) -> Obj:
        meta = _meta(pod)
        ns = str(meta.get("namespace", ""))
        try:
            template = self.store.get("resourceclaimtemplates", ns, template_name)
        except NotFound:
            raise _PodProblemError(f'resourceclaimtemplate "{template_name}" not found') from None
        tspec = template.get("spec") or {}
        tmeta = tspec.get("metadata") or {}
        base = f"{meta.get('name')}-{pod_claim}"[:_MAX_BASE_LEN]
        annotations = dict(tmeta.get("annotations") or {})
        annotations[POD_CLAIM_NAME_ANNOTATION] = pod_claim
        body: Obj = {
            "apiVersion": CLAIM_API_VERSION,
            "kind": "ResourceClaim",
            "metadata": {
                "name": f"{base}-{''.join(secrets.choice(_NAME_CHARS) for _ in range(5))}",
                "namespace": ns,
                "annotations": annotations,
                "ownerReferences": [{
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }],
            },
            "spec": tspec.get("spec") or {},
        }
        if tmeta.get("labels"):
            body["metadata"]["labels"] = dict(tmeta["labels"])
        return self.store.create("resourceclaims", body)

    def _commit(self, pod: Obj, claims: list[Obj], pending: list[Obj], allocations: list[Obj], node_name: str,
                snap: _Snapshot, report: ReconcileReport) -> None:
        meta = _meta(pod)
        me = {"resource": "pods", "name": meta.get("name"), "uid": meta.get("uid")}
        fresh = {id(c): a for c, a in zip(pending, allocations, strict=True)}
        for claim in claims:
            allocation = fresh.get(id(claim))
            if allocation is not None and FINALIZER not in (_meta(claim).get("finalizers") or []):
                cmeta = dict(_meta(claim))
                cmeta["finalizers"] = [*(cmeta.get("finalizers") or []), FINALIZER]
                claim = self.store.update("resourceclaims", {**claim, "metadata": cmeta})
            status = dict(claim.get("status") or {})
            reserved = list(status.get("reservedFor") or [])
            if any(r.get("uid") == me["uid"] for r in reserved) and allocation is None:
                continue
            if allocation is not None:
                status["allocation"] = allocation
            if not any(r.get("uid") == me["uid"] for r in reserved):
                reserved.append(me)
            status["reservedFor"] = reserved
            claim = self.store.update("resourceclaims", {**claim, "status": status}, subresource="status")
            snap.put(claim, str(_meta(claim).get("namespace", "")), str(_meta(claim).get("name", "")))
        pod = self.store.update("pods", {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node_name}})
        self._set_condition(pod, {"type": "PodScheduled", "status": "True"})
        self._event(pod, "Normal", "Scheduled", f"Successfully assigned {_ref(pod)} to {node_name}")
        report.scheduled[_ref(pod)] = node_name

    def _unschedulable(self, pod: Obj, message: str, report: ReconcileReport) -> None:
        report.unschedulable[_ref(pod)] = message
        if self._set_condition(pod, {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": message}):
            self._event(pod, "Warning", "FailedScheduling", message)

    def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event as the default scheduler does (only on a change, so retries do not spam)."""
        if "events" not in self.store.served:
            return
        meta = _meta(pod)
        now = _now()
        self.store.create("events", {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": meta.get("namespace"),
                               "name": meta.get("name"), "uid": meta.get("uid")},
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "default-scheduler"},
            "reportingComponent": "default-scheduler",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        })

    def _set_condition(self, pod: Obj, condition: dict[str, Any]) -> bool:
        """Set a pod condition; False (and no write) when it is already so."""
        status = dict(pod.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        old = next((c for c in conditions if c.get("type") == condition["type"]), None)
        if old is not None and all(old.get(k) == v for k, v in condition.items()):
            return False  # unchanged: writing it again would only wake every watcher
        transition = _now() if old is None or old.get("status") != condition["status"] else old.get(
            "lastTransitionTime", _now())
        new = {**condition, "lastProbeTime": None, "lastTransitionTime": transition}
        conditions = [c for c in conditions if c.get("type") != condition["type"]] + [new]
        status["conditions"] = conditions
        self.store.update("pods", {**pod, "status": status}, subresource="status")
        return True

    # -- the loop ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile now and again after every change to a watched resource, until cancelled.

        Pods and claims are kept in an index fed by the watches, so a pass after one write does not list (let
        alone copy) every stored claim; the other resources only wake the loop and are read when needed.
        """
        wake = asyncio.Event()
        served = [r for r in WATCHED if r in self.store.served]
        events: list[tuple[str, str, Obj]] = []
        resync = {"pods", "resourceclaims"}
        index = _Index()

        async def pump(resource: str, since: str) -> None:
            while True:
                try:
                    async for event in self.store.watch(resource, resource_version=since, copy_objects=False):
                        if resource in ("pods", "resourceclaims"):
                            events.append((resource, event["type"], event["object"]))
                        wake.set()
                except Gone:
                    since = self.store.resource_version  # history compacted: re-sync from a snapshot
                    resync.add(resource)
                    wake.set()

        def one_pass(batch: list[tuple[str, str, Obj]], rebuild: set[str]) -> None:
            report = ReconcileReport()
            for resource in sorted(rebuild):
                self._resync(index, resource, report)
            self._apply(index, batch, report)
            self._pass(index, report)

        since = self.store.resource_version
        pumps = [asyncio.create_task(pump(r, since), name=f"scheduler-watch-{r}") for r in served]
        try:
            wake.set()
            while True:
                await wake.wait()
                wake.clear()
                batch, events[:] = list(events), []
                rebuild = set(resync & {"pods", "resourceclaims"})
                resync.clear()
                try:
                    await asyncio.to_thread(one_pass, batch, rebuild)
                except Exception:  # a bug in one pass must not stop scheduling for good
                    log.exception("scheduler pass failed; re-syncing and retrying on the next change")
                    resync.update(("pods", "resourceclaims"))
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
