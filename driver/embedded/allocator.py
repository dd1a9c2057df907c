"""Structured-parameters allocator: which devices a set of claims gets on one node.

Pure logic over the JSON of ResourceSlices, DeviceClasses and ResourceClaims (no I/O), with the semantics
of the upstream scheduler's allocator: ``exactly`` / ``firstAvailable`` requests, ``ExactCount`` and ``All``,
class and request CEL selectors, ``matchAttribute`` / ``distinctAttribute`` constraints, shared counters,
consumable capacity, admin access, device taints and tolerations, and the pool rules of ``pools.py``.

The search is first fit with backtracking, like upstream, in the upstream order (pools by driver and name,
slices by name, devices as published). One deliberate difference: the n-th device of a request is only
looked for *after* the (n-1)-th one, so a request for k devices walks combinations instead of permutations;
the first solution found is the same. The search is bounded by a deadline (upstream's 10 s Filter timeout).

Errors split the way the scheduler needs them: :class:`Unsatisfiable` (the node cannot take the claims now;
the message names the claim, request and the reasons devices were refused) and :class:`AllocationError`
(the claims or classes are broken, e.g. a CEL runtime error, which upstream never treats as "no match").
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snn_dra.driver.cel import CelCompileError, compile_selector, device_view, evaluate_many
from snn_dra.driver.embedded.counters import (
    Amount,
    QuantityError,
    add_amounts,
    first_shortfall,
    format_quantity,
    quantity_value,
)
from snn_dra.driver.embedded.pools import DeviceEntry, DeviceKey, NodePools, build_node_pools, node_name_selector

AllocationResult = dict[str, Any]
"""The JSON of a claim's ``status.allocation``."""

ADMIN_ACCESS_LABEL = "resource.kubernetes.io/admin-access"
MAX_RESULTS_PER_CLAIM = 32
"""``AllocationResultsMaxSize``: devices per claim, all requests together."""
DEFAULT_TIMEOUT_S = 10.0
"""Upstream's DRASchedulerFilterTimeout default."""
_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_DEAD_END = "usable, but no solution for the remaining devices and requests with it"


class Unsatisfiable(Exception):  # noqa: N818 - name fixed by the cross-part interface
    """The claims cannot be allocated on this node right now (the pod stays pending and is retried)."""


class SearchAborted(Unsatisfiable):
    """The backtracking search hit its deadline before finding an answer."""


class AllocationError(Exception):
    """The claims cannot be evaluated at all: a CEL compile or runtime error, a malformed quantity.

    Upstream aborts the scheduling attempt on these instead of treating the device as not matching.
    """


# --- inputs ------------------------------------------------------------------------------------------


def claim_ref(claim: Mapping[str, Any]) -> str:
    meta = claim.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _selector_exprs(selectors: Any) -> tuple[str, ...]:
    out = []
    for sel in selectors or ():
        cel = (sel or {}).get("cel")
        if not cel or not isinstance(cel.get("expression"), str):
            raise AllocationError("selector has no CEL expression (unsupported selector type?)")
        out.append(cel["expression"])
    return tuple(out)


@dataclass(eq=False)
class _Request:
    """One request, or one subrequest of a ``firstAvailable`` list."""

    claim: _Claim
    base: str
    sub: str
    class_name: str
    class_exprs: tuple[str, ...]
    request_exprs: tuple[str, ...]
    all_mode: bool
    count: int
    admin: bool
    tolerations: list[Mapping[str, Any]]
    capacity: dict[str, Amount]
    class_config: list[Mapping[str, Any]]
    all_devices: list[DeviceEntry] = field(default_factory=list)
    all_skipped: int = 0
    """Matching devices left out of ``all_devices`` because their capacity cannot serve the request."""

    @property
    def name(self) -> str:
        return f"{self.base}/{self.sub}" if self.sub else self.base


class _Constraint:
    """``matchAttribute`` (one shared value) or ``distinctAttribute`` (all values different)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.requests = frozenset(spec.get("requests") or ())
        if spec.get("matchAttribute"):
            self.attribute, self.distinct = str(spec["matchAttribute"]), False
        else:
            self.attribute, self.distinct = str(spec.get("distinctAttribute", "")), True
        self.values: Counter[tuple[str, Any]] = Counter()

    @property
    def label(self) -> str:
        kind = "distinctAttribute" if self.distinct else "matchAttribute"
        return f"constraint {kind} {self.attribute}"

    def applies(self, req: _Request) -> bool:
        return not self.requests or req.base in self.requests or (bool(req.sub) and req.name in self.requests)

    def add(self, req: _Request, entry: DeviceEntry) -> bool:
        if not self.applies(req):
            return True
        value = entry.attribute(self.attribute)
        if value is None:
            return False
        if self.distinct:
            if self.values[value]:
                return False
        elif self.values and value not in self.values:
            return False
        self.values[value] += 1
        return True

    def remove(self, req: _Request, entry: DeviceEntry) -> None:
        if not self.applies(req):
            return
        value = entry.attribute(self.attribute)
        if value is not None:
            self.values[value] -= 1
            if not self.values[value]:
                del self.values[value]


@dataclass(eq=False)
class _Claim:
    obj: Mapping[str, Any]
    ref: str
    groups: list[list[_Request]] = field(default_factory=list)
    """One entry per request: the alternatives (one for ``exactly``, the subrequests for ``firstAvailable``)."""
    constraints: list[_Constraint] = field(default_factory=list)
    results: list[_Pick] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Pick:
    """A device tentatively allocated to a request, with everything needed to undo it."""

    req: _Request
    entry: DeviceEntry
    counted: bool
    consumed: dict[str, Amount]


@dataclass
class _Usage:
    """What other claims already hold, plus the picks of the search in progress."""

    exclusive: set[DeviceKey] = field(default_factory=set)
    counters: dict[tuple[str, str], dict[str, dict[str, Amount]]] = field(default_factory=dict)
    counted: Counter[DeviceKey] = field(default_factory=Counter)
    """Devices whose counter consumption is in ``counters`` (a shared device counts once)."""
    consumed: dict[DeviceKey, dict[str, Amount]] = field(default_factory=dict)
    taking: dict[DeviceKey, list[tuple[int, str]]] = field(default_factory=dict)
    """Picks of this search: device -> [(claim index, request name)]."""


_Held = tuple[tuple[DeviceKey, bool, tuple[tuple[str, Amount], ...]], ...]
"""A claim's non-admin results: (device, has a shareID, consumed capacity by the device's capacity key)."""


def _held(claim: Mapping[str, Any]) -> _Held:
    out = []
    allocation = (claim.get("status") or {}).get("allocation") or {}
    for res in (allocation.get("devices") or {}).get("results") or ():
        if res.get("adminAccess"):
            continue
        driver = str(res.get("driver", ""))
        key: DeviceKey = (driver, str(res.get("pool", "")), str(res.get("device", "")))
        consumed = tuple((str(k), quantity_value(v)) for k, v in (res.get("consumedCapacity") or {}).items())
        out.append((key, bool(res.get("shareID")), consumed))
    return tuple(out)


def _usage_from(
    allocated_claims: Iterable[Mapping[str, Any]], skip: set[str], pools: NodePools, cache: AllocatorCache
) -> _Usage:
    usage = _Usage()
    by_key, accounting = pools.by_key, pools.accounting
    exclusive, counted, consumed_all = usage.exclusive, usage.counted, usage.consumed
    for claim in allocated_claims:
        meta = claim.get("metadata") or {}
        uid = meta.get("uid")
        if uid in skip or (not uid and claim_ref(claim) in skip):
            continue
        for key, shared, consumed in cache.held(claim):
            entry = by_key.get(key) or accounting.get(key)
            multi = entry.multi if entry is not None else shared
            if not multi:
                exclusive.add(key)
            if entry is None:
                continue
            if multi and consumed:
                used = consumed_all.setdefault(key, {})
                for q, amount in consumed:
                    used[q] = used.get(q, 0) + amount
            if entry.consumes and not counted[key]:
                add_amounts(usage.counters.setdefault((entry.driver, entry.pool), {}), entry.consumes)
            counted[key] += 1
    return usage


# --- taints ----------------------------------------------------------------------------------------


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Upstream ToleratesTaint: an empty key matches every key, for ``Equal`` as well as ``Exists``."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def _rule_taints(rules: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    out = []
    for rule in rules:
        spec = rule.get("spec") or {}
        if spec.get("taint"):
            out.append((spec.get("deviceSelector") or {}, spec["taint"]))
    return out


# --- cache ---------------------------------------------------------------------------------------


class AllocatorCache:
    """Keeps each node's pool snapshot (with CEL views and selector results) while its slices are unchanged.

    Slices are recognised by name + resourceVersion (or object identity for hand-made dicts without one),
    so pass the same cache to every call of one scheduler and only changed slices cost anything.
    """

    def __init__(self, max_nodes: int = 64) -> None:
        self._max = max_nodes
        self._snapshots: OrderedDict[Any, NodePools] = OrderedDict()
        self._held: dict[tuple[str, str], _Held] = {}

    def held(self, claim: Mapping[str, Any]) -> _Held:
        """What an allocated claim holds, parsed once per (uid, resourceVersion) of a stored claim."""
        meta = claim.get("metadata") or {}
        uid, rv = meta.get("uid"), meta.get("resourceVersion")
        if not uid or not rv:
            return _held(claim)
        key = (str(uid), str(rv))
        found = self._held.get(key)
        if found is None:
            if len(self._held) > 100_000:
                self._held.clear()
            found = self._held[key] = _held(claim)
        return found

    def node_pools(self, slices: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> NodePools:
        meta = node.get("metadata") or {}
        fingerprint = (
            meta.get("name"),
            tuple(sorted((meta.get("labels") or {}).items())),
            tuple(
                (
                    (s.get("metadata") or {}).get("name"),
                    (s.get("metadata") or {}).get("resourceVersion") or id(s),
                )
                for s in slices
            ),
        )
        snap = self._snapshots.get(fingerprint)
        if snap is None:
            snap = build_node_pools(slices, node)
            self._snapshots[fingerprint] = snap
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)
        else:
            self._snapshots.move_to_end(fingerprint)
        return snap


# --- the search ----------------------------------------------------------------------------------


def _selector_results(entry: DeviceEntry, exprs: tuple[str, ...]) -> list[bool | Exception]:
    """Results of ``exprs`` on one device (cached on the entry); the missing ones are evaluated in one batch."""
    cache = entry.selector_results
    missing = [e for e in exprs if e not in cache]
    if missing:
        if entry.view is None:
            entry.view = device_view(entry.driver, entry.data)
        for expr, result in zip(missing, evaluate_many([compile_selector(e) for e in missing], entry.view),
                                strict=True):  # fmt: skip
            cache[expr] = result
    return [cache[e] for e in exprs]


class _Candidates:
    """The devices matching one selector set, in allocation order, evaluated lazily and kept for later claims.

    Like upstream, a selector is only evaluated on devices the search actually reaches, so a CEL runtime error
    on a device beyond the first fit does not fail the claim. Entries are ``(device, "")`` or, when a selector
    failed at runtime, ``(device, "<class|request>:<index>:<message>")``.
    """

    def __init__(self, devices: Iterable[DeviceEntry], class_exprs: tuple[str, ...],
                 request_exprs: tuple[str, ...]) -> None:
        self.items: list[tuple[DeviceEntry, str]] = []
        self._source: Iterator[DeviceEntry] | None = iter(devices)
        self._exprs = (("class", class_exprs), ("request", request_exprs))
        self._all_exprs = class_exprs + request_exprs

    def get(self, pos: int) -> tuple[DeviceEntry, str] | None:
        while pos >= len(self.items):
            if self._source is None:
                return None
            entry = next(self._source, None)
            if entry is None:
                self._source = None
                return None
            verdict = self._judge(entry)
            if verdict is not None:
                self.items.append((entry, verdict))
        return self.items[pos]

    def all(self) -> list[tuple[DeviceEntry, str]]:
        self.get(1 << 62)
        return self.items

    def _judge(self, entry: DeviceEntry) -> str | None:
        """In order, as upstream: the first false selector rejects; a runtime error counts only if reached."""
        results = iter(_selector_results(entry, self._all_exprs))
        for origin, exprs in self._exprs:
            for i in range(len(exprs)):
                res = next(results)
                if isinstance(res, Exception):
                    return f"{origin}:{i}:{res}"
                if not res:
                    return None
        return ""


class _Search:
    def __init__(
        self,
        claims: list[_Claim],
        pools: NodePools,
        usage: _Usage,
        rule_taints: list[tuple[Mapping[str, Any], Mapping[str, Any]]],
        timeout: float,
    ) -> None:
        self.claims = claims
        self.pools = pools
        self.usage = usage
        self.rule_taints = rule_taints
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.steps = 0
        self.counter_sets = {(p.driver, p.name): p.counter_sets for p in pools.pools}
        self.deepest: tuple[int, int] = (-1, -1)
        self.failures: dict[tuple[int, int], dict[str, tuple[int, str]]] = {}
        self.reasons: dict[tuple[int, int, str], dict[DeviceKey, str]] = {}
        """Last reason each device was refused for each request, for the failure message."""

    # -- selectors --

    def candidates(self, req: _Request) -> _Candidates:
        """Devices of usable pools matching class + request selectors, in order, evaluated as far as needed."""
        key = (req.class_exprs, req.request_exprs)
        found = self.pools.candidates.get(key)
        if found is None:
            found = self.pools.candidates[key] = _Candidates(self.pools.usable_devices(), *key)
        return found

    def raise_cel(self, req: _Request, entry: DeviceEntry, error: str) -> None:
        origin, index, message = error.split(":", 2)
        who = f"class {req.class_name}" if origin == "class" else f"claim {req.claim.ref}"
        raise AllocationError(
            f"{who}: selector #{index}: CEL runtime error on device {'/'.join(entry.key)}: {message}"
        )

    # -- one device --

    def try_pick(self, ci: int, req: _Request, entry: DeviceEntry) -> str:
        """Tentatively allocate; "" on success, else why the device was refused."""
        usage, key = self.usage, entry.key
        taking = usage.taking.get(key)
        if req.admin:
            if taking and any(c == ci for c, _ in taking):
                return "already allocated in this claim"
        elif entry.multi:
            if taking and (ci, req.name) in taking:
                return "already allocated to this request"
        elif key in usage.exclusive:
            return "allocated to another claim"
        elif taking:
            return "allocated to another request"

        for taint in self._taints(entry):
            if taint.get("effect") in _BLOCKING_EFFECTS and not any(_tolerates(t, taint) for t in req.tolerations):
                return f"taint {taint.get('key')}={taint.get('value', '')}:{taint.get('effect')} not tolerated"

        consumed: dict[str, Amount] = {}
        for cap_key, amount in req.capacity.items():
            cap = entry.capacity.get(cap_key)
            if cap is None:
                return f"capacity {cap_key} requested, but the device has no capacity of that exact name"
            if not entry.multi and amount > cap.value:
                return f"capacity {cap_key} is {format_quantity(cap.value)}, less than requested"
        if entry.multi:
            requested = req.capacity
            used = usage.consumed.get(key, {})
            for q, cap in entry.capacity.items():
                share = cap.consumption(requested.get(q))
                if share is None:
                    return f"requested {cap.key} is outside the device's requestPolicy"
                if not req.admin and used.get(q, 0) + share > cap.value:
                    return f"capacity {cap.key} exhausted"
                consumed[q] = share

        counted = False
        if entry.consumes and not req.admin and not usage.counted[key]:
            pool_key = (entry.driver, entry.pool)
            shortfall = first_shortfall(
                self.counter_sets.get(pool_key, {}), usage.counters.get(pool_key, {}), entry.consumes
            )
            if shortfall:
                return shortfall
            counted = True

        constraints = req.claim.constraints
        for i, con in enumerate(constraints):
            if not con.add(req, entry):
                for done in constraints[:i]:
                    done.remove(req, entry)
                return con.label

        usage.taking.setdefault(key, []).append((ci, req.name))
        if counted:
            add_amounts(usage.counters.setdefault((entry.driver, entry.pool), {}), entry.consumes)
        if not req.admin:
            usage.counted[key] += 1
            if entry.multi:
                used_now = usage.consumed.setdefault(key, {})
                for q, amount in consumed.items():
                    used_now[q] = used_now.get(q, 0) + amount
        req.claim.results.append(_Pick(req, entry, counted, consumed))
        return ""

    def undo(self, ci: int) -> None:
        pick = self.claims[ci].results.pop()
        req, entry, usage = pick.req, pick.entry, self.usage
        for con in req.claim.constraints:
            con.remove(req, entry)
        usage.taking[entry.key].remove((ci, req.name))
        if pick.counted:
            add_amounts(usage.counters[(entry.driver, entry.pool)], entry.consumes, -1)
        if not req.admin:
            usage.counted[entry.key] -= 1
            if entry.multi:
                used_now = usage.consumed[entry.key]
                for q, amount in pick.consumed.items():
                    used_now[q] -= amount

    def _taints(self, entry: DeviceEntry) -> list[Mapping[str, Any]]:
        taints = list(entry.taints)
        for selector, taint in self.rule_taints:
            if all(
                not selector.get(f) or selector.get(f) == v
                for f, v in (("driver", entry.driver), ("pool", entry.pool), ("device", entry.name))
            ):
                taints.append(taint)
        return taints

    # -- recursion --

    def _tick(self) -> None:
        self.steps += 1
        if self.steps % 512 == 0 and time.monotonic() > self.deadline:
            raise SearchAborted(
                f"cannot allocate all claims: search aborted after {self.timeout:g} s ({self.steps} steps); "
                "simplify the constraints or request fewer devices"
            )

    def fail(self, ci: int, ri: int, req: _Request, message: str, found: int = 0) -> None:
        """Remember why a request failed; the deepest request, and within it the furthest attempt, explains best."""
        where = (ci, ri)
        if where > self.deepest:
            self.deepest = where
            self.failures[where] = {}
        if where == self.deepest:
            known = self.failures[where].get(req.name)
            if known is None or found >= known[0]:
                self.failures[where][req.name] = (found, message)

    def claim_from(self, ci: int, ri: int) -> bool:
        if ci == len(self.claims):
            return True
        claim = self.claims[ci]
        if ri == len(claim.groups):
            return self.claim_from(ci + 1, 0)
        return any(self.devices_from(ci, ri, req, 0, 0) for req in claim.groups[ri])

    def devices_from(self, ci: int, ri: int, req: _Request, n: int, start: int) -> bool:
        self._tick()
        claim = self.claims[ci]
        wanted = len(req.all_devices) if req.all_mode else req.count
        if req.all_mode and not req.all_devices:
            why = (
                f"none of the {req.all_skipped} matching devices has the capacity the request needs"
                if req.all_skipped
                else "no device matches the selectors"
            )
            self.fail(ci, ri, req, f"asks for all matching devices, but {why}")
            return False
        if n == wanted:
            return self.claim_from(ci, ri + 1)
        if len(claim.results) + wanted - n > MAX_RESULTS_PER_CLAIM:
            self.fail(ci, ri, req, f"would exceed {MAX_RESULTS_PER_CLAIM} allocated devices per claim")
            return False
        if req.all_mode:
            entry = req.all_devices[n]
            reason = self.try_pick(ci, req, entry)
            if reason:
                self.fail(ci, ri, req, f"asks for all matching devices, but device {entry.name} is unusable: {reason}")
                return False
            if self.devices_from(ci, ri, req, n + 1, 0):
                return True
            self.undo(ci)
            return False

        reasons = self.reasons.setdefault((ci, ri, req.name), {})
        cands = self.candidates(req)
        exclusive, plain = self.usage.exclusive, not req.admin
        pos = start - 1
        while (item := cands.get(pos := pos + 1)) is not None:
            entry, error = item
            if error:
                self.raise_cel(req, entry, error)
            if plain and not entry.multi and entry.key in exclusive:  # the common case, decided cheaply
                reasons[entry.key] = "allocated to another claim"
                continue
            reason = self.try_pick(ci, req, entry)
            if reason:
                reasons[entry.key] = reason
                continue
            reasons.setdefault(entry.key, _DEAD_END)
            if self.devices_from(ci, ri, req, n + 1, pos + 1):
                return True
            self.undo(ci)
        self.fail(ci, ri, req, self._explain(req, n, cands.all(), reasons), n)
        return False

    def _explain(self, req: _Request, n: int, cands: list[tuple[DeviceEntry, str]], reasons: dict[Any, str]) -> str:
        need = f"needs {req.count} device{'s' if req.count != 1 else ''}"
        if not cands:
            msg = f"{need}, but no device matches the selectors of class {req.class_name} and the request"
        else:
            counts = Counter(reasons.values())
            detail = ", ".join(f"{count} {why}" for why, count in counts.most_common())
            msg = f"{need}, found at most {n} of {len(cands)} matching devices usable together ({detail})"
        skipped = [
            f"pool {p.id} is " + (f"incomplete ({p.slices_seen} of {p.slice_count} slices)" if p.incomplete
                                  else f"invalid: {p.invalid}")
            for p in self.pools.pools
            if not p.usable
        ]
        if skipped:
            msg += "; skipped " + "; ".join(skipped)
        return msg

    def message(self) -> str:
        if self.deepest < (0, 0):
            return "cannot allocate all claims"
        ci, ri = self.deepest
        claim = self.claims[ci]
        base = claim.groups[ri][0].base
        parts = self.failures[self.deepest]
        if len(parts) == 1:
            detail = next(iter(parts.values()))[1]
        else:
            detail = "; ".join(f"subrequest {name}: {why}" for name, (_, why) in parts.items())
        return f"cannot allocate all claims: claim {claim.ref}, request {base}: {detail}"


# --- preparing the requests --------------------------------------------------------------------------


def _prepare(
    claim: Mapping[str, Any],
    classes: Mapping[str, Mapping[str, Any]],
    namespace_labels: Mapping[str, str],
    pools: NodePools,
) -> _Claim:
    ref = claim_ref(claim)
    devices = (claim.get("spec") or {}).get("devices") or {}
    out = _Claim(obj=claim, ref=ref)
    for raw in devices.get("requests") or ():
        base = str(raw.get("name", ""))
        if raw.get("exactly") is not None:
            alternatives = [(raw["exactly"], "")]
        elif raw.get("firstAvailable"):
            alternatives = [(sub, str(sub.get("name", ""))) for sub in raw["firstAvailable"]]
        elif raw.get("deviceClassName"):  # pre-v1 flat shape, tolerated for hand-written tests
            alternatives = [(raw, "")]
        else:
            raise AllocationError(f"claim {ref}, request {base}: neither exactly nor firstAvailable is set")
        group = []
        for spec, sub in alternatives:
            name = f"{base}/{sub}" if sub else base
            class_name = str(spec.get("deviceClassName", ""))
            dclass = classes.get(class_name)
            if dclass is None:
                raise Unsatisfiable(
                    f"cannot allocate all claims: claim {ref}, request {name}: device class {class_name} not found"
                )
            admin = bool(spec.get("adminAccess"))
            ns = (claim.get("metadata") or {}).get("namespace", "")
            if admin and namespace_labels.get(ADMIN_ACCESS_LABEL) != "true":
                raise Unsatisfiable(
                    f"cannot allocate all claims: claim {ref}, request {name}: admin access needs the label "
                    f'{ADMIN_ACCESS_LABEL}="true" on namespace {ns}'
                )
            dspec = dclass.get("spec") or {}
            try:
                class_exprs = _selector_exprs(dspec.get("selectors"))
                request_exprs = _selector_exprs(spec.get("selectors"))
                capacity = {
                    k: quantity_value(v) for k, v in ((spec.get("capacity") or {}).get("requests") or {}).items()
                }
                negative = sorted(k for k, v in capacity.items() if v < 0)
                if negative:
                    # Only a claim stored before validation refused it gets here; consuming a negative amount
                    # would over-allocate the device, so the scheduling attempt stops, as upstream.
                    raise AllocationError(
                        f"capacity request {negative[0]} is negative; recreate the claim with an amount >= 0"
                    )
            except (AllocationError, QuantityError) as err:
                raise AllocationError(f"claim {ref}, request {name}: {err}") from err
            for origin, exprs in (("class " + class_name, class_exprs), ("claim " + ref, request_exprs)):
                for i, expr in enumerate(exprs):
                    try:
                        compile_selector(expr)
                    except CelCompileError as err:
                        raise AllocationError(f"{origin}: selector #{i}: CEL compile error: {err}") from err
            mode = spec.get("allocationMode") or "ExactCount"
            if mode not in ("ExactCount", "All"):
                raise AllocationError(f"claim {ref}, request {name}: unsupported allocationMode {mode}")
            req = _Request(
                claim=out,
                base=base,
                sub=sub,
                class_name=class_name,
                class_exprs=class_exprs,
                request_exprs=request_exprs,
                all_mode=mode == "All",
                count=int(spec.get("count") or 1) if mode == "ExactCount" else 0,
                admin=admin,
                tolerations=list(spec.get("tolerations") or ()),
                capacity=capacity,
                class_config=list(dspec.get("config") or ()),
            )
            group.append(req)
        out.groups.append(group)
    out.constraints = [_Constraint(c) for c in devices.get("constraints") or ()]
    return out


def _capacity_fits(req: _Request, entry: DeviceEntry, used: Mapping[str, Amount]) -> bool:
    """Whether ``req`` could take ``entry`` on top of ``used``: every requested capacity exists, the request fits
    each capacity's policy, and what it consumes plus ``used`` stays within the capacity's value."""
    if any(q not in entry.capacity for q in req.capacity):
        return False
    for q, cap in entry.capacity.items():
        share = cap.consumption(req.capacity.get(q))
        if share is None or used.get(q, 0) + share > cap.value:
            return False
    return True


def _resolve_all(search: _Search, claims: list[_Claim], pools: NodePools, *, remaining: bool) -> None:
    """Fix the device list of every ``All`` request up front (and fail while any pool is in flux).

    "All" means all devices whose capacity could serve the request: a device that lacks a requested capacity,
    whose requestPolicy cannot size the request, or whose capacity is smaller than the request is left out.
    With ``remaining`` (Kubernetes 1.34-1.36) what other claims already consume counts too, so a shared
    device with no capacity left is left out as well; from 1.37 it stays in and the request fails on it.
    """
    for claim in claims:
        for group in claim.groups:
            for req in group:
                if not req.all_mode:
                    continue
                for pool in pools.pools:
                    if pool.incomplete:
                        raise Unsatisfiable(
                            f"cannot allocate all claims: claim {claim.ref}, request {req.name}: asks for all "
                            f"devices, but resource pool {pool.id} is currently being updated "
                            f"({pool.slices_seen} of {pool.slice_count} slices)"
                        )
                    if pool.invalid:
                        raise Unsatisfiable(
                            f"cannot allocate all claims: claim {claim.ref}, request {req.name}: asks for all "
                            f"devices, but resource pool {pool.id} is currently invalid ({pool.invalid})"
                        )
                for entry, error in search.candidates(req).all():
                    if error:
                        search.raise_cel(req, entry, error)
                    used = search.usage.consumed.get(entry.key, {}) if remaining and entry.multi else {}
                    if _capacity_fits(req, entry, used):
                        req.all_devices.append(entry)
                    else:
                        req.all_skipped += 1


# --- results -------------------------------------------------------------------------------------


def _result_json(claim: _Claim, node_name: str) -> AllocationResult:
    results: list[dict[str, Any]] = []
    chosen: list[_Request] = []
    for pick in claim.results:
        req, entry = pick.req, pick.entry
        if req not in chosen:
            chosen.append(req)
        res: dict[str, Any] = {"request": req.name, "driver": entry.driver, "pool": entry.pool, "device": entry.name}
        if req.admin:
            res["adminAccess"] = True
        if req.tolerations:
            res["tolerations"] = [dict(t) for t in req.tolerations]
        if entry.binding:
            res["bindingConditions"] = list(entry.data.get("bindingConditions") or ())
            res["bindingFailureConditions"] = list(entry.data.get("bindingFailureConditions") or ())
        if entry.multi:
            res["shareID"] = str(uuid.uuid4())
            consumed = pick.consumed or {
                q: amount
                for q, cap in entry.capacity.items()
                if (amount := cap.consumption(None)) is not None
            }
            if consumed:
                res["consumedCapacity"] = {
                    entry.capacity[q].key: format_quantity(amount) for q, amount in consumed.items()
                }
        results.append(res)

    config: list[dict[str, Any]] = []
    for req in chosen:
        for cfg in req.class_config:
            entry_cfg = {k: v for k, v in cfg.items() if k != "requests"}
            config.append({"source": "FromClass", "requests": [req.name], **entry_cfg})
    # Upstream copies every claim config entry, also those naming a subrequest that was not chosen.
    for cfg in ((claim.obj.get("spec") or {}).get("devices") or {}).get("config") or ():
        config.append({"source": "FromClaim", **cfg})

    allocation: AllocationResult = {"devices": {"results": results}}
    if config:
        allocation["devices"]["config"] = config
    node_selector = _node_selector([pick.entry for pick in claim.results], node_name)
    if node_selector is not None:
        allocation["nodeSelector"] = node_selector
    return allocation


def _node_selector(entries: Sequence[DeviceEntry], node_name: str) -> dict[str, Any] | None:
    """Where the pod may run, as upstream ``createNodeSelector``: one term holding every device's requirements.

    A device published for a node by name pins the allocation to that node; devices available everywhere add
    nothing. A selector with several terms cannot be merged into one term (validation keeps slices to one);
    should one appear, the allocation is pinned to the node it was made for instead of failing.
    """
    fields: list[Any] = []
    exprs: list[Any] = []
    for entry in entries:
        if entry.pinned:
            return node_name_selector(node_name)
        terms = (entry.node_selector or {}).get("nodeSelectorTerms") or ()
        if len(terms) > 1:
            return node_name_selector(node_name)
        for term in terms:
            for into, reqs in ((fields, term.get("matchFields")), (exprs, term.get("matchExpressions"))):
                for req in reqs or ():
                    if req not in into:
                        into.append(dict(req))
    if not fields and not exprs:
        return None
    merged: dict[str, Any] = {}
    if exprs:
        merged["matchExpressions"] = exprs
    if fields:
        merged["matchFields"] = fields
    return {"nodeSelectorTerms": [merged]}


# --- public entry points -------------------------------------------------------------------------


def _class_map(classes: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    if isinstance(classes, Mapping):
        return dict(classes)
    return {str((c.get("metadata") or {}).get("name", "")): c for c in classes}


def allocate_claims(
    claims: Sequence[Mapping[str, Any]],
    *,
    node_name: str,
    slices: Sequence[Mapping[str, Any]],
    classes: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    allocated_claims: Iterable[Mapping[str, Any]] = (),
    namespace_labels: Mapping[str, str] | None = None,
    node: Mapping[str, Any] | None = None,
    device_taint_rules: Iterable[Mapping[str, Any]] = (),
    cache: AllocatorCache | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    kubernetes_version: str = "1.37",
) -> list[AllocationResult]:
    """Allocate all of one pod's claims together on ``node_name`` (all or nothing), as the scheduler does.

    ``allocated_claims`` are the claims already holding devices (any node; the ones in ``claims`` are
    skipped); ``namespace_labels`` are the labels of the claims' namespace (admin access);
    ``node`` is the Node object, needed only for slices that select nodes by label;
    ``kubernetes_version`` ("1.34".."1.37") picks the scheduler's behaviour where it changed.
    Returns one ``status.allocation`` per claim, in order.
    """
    node_obj = node if node is not None else {"metadata": {"name": node_name}}
    cache = cache or AllocatorCache()
    pools = cache.node_pools(slices, node_obj)
    class_map = _class_map(classes)
    labels = namespace_labels or {}
    prepared = [_prepare(c, class_map, labels, pools) for c in claims]
    skip = {str((c.get("metadata") or {}).get("uid") or claim_ref(c)) for c in claims}
    try:
        usage = _usage_from(allocated_claims, skip, pools, cache)
    except QuantityError as err:
        raise AllocationError(f"an allocated claim has a malformed consumedCapacity: {err}") from err
    search = _Search(prepared, pools, usage, _rule_taints(device_taint_rules), timeout)
    _resolve_all(search, prepared, pools, remaining=int(kubernetes_version.split(".")[1]) < 37)
    if not search.claim_from(0, 0):
        raise Unsatisfiable(search.message())
    return [_result_json(c, node_name) for c in prepared]


def allocate(
    claim: Mapping[str, Any],
    *,
    node_name: str,
    slices: Sequence[Mapping[str, Any]],
    classes: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    allocated_claims: Iterable[Mapping[str, Any]] = (),
    namespace_labels: Mapping[str, str] | None = None,
    node: Mapping[str, Any] | None = None,
    device_taint_rules: Iterable[Mapping[str, Any]] = (),
    cache: AllocatorCache | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    kubernetes_version: str = "1.37",
) -> AllocationResult:
    """Allocate one claim on ``node_name``; see :func:`allocate_claims`."""
    return allocate_claims(
        [claim],
        node_name=node_name,
        slices=slices,
        classes=classes,
        allocated_claims=allocated_claims,
        namespace_labels=namespace_labels,
        node=node,
        device_taint_rules=device_taint_rules,
        cache=cache,
        timeout=timeout,
        kubernetes_version=kubernetes_version,
    )[0]
