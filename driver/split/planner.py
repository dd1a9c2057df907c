"""Cut a model's layers into stages that fit the family's devices, and say how tightly to keep them together.

**Sizing.** A stage needs ``cores = max(neurons / neurons per core, synapse bytes / synapse memory per
core)`` (rounded up) of the family's chip (``backends/families.py``). It runs on the smallest allowed
device type that holds it: one neuronCore; else up to half a chip of coreGroups (the natural group:
Loihi tile, SpiNNaker2 QPE, Akida node), kept on one chip; else whole chips. Each device of a stage must
hold its share (the stage's demand divided by the device count, rounded up), which the emitted CEL
selectors check against the published capacities, so a device with fused-off cores that is too small is
never chosen: the planner never emits a stage that exceeds a device.

**Cutting.** Stages hold consecutive layers, so spikes cross a cut only where a layer sends to the next.
With ``stageLimits`` the planner takes the fewest stages the limits allow and, among those, the cuts with
the least spike traffic. With a stage count it first balances (the smallest largest stage, measured in
device cores) and then, among cuts that keep every stage within that size, minimises cut traffic: the
SpiNeMap idea of cutting where few spikes flow, with whole layers as the clusters.

**Locality levels.** Stages of one claim are kept close with ``matchAttribute`` constraints, listed from
tight to loose as ``firstAvailable`` subrequests: same chip (``chipID``), same chip region (``chipRegion``
and ``boardID``: a 2x2 block of chips), same board (``boardID``), anywhere on the node. Only levels the
group can fit are emitted; scope ``chip`` emits the chip level alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from snn_dra.api.attributes import DeviceType, Family
from snn_dra.api.split import Scope, SplitModel
from snn_dra.driver.backends.families import SPINNAKER2_BOARD_CHIPS, ChipSpec, spec_for

MAX_DEVICES_PER_CLAIM: Final = 32
"""``AllocationResultsMaxSize``: devices of one claim, all requests together."""
MAX_CONSTRAINTS_PER_CLAIM: Final = 32
REGION_CHIPS: Final = 4
"""Chips in one chip region (2x2 block, ``topology.chip_region``)."""
DEFAULT_CHIPS_PER_NODE: Final[dict[Family, int]] = {Family.LOIHI2: 8, Family.SPINNAKER2: SPINNAKER2_BOARD_CHIPS,
                                                    Family.AKIDA: 1}  # fmt: skip
"""One board per node: Kapoho Point (8 Loihi-2-like chips), one SpiNNaker2 server board, one Akida card."""
DEVICE_CLASSES: Final[dict[DeviceType, str]] = {
    DeviceType.NEURON_CORE: "snn-neuron-core",
    DeviceType.CORE_GROUP: "snn-core-group",
    DeviceType.CHIP: "snn-chip",
}
"""The DeviceClasses of ``deploy/base/deviceclasses.yaml`` for each stage device type."""


class PlanError(ValueError):
    """The model cannot be planned as asked; the message names the layer or stage, the limit and the fix."""


class Level(StrEnum):
    """How close the stages of one claim must be, tight to loose (the ``firstAvailable`` subrequest names)."""

    CHIP = "chip"
    REGION = "region"
    BOARD = "board"
    NODE = "node"


LEVEL_ATTRIBUTES: Final[dict[Level, tuple[str, ...]]] = {
    Level.CHIP: ("chipID", "chipRegion", "boardID"),
    Level.REGION: ("chipRegion", "boardID"),
    Level.BOARD: ("boardID",),
    Level.NODE: (),
}
"""Attributes that must match among the devices chosen at a level (a tighter level implies the looser keys,
so stages that fall back to different levels still share the looser keys)."""


@dataclass(frozen=True, slots=True)
class Demand:
    neurons: int
    synapse_memory: int
    cores: int


@dataclass(frozen=True, slots=True)
class DeviceUnit:
    """Nominal size of one device of a type (discovery may publish less: fused cores)."""

    type: DeviceType
    cores: int
    neurons: int
    synapse_memory: int

    @property
    def device_class(self) -> str:
        return DEVICE_CLASSES[self.type]


@dataclass(frozen=True, slots=True)
class Stage:
    index: int
    name: str
    """Request and container name (``stage<i>``)."""
    layers: tuple[str, ...]
    demand: Demand
    unit: DeviceUnit
    count: int
    per_device: Demand
    """What each of the ``count`` devices must hold (CEL capacity selectors)."""
    out_rate_keps: float
    """Spikes per second (thousands) this stage sends to the next one; 0 for the last stage."""

    @property
    def allocated_cores(self) -> int:
        return self.unit.cores * self.count


@dataclass(frozen=True, slots=True)
class StageGroup:
    """Stages that share one claim and one node."""

    name: str
    stages: tuple[Stage, ...]
    levels: tuple[Level, ...]
    """Locality levels, tight to loose; empty when the group has one stage (nothing to keep together)."""

    @property
    def devices(self) -> int:
        return sum(s.count for s in self.stages)


@dataclass(frozen=True, slots=True)
class Plan:
    model: SplitModel
    chip: ChipSpec
    stages: tuple[Stage, ...]
    groups: tuple[StageGroup, ...]
    chips_per_node: int

    def group_of(self, stage: Stage) -> StageGroup:
        return next(g for g in self.groups if stage in g.stages)


def device_units(chip: ChipSpec) -> dict[DeviceType, DeviceUnit]:
    g = chip.cores_per_group
    return {
        DeviceType.NEURON_CORE: DeviceUnit(DeviceType.NEURON_CORE, 1, chip.neurons_per_core,
                                           chip.synapse_memory_per_core),
        DeviceType.CORE_GROUP: DeviceUnit(DeviceType.CORE_GROUP, g, chip.neurons_per_core * g,
                                          chip.synapse_memory_per_core * g),
        DeviceType.CHIP: DeviceUnit(DeviceType.CHIP, chip.nominal_cores, chip.neurons_per_chip,
                                    chip.synapse_memory_per_chip),
    }  # fmt: skip


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def demand_of(neurons: int, synapses: int, bytes_per_synapse: int, chip: ChipSpec) -> Demand:
    memory = synapses * bytes_per_synapse
    cores = max(1, _ceil(neurons, chip.neurons_per_core), _ceil(memory, chip.synapse_memory_per_core))
    return Demand(neurons, memory, cores)


def size_stage(demand: Demand, chip: ChipSpec, allowed: Sequence[DeviceType]) -> tuple[DeviceUnit, int] | None:
    """(device type, count) for a stage, or None when no allowed type can hold it."""
    units = device_units(chip)
    half_chip_groups = max(1, chip.groups // 2)
    choices: list[tuple[DeviceUnit, int]] = []
    if DeviceType.NEURON_CORE in allowed and demand.cores == 1:
        choices.append((units[DeviceType.NEURON_CORE], 1))
    if DeviceType.CORE_GROUP in allowed:
        n = _ceil(demand.cores, chip.cores_per_group)
        limit = half_chip_groups if DeviceType.CHIP in allowed else chip.groups
        if n <= limit:
            choices.append((units[DeviceType.CORE_GROUP], n))
    if DeviceType.CHIP in allowed:
        choices.append((units[DeviceType.CHIP], _ceil(demand.cores, chip.nominal_cores)))
    if DeviceType.NEURON_CORE in allowed and demand.cores <= MAX_DEVICES_PER_CLAIM and not choices:
        choices.append((units[DeviceType.NEURON_CORE], demand.cores))
    return choices[0] if choices else None


def _per_device(demand: Demand, count: int) -> Demand:
    return Demand(_ceil(demand.neurons, count), _ceil(demand.synapse_memory, count), _ceil(demand.cores, count))


def _segment_demand(model: SplitModel, chip: ChipSpec, start: int, end: int) -> Demand:
    layers = model.spec.layers[start:end]
    return demand_of(
        sum(layer.neurons for layer in layers),
        sum(layer.synapses for layer in layers),
        model.spec.bytes_per_synapse,
        chip,
    )


def _within_limits(model: SplitModel, demand: Demand) -> bool:
    limits = model.spec.stage_limits
    if limits is None:
        return True
    return not (
        (limits.neurons is not None and demand.neurons > limits.neurons)
        or (limits.synapse_memory is not None and demand.synapse_memory > limits.synapse_memory)
        or (limits.cores is not None and demand.cores > limits.cores)
    )


def _cuts(model: SplitModel, chip: ChipSpec, allowed: list[DeviceType]) -> list[tuple[int, int]]:
    """Layer ranges [start, end) of the stages (see the module docstring for the objective)."""
    layers = model.spec.layers
    n = len(layers)
    rate = [layer.spike_rate_keps for layer in layers]
    size: dict[tuple[int, int], int] = {}
    for start in range(n):
        for end in range(start + 1, n + 1):
            demand = _segment_demand(model, chip, start, end)
            if not _within_limits(model, demand):
                break  # longer segments only grow
            sized = size_stage(demand, chip, allowed)
            if sized is not None:
                size[start, end] = sized[0].cores * sized[1]
    for i, layer in enumerate(layers):
        if (i, i + 1) not in size:
            demand = _segment_demand(model, chip, i, i + 1)
            why = (
                "exceeds spec.stageLimits"
                if not _within_limits(model, demand)
                else f"fits no allowed device type ({', '.join(model.spec.device_types)}) of a {chip.model} chip"
            )
            raise PlanError(
                f"layer {layer.name} (spec.layers[{i}]) needs {demand.neurons} neurons, {demand.synapse_memory} bytes "
                f"of synapse memory, {demand.cores} cores and {why}; split the layer, raise the limits or allow "
                "larger device types"
            )
    inf = (math.inf, math.inf)

    def cut_rate(end: int) -> float:
        return rate[end - 1] if end < n else 0.0

    if model.spec.stages is None:  # fewest stages, then least cut traffic
        best: list[tuple[float, float]] = [(0.0, 0.0)] + [inf] * n
        back = [0] * (n + 1)
        for end in range(1, n + 1):
            for start in range(end):
                if (start, end) in size and best[start] != inf:
                    cand = (best[start][0] + 1, best[start][1] + cut_rate(end))
                    if cand < best[end]:
                        best[end], back[end] = cand, start
        return _walk(back, n)
    k = model.spec.stages
    # 1. the smallest possible largest stage (in allocated device cores)
    bottleneck = [[math.inf] * (n + 1) for _ in range(k + 1)]
    bottleneck[0][0] = 0
    for s in range(1, k + 1):
        for end in range(s, n + 1):
            for start in range(s - 1, end):
                if (start, end) in size:
                    bottleneck[s][end] = min(bottleneck[s][end], max(bottleneck[s - 1][start], size[start, end]))
    limit = bottleneck[k][n]
    if limit == math.inf:
        raise PlanError(f"the {n} layers cannot be cut into {k} stages that each fit a device; use more stages")
    # 2. least cut traffic among cuts whose stages all stay within that size
    traffic = [[math.inf] * (n + 1) for _ in range(k + 1)]
    traffic[0][0] = 0.0
    back2 = [[0] * (n + 1) for _ in range(k + 1)]
    for s in range(1, k + 1):
        for end in range(s, n + 1):
            for start in range(s - 1, end):
                if size.get((start, end), math.inf) <= limit and traffic[s - 1][start] != math.inf:
                    total = traffic[s - 1][start] + cut_rate(end)
                    if total < traffic[s][end]:
                        traffic[s][end], back2[s][end] = total, start
    ranges: list[tuple[int, int]] = []
    end = n
    for s in range(k, 0, -1):
        start = back2[s][end]
        ranges.append((start, end))
        end = start
    return ranges[::-1]


def _walk(back: list[int], n: int) -> list[tuple[int, int]]:
    ranges = []
    end = n
    while end > 0:
        ranges.append((back[end], end))
        end = back[end]
    return ranges[::-1]


def chips_needed(stages: Sequence[Stage], chip: ChipSpec) -> int:
    """Chips a set of stages occupies at least (whole-chip stages, plus sub-chip stages packed)."""
    whole = sum(s.count for s in stages if s.unit.type == DeviceType.CHIP)
    partial = sum(s.allocated_cores for s in stages if s.unit.type != DeviceType.CHIP)
    return whole + _ceil(partial, chip.nominal_cores)


def _levels(stages: Sequence[Stage], chip: ChipSpec, scope: Scope, chips_per_node: int) -> tuple[Level, ...]:
    if len(stages) < 2:
        return ()
    if scope == Scope.CHIP:
        return (Level.CHIP,)
    levels = []
    if all(s.unit.type != DeviceType.CHIP for s in stages) and chips_needed(stages, chip) <= 1:
        levels.append(Level.CHIP)
    chips = chips_needed(stages, chip)
    if chips <= REGION_CHIPS:
        levels.append(Level.REGION)
    if chips <= chips_per_node:
        levels.append(Level.BOARD)
    levels.append(Level.NODE)
    return tuple(levels)


def plan_model(model: SplitModel) -> Plan:
    """Stages and groups for ``model``; raises :class:`PlanError` naming what does not fit and what to do."""
    spec = model.spec
    try:
        chip = spec_for(spec.family, spec.chip_model)
    except ValueError as e:
        raise PlanError(f"spec.chipModel: {e}") from None
    allowed = [DeviceType(t) for t in spec.device_types]
    ranges = _cuts(model, chip, allowed)
    stages = []
    for i, (start, end) in enumerate(ranges):
        demand = _segment_demand(model, chip, start, end)
        sized = size_stage(demand, chip, allowed)
        assert sized is not None  # _cuts only keeps sized segments
        unit, count = sized
        stages.append(
            Stage(
                index=i,
                name=f"stage{i}",
                layers=tuple(layer.name for layer in spec.layers[start:end]),
                demand=demand,
                unit=unit,
                count=count,
                per_device=_per_device(demand, count),
                out_rate_keps=spec.layers[end - 1].spike_rate_keps if i < len(ranges) - 1 else 0.0,
            )
        )
    chips_per_node = spec.placement.chips_per_node or DEFAULT_CHIPS_PER_NODE[spec.family]
    scope = spec.placement.scope
    total_chips = chips_needed(stages, chip)
    if scope == Scope.CHIP and (total_chips > 1 or any(s.unit.type == DeviceType.CHIP for s in stages)):
        cores = sum(s.allocated_cores for s in stages)
        raise PlanError(
            f"model {model.metadata.name} needs {cores} cores in {len(stages)} stages, more than one {chip.model} "
            f"chip ({chip.nominal_cores} cores) holds next to each other; use spec.placement.scope: node"
        )
    if scope == Scope.NODE and total_chips > chips_per_node:
        raise PlanError(
            f"model {model.metadata.name} needs at least {total_chips} {chip.model} chips, but a node has "
            f"{chips_per_node} (spec.placement.chipsPerNode); use spec.placement.scope: nodes"
        )
    groups = _groups(model, stages, chip, chips_per_node)
    for group in groups:
        if group.devices > MAX_DEVICES_PER_CLAIM:
            raise PlanError(
                f"group {group.name} needs {group.devices} devices in one claim; a claim holds at most "
                f"{MAX_DEVICES_PER_CLAIM}: use fewer stages, or allow larger device types (spec.deviceTypes)"
            )
        constraints = len(LEVEL_ATTRIBUTES[Level.CHIP]) + sum(1 for s in group.stages if s.count > 1)
        if group.levels and constraints > MAX_CONSTRAINTS_PER_CLAIM:
            raise PlanError(f"group {group.name} would need {constraints} constraints; a claim allows 32")
    return Plan(model, chip, tuple(stages), groups, chips_per_node)


def _groups(model: SplitModel, stages: list[Stage], chip: ChipSpec, chips_per_node: int) -> tuple[StageGroup, ...]:
    placement = model.spec.placement
    scope = placement.scope
    if scope != Scope.NODES:
        return (StageGroup(model.metadata.name, tuple(stages), _levels(stages, chip, scope, chips_per_node)),)
    parts: list[tuple[str, list[Stage]]] = []
    if placement.groups is not None:
        wanted = sum(g.stages for g in placement.groups)
        if wanted != len(stages):
            raise PlanError(
                f"spec.placement.groups cover {wanted} stages but the model has {len(stages)}; make the group "
                "stage counts add up to the stage count"
            )
        at = 0
        for g in placement.groups:
            parts.append((g.name, stages[at : at + g.stages]))
            at += g.stages
    else:
        current: list[Stage] = []
        for stage in stages:
            if chips_needed([stage], chip) > chips_per_node:
                raise PlanError(
                    f"stage {stage.name} (layers {', '.join(stage.layers)}) alone needs "
                    f"{chips_needed([stage], chip)} chips, more than a node has ({chips_per_node}); "
                    "use more stages or stageLimits"
                )
            too_many = sum(s.count for s in current) + stage.count > MAX_DEVICES_PER_CLAIM
            if current and (too_many or chips_needed([*current, stage], chip) > chips_per_node):
                parts.append((f"node{len(parts)}", current))
                current = []
            current.append(stage)
        parts.append((f"node{len(parts)}", current))
    out = []
    for name, members in parts:
        if chips_needed(members, chip) > chips_per_node:
            raise PlanError(
                f"group {name} needs at least {chips_needed(members, chip)} chips, more than a node has "
                f"({chips_per_node}); give it fewer stages"
            )
        out.append(StageGroup(f"{model.metadata.name}-{name}", tuple(members),
                              _levels(members, chip, Scope.NODE, chips_per_node)))  # fmt: skip
    return tuple(out)
