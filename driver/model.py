"""Inventory -> the devices a node publishes: the white-box hierarchy, its counters and its order.

**Levels.** ``publish.levels`` picks which of ``chip``, ``coreGroup``, ``neuronCore``, ``spikeRouter``
and ``eventQueue`` become devices. A core group is a rectangle of cores: ``publish.coreGroup`` if set,
else the chip's natural group (Loihi tile, SpiNNaker2 QPE, Akida node). Groups tile the core mesh
from (0, 0); edge groups may be narrower when the shape does not divide the mesh, and a group with
no usable core is not published.

**Partitions never overlap (counter scheme).** As soon as two of the partition levels (chip,
coreGroup, neuronCore) are published, the same silicon is offered more than once, and only shared
counters stop the allocator from handing out overlapping parts. Aggregate counters (``cores: 128``)
cannot do that: a group of 16 and one core of that very group fit into 128 together. So the usable
cores of each chip are split into *tiles* (the core-group rectangles) and every tile gets one counter
holding its usable core count:

* a neuronCore consumes 1 of its tile's counter,
* a coreGroup consumes its whole tile,
* a chip consumes every tile of the chip.

Tile counters are exact: a group and any core inside it together need more than the tile holds, and
a chip overlaps everything. Each counter set also carries two aggregate counters, ``neurons`` and
``synapse-memory``, for the tiles it holds, so capacity figures stay visible on the counter slices.
A counter set holds at most 32 counters, i.e. 30 tiles plus the two aggregates; a chip with more
tiles (SpiNNaker2: 38 QPEs) gets two counter sets that split its tiles in halves, and the chip device
consumes from both (the API allows 2 ``consumesCounters`` entries per device), while a core or group
consumes from the one set holding its tile. A chip with more than 60 tiles cannot be expressed and
is refused (choose a larger ``publish.coreGroup``). Publishing a single partition level needs no
counters at all, and none are produced.

Routers and event queues are never partitions: they are shared through consumable capacity
(``allowMultipleAllocations``), see ``slices.py``.

**Order = allocation priority.** The allocator is first-fit over devices in slice order, so the
order is a packing policy: neuronCores first, then coreGroups, then whole chips, then routers and
queues. A request that several types satisfy takes the smallest part and leaves whole chips free.
Within a chip, cores are listed tile by tile from tile 0 up, and groups from the last tile down, so
core claims and group claims fill a chip from opposite ends and only collide when it is nearly full;
chips are taken in discovery order, so one chip fills before the next is touched. The order does not
depend on health (an unhealthy chip's devices are tainted in place), so a health change rewrites
only the slices that hold that chip's devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from snn_dra.api.attributes import DeviceType
from snn_dra.api.nodeconfig import PublishConfig
from snn_dra.driver.backends.base import Chip, Core, EventQueue, Inventory

MAX_COUNTERS_PER_SET: Final = 32
"""``ResourceSliceMaxCountersPerCounterSet``."""
MAX_CONSUMPTIONS_PER_DEVICE: Final = 2
"""``ResourceSliceMaxDeviceCounterConsumptionsPerDevice``."""
MAX_NAME_LENGTH: Final = 63
"""Device and counter-set names are DNS labels."""
AGGREGATE_COUNTERS: Final = ("neurons", "synapse-memory")
TILES_PER_SET: Final = MAX_COUNTERS_PER_SET - len(AGGREGATE_COUNTERS)
MAX_TILES_PER_CHIP: Final = TILES_PER_SET * MAX_CONSUMPTIONS_PER_DEVICE

PARTITION_LEVELS: Final = (DeviceType.CHIP, DeviceType.CORE_GROUP, DeviceType.NEURON_CORE)
TYPE_ORDER: Final = (
    DeviceType.NEURON_CORE,
    DeviceType.CORE_GROUP,
    DeviceType.CHIP,
    DeviceType.SPIKE_ROUTER,
    DeviceType.EVENT_QUEUE,
)
"""Publication (= first-fit allocation) order of the device types; see the module docstring."""


class DeviceModelError(ValueError):
    """The inventory or node config cannot be published; the message names the item, the limit and the fix."""


@dataclass(frozen=True, slots=True)
class Tile:
    """One core-group rectangle of a chip; the unit of the counter scheme."""

    index: int
    """Row-major index on the chip's grid of groups (matches the family's group numbering)."""
    x: int
    y: int
    width: int
    height: int
    cores: tuple[Core, ...]
    """Usable cores inside the rectangle (row-major)."""

    @property
    def counter(self) -> str:
        return f"tile-{self.index}"


@dataclass(frozen=True, slots=True)
class CounterSet:
    """One shared counter set: ``counters`` maps counter name -> value, in publication order."""

    name: str
    chip_id: str
    counters: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Consumption:
    """What one device takes from one counter set."""

    counter_set: str
    counters: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ModelDevice:
    """One published device. ``name`` is a DNS label, unique in the node's pool and stable across restarts."""

    name: str
    type: DeviceType
    chip: Chip
    cores: tuple[Core, ...]
    """Cores covered: every usable core for a chip, the group's usable cores, one core; () for router/queue."""
    shared: bool
    """True for spikeRouter/eventQueue: many claims share it through consumable capacity."""
    origin: tuple[int, int] = (0, 0)
    """Core-mesh coordinate of the covered rectangle's corner (the whole mesh for chip/router/queue)."""
    extent: tuple[int, int] = (0, 0)
    """Width and height of the covered rectangle, in cores."""
    queue: EventQueue | None = None
    consumes: tuple[Consumption, ...] = ()

    @property
    def tainted(self) -> bool:
        return not self.chip.healthy


@dataclass(slots=True)
class DeviceModel:
    """Everything a node publishes: devices in publication order and the counter sets they consume."""

    devices: tuple[ModelDevice, ...]
    counter_sets: tuple[CounterSet, ...] = ()
    tiles: dict[str, tuple[Tile, ...]] = field(default_factory=dict)
    """Chip id -> its tiles (only chips whose partitions are published)."""
    _by_name: dict[str, ModelDevice] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name = {d.name: d for d in self.devices}

    def by_name(self, name: str) -> ModelDevice | None:
        return self._by_name.get(name)


def group_shape(chip: Chip, publish: PublishConfig) -> tuple[int, int]:
    """The coreGroup rectangle for ``chip``: the configured shape, else the family's natural group."""
    if publish.core_group is not None:
        return publish.core_group.width, publish.core_group.height
    return chip.natural_group


def chip_tiles(chip: Chip, shape: tuple[int, int]) -> tuple[Tile, ...]:
    """Split the chip's core mesh into ``shape`` rectangles from (0, 0); tiles without usable cores are dropped."""
    gw, gh = shape
    mesh_w, mesh_h = chip.core_mesh
    if gw > mesh_w or gh > mesh_h:
        raise DeviceModelError(
            f"chip {chip.id}: publish.coreGroup {gw}x{gh} does not fit its {mesh_w}x{mesh_h} core mesh; "
            f"use a shape of at most {mesh_w}x{mesh_h}"
        )
    tiles_x = -(-mesh_w // gw)
    tiles_y = -(-mesh_h // gh)
    members: dict[int, list[Core]] = {}
    for core in chip.cores:
        if not (0 <= core.x < mesh_w and 0 <= core.y < mesh_h):
            raise DeviceModelError(
                f"chip {chip.id}: core {core.index} at ({core.x}, {core.y}) lies outside "
                f"the {mesh_w}x{mesh_h} core mesh"
            )
        members.setdefault((core.y // gh) * tiles_x + core.x // gw, []).append(core)
    tiles = []
    for index in range(tiles_x * tiles_y):
        cores = members.get(index)
        if not cores:
            continue
        tx, ty = index % tiles_x, index // tiles_x
        x, y = tx * gw, ty * gh
        cores.sort(key=lambda c: (c.y, c.x))
        tiles.append(Tile(index, x, y, min(gw, mesh_w - x), min(gh, mesh_h - y), tuple(cores)))
    return tuple(tiles)


def _check_name(name: str, what: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise DeviceModelError(
            f"{what} name {name!r} has {len(name)} characters; DNS labels allow at most {MAX_NAME_LENGTH}: "
            "use shorter chip IDs (they prefix every device name)"
        )
    return name


def _counter_sets(chip: Chip, tiles: tuple[Tile, ...]) -> list[tuple[CounterSet, tuple[Tile, ...]]]:
    if len(tiles) > MAX_TILES_PER_CHIP:
        raise DeviceModelError(
            f"chip {chip.id} has {len(tiles)} core groups with usable cores, but a chip device can consume at most "
            f"{MAX_CONSUMPTIONS_PER_DEVICE} counter sets of {TILES_PER_SET} tile counters "
            f"({MAX_TILES_PER_CHIP} groups); "
            "publish fewer levels or set a larger publish.coreGroup"
        )
    n_sets = 1 if len(tiles) <= TILES_PER_SET else MAX_CONSUMPTIONS_PER_DEVICE
    per_set = -(-len(tiles) // n_sets)
    out = []
    for k in range(n_sets):
        part = tiles[k * per_set : (k + 1) * per_set]
        counters = [(t.counter, len(t.cores)) for t in part]
        counters.append(("neurons", sum(c.neurons for t in part for c in t.cores)))
        counters.append(("synapse-memory", sum(c.synapse_memory_bytes for t in part for c in t.cores)))
        name = _check_name(f"{chip.id}-counters-{k}", "counter set")
        out.append((CounterSet(name, chip.id, tuple(counters)), part))
    return out


def _tile_consumption(counter_set: str, tile: Tile, cores: tuple[Core, ...]) -> Consumption:
    return Consumption(
        counter_set,
        (
            (tile.counter, len(cores)),
            ("neurons", sum(c.neurons for c in cores)),
            ("synapse-memory", sum(c.synapse_memory_bytes for c in cores)),
        ),
    )


def build_model(inventory: Inventory, publish: PublishConfig) -> DeviceModel:
    """Devices (publication order) and counter sets for ``inventory`` under ``publish``.

    Raises :class:`DeviceModelError` for anything that cannot be published within the API limits.
    """
    levels = set(publish.levels)
    partitioned = len(levels.intersection(PARTITION_LEVELS)) >= 2
    by_type: dict[DeviceType, list[ModelDevice]] = {t: [] for t in TYPE_ORDER}
    counter_sets: list[CounterSet] = []
    all_tiles: dict[str, tuple[Tile, ...]] = {}
    seen_chips: set[str] = set()
    pci_by_family: dict[str, set[tuple[bool, bool]]] = {}

    for chip in inventory.chips:
        if chip.id in seen_chips:
            raise DeviceModelError(f"chip ID {chip.id!r} appears twice in the inventory of node {inventory.node_name}")
        seen_chips.add(chip.id)
        pci_by_family.setdefault(chip.family, set()).add((chip.pci_bus_id is not None, chip.pcie_root is not None))
        base = _check_name(chip.id, "chip device")
        _check_name(f"{base}-core-{max((c.index for c in chip.cores), default=0)}", "neuronCore device")
        mesh = (0, 0), chip.core_mesh
        needs_tiles = partitioned or DeviceType.CORE_GROUP in levels
        tiles = chip_tiles(chip, group_shape(chip, publish)) if needs_tiles else ()
        set_of_tile: dict[int, str] = {}
        chip_consumes: tuple[Consumption, ...] = ()
        if partitioned and tiles:
            all_tiles[chip.id] = tiles
            sets = _counter_sets(chip, tiles)
            for cs, part in sets:
                counter_sets.append(cs)
                set_of_tile.update((t.index, cs.name) for t in part)
            chip_consumes = tuple(Consumption(cs.name, cs.counters) for cs, _ in sets)

        if DeviceType.NEURON_CORE in levels:
            ordered = [(t, c) for t in tiles for c in t.cores] if tiles else [(None, c) for c in chip.cores]
            if not tiles:
                ordered.sort(key=lambda tc: (tc[1].y, tc[1].x))
            for tile, core in ordered:
                consumes: tuple[Consumption, ...] = ()
                if tile is not None and tile.index in set_of_tile:
                    consumes = (_tile_consumption(set_of_tile[tile.index], tile, (core,)),)
                by_type[DeviceType.NEURON_CORE].append(
                    ModelDevice(
                        f"{base}-core-{core.index}",
                        DeviceType.NEURON_CORE,
                        chip,
                        (core,),
                        False,
                        (core.x, core.y),
                        (1, 1),
                        None,
                        consumes,
                    )
                )
        if DeviceType.CORE_GROUP in levels:
            for tile in reversed(tiles):
                consumes = ()
                if tile.index in set_of_tile:
                    consumes = (_tile_consumption(set_of_tile[tile.index], tile, tile.cores),)
                by_type[DeviceType.CORE_GROUP].append(
                    ModelDevice(
                        _check_name(f"{base}-group-{tile.index}", "coreGroup device"),
                        DeviceType.CORE_GROUP,
                        chip,
                        tile.cores,
                        False,
                        (tile.x, tile.y),
                        (tile.width, tile.height),
                        None,
                        consumes,
                    )
                )
        if DeviceType.CHIP in levels:
            by_type[DeviceType.CHIP].append(
                ModelDevice(base, DeviceType.CHIP, chip, chip.cores, False, *mesh, None, chip_consumes)
            )
        if DeviceType.SPIKE_ROUTER in levels:
            by_type[DeviceType.SPIKE_ROUTER].append(
                ModelDevice(
                    _check_name(f"{base}-router", "spikeRouter device"), DeviceType.SPIKE_ROUTER, chip, (), True, *mesh
                )
            )
        if DeviceType.EVENT_QUEUE in levels:
            for queue in chip.event_queues:
                by_type[DeviceType.EVENT_QUEUE].append(
                    ModelDevice(
                        _check_name(f"{base}-queue-{queue.index}", "eventQueue device"),
                        DeviceType.EVENT_QUEUE,
                        chip,
                        (),
                        True,
                        *mesh,
                        queue,
                    )
                )

    for family, has_pci in pci_by_family.items():
        if len(has_pci) > 1:
            raise DeviceModelError(
                f"some {family} chips report a PCI bus ID or PCIe root and others do not; the pciBusID and pcieRoot "
                "attributes must be on every device of a family or on none (fix discovery so every chip reports them)"
            )
    devices = tuple(d for t in TYPE_ORDER for d in by_type[t])
    names: set[str] = set()
    for d in devices:
        if d.name in names:
            raise DeviceModelError(
                f"device name {d.name!r} is produced twice on node {inventory.node_name}; chip IDs must not "
                "collide with the '-core-N'/'-group-N'/'-router'/'-queue-N' names of other chips"
            )
        names.add(d.name)
    return DeviceModel(devices, tuple(counter_sets), all_tiles)
