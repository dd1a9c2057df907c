"""The allocator's view of ResourceSlices: the pools a node can use and their devices, in allocation order.

Upstream rules (``resource-api.md`` §1.4, §4): only the highest ``pool.generation`` of a pool counts; a pool
is complete once that generation has ``resourceSliceCount`` slices; duplicate device names (or counter sets)
make it invalid; counter-set slices count whatever their node selection. Pools are ordered by driver then
pool name (pools with binding conditions last), slices by name, devices as published.

A :class:`NodePools` snapshot is immutable once built and keeps per-device caches (CEL views and selector
results), so the allocator can reuse it for every claim until the slices change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snn_dra.driver.embedded.counters import (
    Capacity,
    CounterAmounts,
    QuantityError,
    parse_capacities,
    parse_counter_sets,
)

DeviceKey = tuple[str, str, str]
"""(driver, pool, device): how allocation results name a device."""


# --- node selection ------------------------------------------------------------------------------


def _requirement_matches(req: Mapping[str, Any], value: str | None) -> bool:
    op = req.get("operator", "")
    values = [str(v) for v in req.get("values") or ()]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_matches(selector: Mapping[str, Any] | None, node: Mapping[str, Any]) -> bool:
    """core/v1 NodeSelector semantics: terms are ORed, requirements inside a term ANDed; no terms = no match."""
    if not selector:
        return False
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    fields = {"metadata.name": meta.get("name")}
    for term in selector.get("nodeSelectorTerms") or ():
        exprs = term.get("matchExpressions") or ()
        fexprs = term.get("matchFields") or ()
        if not exprs and not fexprs:
            continue
        if all(_requirement_matches(r, labels.get(r.get("key", ""))) for r in exprs) and all(
            _requirement_matches(r, fields.get(r.get("key", ""))) for r in fexprs
        ):
            return True
    return False


def node_name_selector(node_name: str) -> dict[str, Any]:
    """The allocation ``nodeSelector`` for node-local devices."""
    return {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]},
        ]
    }


# --- devices and pools ---------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class DeviceEntry:
    """One published device plus what the allocator derives from it once (capacities, counters, caches)."""

    driver: str
    pool: str
    slice_name: str
    data: Mapping[str, Any]
    """The device JSON from ``spec.devices[]``."""
    key: DeviceKey
    node_selector: dict[str, Any] | None
    """What an allocation of this device restricts the pod to (None: any node)."""
    multi: bool
    capacity: dict[str, Capacity]
    consumes: CounterAmounts
    taints: tuple[Mapping[str, Any], ...]
    binding: bool
    pinned: bool = False
    """Published for one node by name (``nodeName``): an allocation of it is pinned to that node."""
    view: Any = None
    """The CEL device view, built on first use and reused for every selector."""
    selector_results: dict[str, bool | Exception] = field(default_factory=dict)
    """expression -> match result (or the CelRuntimeError it raised)."""

    @property
    def name(self) -> str:
        return self.key[2]

    def attribute(self, qualified: str) -> tuple[str, Any] | None:
        """Typed value of a fully qualified attribute, as ``matchAttribute`` compares it (type, value)."""
        attrs = self.data.get("attributes") or {}
        value = attrs.get(qualified)
        if value is None:
            domain, _, ident = qualified.partition("/")
            if domain == self.driver and ident:
                value = attrs.get(ident)
        if not isinstance(value, Mapping):
            return None
        for kind in ("int", "bool", "string", "version"):
            if kind in value:
                return kind, value[kind]
        return None


@dataclass(slots=True)
class Pool:
    driver: str
    name: str
    generation: int
    slice_count: int
    slices_seen: int = 0
    devices: list[DeviceEntry] = field(default_factory=list)
    counter_sets: CounterAmounts = field(default_factory=dict)
    invalid: str = ""
    """Why the pool cannot be used ("" when valid)."""
    binding: bool = False

    @property
    def id(self) -> str:
        return f"{self.driver}/{self.name}"

    @property
    def incomplete(self) -> bool:
        return self.slices_seen != self.slice_count

    @property
    def usable(self) -> bool:
        return not self.incomplete and not self.invalid


@dataclass(slots=True)
class NodePools:
    """Every pool visible from one node, in allocation order, with a device index.

    A pool is visible when one of its slices targets the node or defines shared counters.
    """

    node_name: str
    pools: list[Pool]
    by_key: dict[DeviceKey, DeviceEntry]
    """The devices this node can use (candidates), by key."""
    accounting: dict[DeviceKey, DeviceEntry] = field(default_factory=dict)
    """Devices of the same pools this node cannot use but that consume shared counters (usage only)."""
    candidates: dict[Any, Any] = field(default_factory=dict)
    """Cache owned by the allocator: selector set -> matching devices of usable pools, in order."""

    def usable_devices(self) -> Iterable[DeviceEntry]:
        for pool in self.pools:
            if pool.usable:
                yield from pool.devices


def _slice_scope(spec: Mapping[str, Any], node: Mapping[str, Any], node_name: str) -> tuple[bool, Any]:
    """Does the slice target the node, and which node selector do its devices carry."""
    if spec.get("nodeName"):
        return spec["nodeName"] == node_name, node_name_selector(node_name)
    if spec.get("allNodes"):
        return True, None
    if spec.get("nodeSelector"):
        return node_selector_matches(spec["nodeSelector"], node), spec["nodeSelector"]
    if spec.get("perDeviceNodeSelection"):
        return True, "per-device"
    return False, None


def _device_scope(dev: Mapping[str, Any], node: Mapping[str, Any], node_name: str) -> tuple[bool, Any]:
    if dev.get("nodeName"):
        return dev["nodeName"] == node_name, node_name_selector(node_name)
    if dev.get("allNodes"):
        return True, None
    if dev.get("nodeSelector"):
        return node_selector_matches(dev["nodeSelector"], node), dev["nodeSelector"]
    return False, None


def build_node_pools(slices: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> NodePools:
    """Group the slices a node can see into pools (latest generation only) and index their devices.

    Completeness counts every slice of the pool's latest generation, whichever nodes it targets: a pool
    published as one ``nodeSelector`` slice per node is whole once all of them exist. Devices this node
    cannot use are not candidates, but the ones that consume shared counters are kept in ``accounting``
    so that their allocations (made from other nodes) still draw on the pool's counters.
    """
    node_name = str((node.get("metadata") or {}).get("name", ""))
    latest: dict[tuple[str, str], int] = {}
    for s in slices:
        spec = s.get("spec") or {}
        pool = spec.get("pool") or {}
        pid = (str(spec.get("driver", "")), str(pool.get("name", "")))
        latest[pid] = max(latest.get(pid, -1), int(pool.get("generation", 0)))

    pools: dict[tuple[str, str], Pool] = {}
    visible: set[tuple[str, str]] = set()
    hidden: dict[tuple[str, str], list[DeviceEntry]] = {}
    ordered = sorted(slices, key=lambda s: str((s.get("metadata") or {}).get("name", "")))
    for s in ordered:
        spec = s.get("spec") or {}
        pool_spec = spec.get("pool") or {}
        driver, pool_name = str(spec.get("driver", "")), str(pool_spec.get("name", ""))
        generation = int(pool_spec.get("generation", 0))
        if generation != latest[(driver, pool_name)]:
            continue
        targets, selector = _slice_scope(spec, node, node_name)
        pool = pools.get((driver, pool_name))
        if pool is None:
            pool = Pool(driver, pool_name, generation, int(pool_spec.get("resourceSliceCount", 1)))
            pools[(driver, pool_name)] = pool
        if targets or spec.get("sharedCounters"):
            visible.add((driver, pool_name))
        pool.slices_seen += 1
        if int(pool_spec.get("resourceSliceCount", 1)) != pool.slice_count and not pool.invalid:
            pool.invalid = "slices of one generation disagree on resourceSliceCount"
        slice_name = str((s.get("metadata") or {}).get("name", ""))
        try:
            for set_name, counters in parse_counter_sets(spec.get("sharedCounters")).items():
                if set_name in pool.counter_sets:
                    pool.invalid = pool.invalid or f"counter set {set_name} is defined twice"
                pool.counter_sets[set_name] = counters
            for dev in spec.get("devices") or ():
                dev_selector, usable = selector, targets
                if usable and selector == "per-device":
                    usable, dev_selector = _device_scope(dev, node, node_name)
                if usable:
                    pinned = bool(dev.get("nodeName") if selector == "per-device" else spec.get("nodeName"))
                    pool.devices.append(_entry(driver, pool_name, slice_name, dev, dev_selector, pinned))
                elif dev.get("consumesCounters"):
                    hidden.setdefault((driver, pool_name), []).append(_entry(driver, pool_name, slice_name, dev, None))
        except (QuantityError, TypeError, ValueError, AttributeError) as err:
            pool.invalid = pool.invalid or f"slice {slice_name} cannot be read: {err}"

    by_key: dict[DeviceKey, DeviceEntry] = {}
    accounting: dict[DeviceKey, DeviceEntry] = {}
    for pid, pool in pools.items():
        if pid not in visible:
            continue
        seen: set[str] = set()
        for entry in pool.devices:
            if entry.name in seen:
                pool.invalid = pool.invalid or f"device name {entry.name} is used twice"
            seen.add(entry.name)
            by_key.setdefault(entry.key, entry)
            if entry.binding:
                pool.binding = True
            for set_name, counters in entry.consumes.items() if not pool.incomplete else ():
                known = pool.counter_sets.get(set_name)
                if known is None or any(c not in known for c in counters):
                    pool.invalid = pool.invalid or (
                        f"device {entry.name} consumes from an unknown counter set or counter ({set_name})"
                    )
        for entry in hidden.get(pid, ()):
            if entry.name in seen:
                pool.invalid = pool.invalid or f"device name {entry.name} is used twice"
            seen.add(entry.name)
            accounting.setdefault(entry.key, entry)
    order = sorted((pools[pid] for pid in visible), key=lambda p: (p.binding, p.driver, p.name))
    return NodePools(node_name=node_name, pools=order, by_key=by_key, accounting=accounting)


def _entry(
    driver: str, pool: str, slice_name: str, dev: Mapping[str, Any], selector: Any, pinned: bool = False
) -> DeviceEntry:
    consumes: CounterAmounts = {}
    for set_name, counters in parse_counter_sets(dev.get("consumesCounters")).items():
        into = consumes.setdefault(set_name, {})
        for counter, amount in counters.items():
            into[counter] = into.get(counter, 0) + amount
    return DeviceEntry(
        driver=driver,
        pool=pool,
        slice_name=slice_name,
        data=dev,
        key=(driver, pool, str(dev.get("name", ""))),
        node_selector=selector,
        multi=bool(dev.get("allowMultipleAllocations")),
        capacity=parse_capacities(dev.get("capacity")),
        consumes=consumes,
        taints=tuple(dev.get("taints") or ()),
        binding=bool(dev.get("bindingConditions")),
        pinned=pinned,
    )
