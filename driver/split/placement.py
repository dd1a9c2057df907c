"""Search a low-traffic placement of a plan's stages on the free devices of a live cluster.

The Kubernetes allocator takes the first devices that fit, in slice order; it has no notion of router
hops. ``split place`` therefore chooses concrete devices itself and pins them with CEL selectors.

**Search.** Per group (one claim, one node) and per node: every stage gets its *options*, the device sets
it could take (one device; or, for a stage of several core groups, a seed and its nearest free groups on
the same chip; for several chips, a seed chip and its nearest free chips). A greedy pass starts from each
option of the first stage (a spread sample when there are very many) and gives every following stage its
cheapest option that overlaps nothing already chosen. The best greedy result is then improved by local
search: move one stage to its cheapest free option given both neighbours, until no move helps. Hops
come from one precomputed matrix that implements ``cost.hops`` (tests check they agree).

**Exact optimum.** :func:`exhaustive` does branch and bound over the same options; it is for small
instances (tests and ``hack/bench/split.py``), never for the command.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from snn_dra.api.attributes import DeviceType
from snn_dra.api.split import Scope
from snn_dra.driver.split.cost import NODE_HOPS, stage_hops, traffic
from snn_dra.driver.split.inventory import LiveDevice
from snn_dra.driver.split.planner import Plan, Stage, StageGroup

MAX_STARTS: Final = 256
"""Greedy starts per node; beyond this the first stage's options are sampled evenly."""
MAX_ROUNDS: Final = 50
EPS: Final = 1e-9

IntArray = npt.NDArray[np.int64]


class PlacementError(ValueError):
    """No node has room for a group; the message names the group, what it needs and what is free."""


@dataclass(frozen=True, slots=True)
class GroupPlacement:
    group: StageGroup
    node: str
    stages: tuple[tuple[LiveDevice, ...], ...]
    cost: float


@dataclass(frozen=True, slots=True)
class Placement:
    groups: tuple[GroupPlacement, ...]
    seconds: float

    @property
    def cost(self) -> float:
        """Traffic of the whole chain, including the links between groups."""
        sites = [tuple(d.site for d in devs) for g in self.groups for devs in g.stages]
        rates = [s.out_rate_keps for g in self.groups for s in g.group.stages]
        return traffic(rates, sites)


def fits(device: LiveDevice, stage: Stage, plan: Plan) -> bool:
    """The device can run one share of the stage (type, family, model, every capacity)."""
    need = stage.per_device
    return (
        device.site.type == str(stage.unit.type)
        and device.family == str(plan.chip.family)
        and (plan.model.spec.chip_model is None or device.model == plan.model.spec.chip_model)
        and device.cores >= need.cores
        and device.neurons >= need.neurons
        and device.synapse_memory >= need.synapse_memory
    )


class _NodeSpace:
    """Hop and overlap matrices over the candidate devices of one node."""

    def __init__(self, devices: Sequence[LiveDevice]) -> None:
        self.devices = list(devices)
        sites = [d.site for d in self.devices]
        chip_ids = sorted({s.chip for s in sites})
        index = {c: i for i, c in enumerate(chip_ids)}
        chip = np.array([index[s.chip] for s in sites], dtype=np.int64)
        origin = np.array([s.origin for s in sites], dtype=np.int32).reshape(-1, 2)
        extent = np.array([s.extent for s in sites], dtype=np.int32).reshape(-1, 2)
        to_port = origin.sum(axis=1)
        # chip-to-chip part of a route between two chips: over the board's mesh, or through the host
        first = {s.chip: s for s in sites}
        reps = [first[c] for c in chip_ids]
        mesh = np.array([r.mesh for r in reps], dtype=np.int32).reshape(-1, 3)
        chip_host = np.array([r.hops_to_host - sum(r.origin) for r in reps], dtype=np.int32)
        board = np.array([r.board for r in reps])
        between = np.abs(mesh[:, None, :] - mesh[None, :, :]).sum(axis=2)
        between = np.where(board[:, None] == board[None, :], between, chip_host[:, None] + chip_host[None, :])
        same_chip = chip[:, None] == chip[None, :]
        x, y = origin[:, 0], origin[:, 1]
        core = np.abs(x[:, None] - x[None, :]) + np.abs(y[:, None] - y[None, :])
        cross = to_port[:, None] + to_port[None, :] + between[chip[:, None], chip[None, :]]
        self.hops = np.where(same_chip, core, cross).astype(np.float64)
        x2, y2 = x + extent[:, 0], y + extent[:, 1]
        self.overlap = (
            same_chip
            & (x[:, None] < x2[None, :])
            & (x[None, :] < x2[:, None])
            & (y[:, None] < y2[None, :])
            & (y[None, :] < y2[:, None])
        )
        self.chip = chip

    def options(self, members: Sequence[int], count: int, whole_chips: bool) -> IntArray:
        """Device sets a stage of ``count`` devices could take (rows of device indices)."""
        idx = np.array(members, dtype=np.int64)
        if count == 1 or idx.size == 0:
            return idx.reshape(-1, 1)
        rows = []
        for seed in idx:
            pool = idx if whole_chips else idx[self.chip[idx] == self.chip[seed]]
            if pool.size < count:
                continue
            order = pool[np.argsort(self.hops[seed, pool], kind="stable")]
            chosen = [int(seed), *[int(i) for i in order if i != seed][: count - 1]]
            if len(chosen) == count:
                rows.append(sorted(chosen))
        if not rows:
            return np.zeros((0, count), dtype=np.int64)
        return np.unique(np.array(rows, dtype=np.int64), axis=0)

    def link(self, a: IntArray, options: IntArray) -> npt.NDArray[np.float64]:
        """Mean hops from the device set ``a`` to every option."""
        row = self.hops[a].mean(axis=0)
        result: npt.NDArray[np.float64] = row[options].mean(axis=1)
        return result

    def blocked_by(self, chosen: Sequence[IntArray]) -> npt.NDArray[np.bool_]:
        if not chosen:
            return np.zeros(len(self.devices), dtype=bool)
        result: npt.NDArray[np.bool_] = self.overlap[np.concatenate(chosen)].any(axis=0)
        return result


def _greedy(space: _NodeSpace, options: list[IntArray], rates: Sequence[float], start: int) -> tuple[float, list[int]]:
    chosen = [options[0][start]]
    picks = [start]
    blocked = space.blocked_by(chosen)
    total = 0.0
    for i in range(1, len(options)):
        valid = ~blocked[options[i]].any(axis=1)
        if not valid.any():
            return float("inf"), picks
        costs = np.where(valid, rates[i - 1] * space.link(chosen[-1], options[i]), np.inf)
        pick = int(np.argmin(costs))
        total += float(costs[pick])
        picks.append(pick)
        chosen.append(options[i][pick])
        blocked |= space.overlap[options[i][pick]].any(axis=0)
    return total, picks


def _chain_cost(space: _NodeSpace, options: list[IntArray], rates: Sequence[float], picks: Sequence[int]) -> float:
    return sum(
        rates[i] * float(space.hops[np.ix_(options[i][picks[i]], options[i + 1][picks[i + 1]])].mean())
        for i in range(len(picks) - 1)
    )


def _improve(space: _NodeSpace, options: list[IntArray], rates: Sequence[float], picks: list[int]) -> list[int]:
    n = len(options)
    for _ in range(MAX_ROUNDS):
        moved = False
        for i in range(n):
            others = [options[j][picks[j]] for j in range(n) if j != i]
            valid = ~space.blocked_by(others)[options[i]].any(axis=1)
            costs = np.zeros(len(options[i]))
            if i > 0:
                costs += rates[i - 1] * space.link(options[i - 1][picks[i - 1]], options[i])
            if i < n - 1:
                costs += rates[i] * space.link(options[i + 1][picks[i + 1]], options[i])
            costs = np.where(valid, costs, np.inf)
            best = int(np.argmin(costs))
            if costs[best] < costs[picks[i]] - EPS:
                picks[i] = best
                moved = True
        if not moved:
            break
    return picks


def _candidates(plan: Plan, group: StageGroup, devices: Sequence[LiveDevice]) -> list[list[int]]:
    return [[k for k, d in enumerate(devices) if fits(d, stage, plan)] for stage in group.stages]


def _node_setup(
    plan: Plan, group: StageGroup, devices: Sequence[LiveDevice]
) -> tuple[_NodeSpace, list[IntArray]] | None:
    members = _candidates(plan, group, devices)
    used = sorted({k for m in members for k in m})
    if any(not m for m in members):
        return None
    local = {k: i for i, k in enumerate(used)}
    space = _NodeSpace([devices[k] for k in used])
    options = [
        space.options([local[k] for k in m], stage.count, stage.unit.type == DeviceType.CHIP)
        for m, stage in zip(members, group.stages, strict=True)
    ]
    if any(len(o) == 0 for o in options):
        return None
    return space, options


def place_on_node(
    plan: Plan, group: StageGroup, devices: Sequence[LiveDevice]
) -> tuple[float, list[tuple[LiveDevice, ...]]] | None:
    """Best (cost, device sets per stage) for one group among ``devices`` of one node; None if it cannot fit."""
    setup = _node_setup(plan, group, devices)
    if setup is None:
        return None
    space, options = setup
    rates = [s.out_rate_keps for s in group.stages]
    n0 = len(options[0])
    starts = range(n0) if n0 <= MAX_STARTS else np.linspace(0, n0 - 1, MAX_STARTS).astype(int).tolist()
    results = sorted((r for r in (_greedy(space, options, rates, s) for s in starts) if r[0] < float("inf")),
                     key=lambda r: r[0])  # fmt: skip
    if not results:
        return None
    best_cost, best = float("inf"), list(results[0][1])
    for _, picks in results[:3]:
        improved = _improve(space, options, rates, list(picks))
        c = _chain_cost(space, options, rates, improved)
        if c < best_cost - EPS:
            best_cost, best = c, improved
    return best_cost, [tuple(space.devices[int(k)] for k in options[i][best[i]]) for i in range(len(best))]


def exhaustive(plan: Plan, group: StageGroup, devices: Sequence[LiveDevice]) -> float | None:
    """The exact optimum cost of one group among ``devices`` of one node (branch and bound; small instances)."""
    setup = _node_setup(plan, group, devices)
    if setup is None:
        return None
    space, options = setup
    rates = [s.out_rate_keps for s in group.stages]
    n = len(options)
    best = [float("inf")]

    def dfs(i: int, chosen: list[IntArray], blocked: npt.NDArray[np.bool_], cost: float) -> None:
        if cost >= best[0] - EPS:
            return
        if i == n:
            best[0] = cost
            return
        valid = np.asarray(~blocked[options[i]].any(axis=1), dtype=bool)
        step = rates[i - 1] * space.link(chosen[-1], options[i]) if i else np.zeros(len(options[i]))
        for k in np.argsort(np.where(valid, step, np.inf), kind="stable"):
            if not valid[k]:
                break
            if cost + step[k] >= best[0] - EPS:
                break
            devs = options[i][k]
            dfs(i + 1, [*chosen, devs], blocked | space.overlap[devs].any(axis=0), cost + float(step[k]))

    dfs(0, [], np.zeros(len(space.devices), dtype=bool), 0.0)
    return None if best[0] == float("inf") else best[0]


def place(plan: Plan, free: Sequence[LiveDevice]) -> Placement:
    """Every group on the node (scope chip: the chip) where it costs least; devices given to one group are not
    offered to the next."""
    start = time.perf_counter()
    one_chip = plan.model.spec.placement.scope == Scope.CHIP

    def area(d: LiveDevice) -> tuple[str, str]:
        return d.site.node, d.site.chip if one_chip else ""

    remaining = list(free)
    out = []
    for group in plan.groups:
        best: GroupPlacement | None = None
        for key in sorted({area(d) for d in remaining}):
            found = place_on_node(plan, group, [d for d in remaining if area(d) == key])
            if found is not None and (best is None or found[0] < best.cost - EPS):
                best = GroupPlacement(group, key[0], tuple(found[1]), found[0])
        if best is None:
            raise PlacementError(_no_room(plan, group, remaining))
        out.append(best)
        chosen = [d.site for devs in best.stages for d in devs]
        remaining = [d for d in remaining if not any(d.site == c or d.site.overlaps(c) for c in chosen)]
    return Placement(tuple(out), time.perf_counter() - start)


def _no_room(plan: Plan, group: StageGroup, free: Sequence[LiveDevice]) -> str:
    parts = []
    for stage in group.stages:
        n = sum(1 for d in free if fits(d, stage, plan))
        parts.append(f"{stage.name} needs {stage.count} {stage.unit.type} ({n} free that fit, all nodes)")
    return (
        f"no node has room for group {group.name} now: {'; '.join(parts)}. Free devices (delete finished "
        "workloads) or apply the planner's manifests (snn-dra split plan), which wait for room instead"
    )


def link_hops(a: Sequence[LiveDevice], b: Sequence[LiveDevice]) -> float:
    return stage_hops([d.site for d in a], [d.site for d in b])


__all__ = ["NODE_HOPS", "GroupPlacement", "Placement", "PlacementError", "exhaustive", "fits", "place"]
