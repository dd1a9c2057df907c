"""Live ResourceSlices + ResourceClaims -> what every chip has given out and what is left (``snn-dra status``).

Everything is derived from what the API server holds, so the view is the same for the embedded cluster and a
real one, and the same as the scheduler's: the newest generation of each pool of this driver, and the
``status.allocation`` of every claim. Partition devices (chip, coreGroup, neuronCore) publish the rectangle of
the core mesh they cover (``coreX``, ``coreY``, ``coreWidth``, ``coreHeight``) and how many usable cores it holds
(``coreCount``); that is the same membership the shared counters enforce, so a claim on a group or a whole chip
marks every core of it. The finest published partition level says which positions hold a usable core; a
chip published without its cores shows its groups' rectangles whole. Routers and event queues are shared by
consumable capacity: each allocation result says what it consumes (``consumedCapacity``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snn_dra.api import attributes as attr
from snn_dra.api.attributes import DRIVER_NAME, DeviceType
from snn_dra.api.status import (
    ABSENT,
    CLAIM_KEYS,
    FREE,
    MORE_CLAIMS,
    TAINTED,
    ChipClaim,
    ChipStatus,
    ClusterStatus,
    NodeStatus,
    SharedDevice,
    ShareHolder,
    Used,
)
from snn_dra.driver.livepools import newest_slices
from snn_dra.driver.quantity import QuantityError, parse

_PARTITIONS = (DeviceType.NEURON_CORE, DeviceType.CORE_GROUP, DeviceType.CHIP)
"""Finest first."""
_SHARED = (DeviceType.SPIKE_ROUTER, DeviceType.EVENT_QUEUE)
_UNITS = {attr.CAP_EVENT_THROUGHPUT_MEPS: "MEPS", attr.CAP_QUEUE_DEPTH: "queue slots"}
"""Capacity name -> the unit a legend line shows it in."""


class StatusError(ValueError):
    """A published device lacks what the status view needs; the message names the device and the attribute."""


@dataclass(frozen=True, slots=True)
class _Device:
    pool: str
    node: str
    name: str
    type: str
    chip: str
    model: str
    board: str
    origin: tuple[int, int]
    extent: tuple[int, int]
    core_count: int
    capacity: dict[str, int]
    tainted: bool

    def cells(self) -> set[tuple[int, int]]:
        x0, y0 = self.origin
        return {(x, y) for x in range(x0, x0 + self.extent[0]) for y in range(y0, y0 + self.extent[1])}


@dataclass(slots=True)
class _Claim:
    name: str
    pods: list[str]
    results: list[tuple[str, str, dict[str, int]]] = field(default_factory=list)
    """(pool, device, consumed capacity) of this driver's non-admin results."""


def _attribute(device: Mapping[str, Any], name: str) -> Any:
    try:
        return next(iter(device["attributes"][name].values()))
    except (KeyError, AttributeError, StopIteration, TypeError):
        raise StatusError(
            f"device {device.get('name')} has no attribute {name!r}; the driver that published it is older than "
            "`snn-dra status` (upgrade the DaemonSet so every device carries its chip and core geometry)"
        ) from None


def _amount(raw: object) -> int:
    try:
        return int(parse(str(raw)))
    except (QuantityError, ValueError, ArithmeticError):
        return 0


def _devices(slices: Iterable[Mapping[str, Any]]) -> list[_Device]:
    """Devices in publication order: slices by name (their index prefix), devices as listed."""
    out = []
    for s in sorted(newest_slices(slices), key=lambda s: str((s.get("metadata") or {}).get("name", ""))):
        spec = s["spec"]
        pool = str(spec["pool"]["name"])
        node = str(spec.get("nodeName") or pool)
        for d in spec.get("devices") or ():
            out.append(
                _Device(
                    pool=pool,
                    node=node,
                    name=str(d["name"]),
                    type=str(_attribute(d, attr.TYPE)),
                    chip=str(_attribute(d, attr.CHIP_ID)),
                    model=str(_attribute(d, attr.MODEL)),
                    board=str(_attribute(d, attr.BOARD_ID)),
                    origin=(int(_attribute(d, attr.CORE_X)), int(_attribute(d, attr.CORE_Y))),
                    extent=(int(_attribute(d, attr.CORE_WIDTH)), int(_attribute(d, attr.CORE_HEIGHT))),
                    core_count=int(_attribute(d, attr.CORE_COUNT)),
                    capacity={str(k): _amount((v or {}).get("value")) for k, v in (d.get("capacity") or {}).items()},
                    tainted=bool(d.get("taints")),
                )
            )
    return out


def _claims(claims: Iterable[Mapping[str, Any]]) -> list[_Claim]:
    out = []
    for c in claims:
        meta = c.get("metadata") or {}
        status = c.get("status") or {}
        pods = sorted(str(r.get("name")) for r in status.get("reservedFor") or () if r.get("resource") == "pods")
        claim = _Claim(f"{meta.get('namespace', '')}/{meta.get('name', '')}", pods)
        for r in ((status.get("allocation") or {}).get("devices") or {}).get("results") or ():
            if r.get("driver") != DRIVER_NAME or r.get("adminAccess"):
                continue
            consumed = {str(k): _amount(v) for k, v in (r.get("consumedCapacity") or {}).items()}
            claim.results.append((str(r.get("pool", "")), str(r.get("device", "")), consumed))
        if claim.results:
            out.append(claim)
    return sorted(out, key=lambda c: c.name)


def _key(index: int) -> str:
    return CLAIM_KEYS[index] if index < len(CLAIM_KEYS) else MORE_CLAIMS


def _chip_status(devices: list[_Device], held: dict[str, list[tuple[_Claim, dict[str, int]]]]) -> ChipStatus:
    """``held``: device name -> the claims (and what they consume) allocated that device of this chip."""
    by_type: dict[str, list[_Device]] = {}
    for d in devices:
        by_type.setdefault(d.type, []).append(d)
    partitions = [d for t in _PARTITIONS for d in by_type.get(t, ())]
    finest = next((by_type[t] for t in _PARTITIONS if by_type.get(t)), [])
    whole = [d for d in devices if d.type in (DeviceType.CHIP, *_SHARED)]
    if whole:
        mesh = whole[0].extent
    else:
        mesh = (
            max((d.origin[0] + d.extent[0] for d in devices), default=0),
            max((d.origin[1] + d.extent[1] for d in devices), default=0),
        )
    present = set().union(*(d.cells() for d in finest)) if finest else set()

    owner: dict[tuple[int, int], int] = {}
    chip_claims: list[_Claim] = []
    claim_devices: dict[str, list[_Device]] = {}
    for d in partitions:
        for claim, _ in held.get(d.name, ()):
            if claim.name not in claim_devices:
                chip_claims.append(claim)
            claim_devices.setdefault(claim.name, []).append(d)
    chip_claims.sort(key=lambda c: c.name)
    for i, claim in enumerate(chip_claims):
        for d in claim_devices[claim.name]:
            for cell in d.cells():
                owner.setdefault(cell, i)
    held_cells = set(owner)
    tainted_cells = set().union(*(d.cells() for d in partitions if d.tainted)) if partitions else set()

    usable = sum(d.core_count for d in finest)
    if not finest:
        usable = max((d.core_count for d in whole), default=0)
    held_cores = sum(d.core_count for ds in claim_devices.values() for d in ds)
    tainted_cores = sum(d.core_count for d in finest if d.tainted and not d.cells() & held_cells)
    groups = by_type.get(DeviceType.CORE_GROUP, [])
    chips = by_type.get(DeviceType.CHIP, [])

    picture = []
    for y in range(mesh[1]):
        row = []
        for x in range(mesh[0]):
            cell = (x, y)
            if finest and cell not in present:
                row.append(ABSENT)
            elif cell in owner:
                row.append(_key(owner[cell]))
            elif cell in tainted_cells:
                row.append(TAINTED)
            else:
                row.append(FREE)
        picture.append("".join(row))

    shared = []
    for d in devices:
        if d.type not in _SHARED:
            continue
        holders = [ShareHolder(claim=c.name, pods=c.pods, consumed=consumed) for c, consumed in held.get(d.name, ())]
        capacity = {
            name: Used(used=sum(h.consumed.get(name, 0) for h in holders), capacity=total)
            for name, total in sorted(d.capacity.items())
        }
        shared.append(SharedDevice(name=d.name, type=d.type, capacity=capacity, holders=holders, tainted=d.tainted))

    def total(kind: str, name: str) -> Used | None:
        found = [s.capacity[name] for s in shared if s.type == kind and name in s.capacity]
        if not found:
            return None
        return Used(used=sum(u.used for u in found), capacity=sum(u.capacity for u in found))

    first = devices[0]
    return ChipStatus(
        chip_id=first.chip,
        model=first.model,
        board_id=first.board,
        pool=first.pool,
        core_mesh=mesh,
        cores=Used(used=held_cores, capacity=usable),
        cores_free=max(usable - held_cores - tainted_cores, 0),
        cores_tainted=tainted_cores,
        core_groups=len(groups),
        core_groups_free=sum(1 for g in groups if not g.tainted and not g.cells() & held_cells),
        whole_chip_free=(not chips[0].tainted and not held_cells) if chips else None,
        router=total(DeviceType.SPIKE_ROUTER, attr.CAP_EVENT_THROUGHPUT_MEPS),
        queue_depth=total(DeviceType.EVENT_QUEUE, attr.CAP_QUEUE_DEPTH),
        tainted_devices=sorted(d.name for d in devices if d.tainted),
        claims=[
            ChipClaim(
                key=_key(i),
                claim=c.name,
                pods=c.pods,
                devices=sorted(d.name for d in claim_devices[c.name]),
                cores=sum(d.core_count for d in claim_devices[c.name]),
            )
            for i, c in enumerate(chip_claims)
        ],
        shared=shared,
        picture=picture,
    )


def build_status(
    slices: Iterable[Mapping[str, Any]], claims: Iterable[Mapping[str, Any]], node: str | None = None
) -> ClusterStatus:
    """The status of every chip of this driver (of ``node`` only when given), nodes and chips in name order.

    Raises :class:`StatusError` when a published device lacks an attribute the view needs.
    """
    devices = _devices(slices)
    by_device: dict[tuple[str, str], list[tuple[_Claim, dict[str, int]]]] = {}
    for claim in _claims(claims):
        for pool, device, consumed in claim.results:
            by_device.setdefault((pool, device), []).append((claim, consumed))
    known = {(d.pool, d.name) for d in devices}
    stale = sorted(f"{p}/{n} ({', '.join(c.name for c, _ in hs)})" for (p, n), hs in by_device.items()
                   if (p, n) not in known)  # fmt: skip

    chips: dict[tuple[str, str, str], list[_Device]] = {}
    for d in devices:
        if node is None or d.node == node:
            chips.setdefault((d.node, d.pool, d.chip), []).append(d)

    first = {key: i for i, key in reversed(list(enumerate((d.node, d.pool, d.chip) for d in devices)))}

    def order(item: tuple[tuple[str, str, str], list[_Device]]) -> tuple[object, ...]:
        # Publication order is discovery order: the board's chips in mesh order, boards as configured.
        (node_name, pool, chip), _ = item
        return node_name, pool, first[(node_name, pool, chip)]

    nodes: dict[str, list[ChipStatus]] = {}
    for (node_name, pool, _), members in sorted(chips.items(), key=order):
        held = {d.name: by_device.get((pool, d.name), []) for d in members}
        nodes.setdefault(node_name, []).append(_chip_status(members, held))
    return ClusterStatus(
        nodes=[NodeStatus(name=n, chips=c) for n, c in nodes.items()],
        other_allocations=stale if node is None else [],
    )


def _picture_block(chip: ChipStatus, spaced: bool) -> list[str]:
    rows = [" ".join(r) if spaced else r for r in chip.picture]
    width, height = chip.core_mesh
    return [chip.chip_id, f"{width}x{height}, {chip.cores_free}/{chip.cores.capacity} free", *rows]


def render_pictures(chips: list[ChipStatus], width: int = 80, gap: int = 3) -> list[str]:
    """The core pictures of ``chips`` side by side within ``width`` columns, then each chip's claim legend.

    One character per core (a space between cores when the row still fits), row coreY = 0 on top, so the
    host port (0, 0) is the top-left corner. Plain text: the same on a terminal, in a pipe and in a test.
    """
    blocks = []
    for chip in chips:
        spaced = 2 * chip.core_mesh[0] - 1 <= width
        block = _picture_block(chip, spaced)
        blocks.append((max(len(line) for line in block), block))
    lines: list[str] = []
    row: list[tuple[int, list[str]]] = []

    def flush() -> None:
        if not row:
            return
        for i in range(max(len(b) for _, b in row)):
            cells = [(b[i] if i < len(b) else "").ljust(w) for w, b in row]
            lines.append((" " * gap).join(cells).rstrip())
        lines.append("")
        row.clear()

    used = 0
    for w, block in blocks:
        if row and used + gap + w > width:
            flush()
            used = 0
        used += (gap if row else 0) + w
        row.append((w, block))
    flush()
    for chip in chips:
        for c in chip.claims:
            pods = f" (pod {', '.join(c.pods)})" if c.pods else ""
            lines.append(f"{chip.chip_id} {c.key}: {c.claim}{pods}, {c.cores} core{'s' if c.cores != 1 else ''}")
    for chip in chips:
        for s in chip.shared:
            for h in s.holders:
                amounts = ", ".join(f"{v:,} {_UNITS.get(n, n)}" for n, v in sorted(h.consumed.items()))
                lines.append(f"{s.name}: {h.claim} uses {amounts or 'no recorded amount'}")
    lines.append(f"Cores: A-Z, a-z one claim each, '{FREE}' free, '{TAINTED}' tainted, '{ABSENT}' no usable core.")
    return lines
