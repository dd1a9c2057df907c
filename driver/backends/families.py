"""The chip figures of every family, in one place.

Published figures (core counts, neurons, memory) follow docs/hardware.md so that a selector written
against the simulation keeps meaning the same thing on real hardware. Throughput figures are not
public for any of these chips: they are marked in ``ChipSpec.simulated`` with the reasoning behind
each value, and the CLI shows them as simulated.

Core indices are group-major: the cores of natural group 0 come first (row-major inside the group),
then group 1, and so on, with groups laid out row-major on the chip. A SpiNNaker2 QPE therefore owns
PEs 4q..4q+3, which is how its software numbers them, and a fused core list reads naturally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from snn_dra.api.attributes import Family
from snn_dra.driver.backends.base import Core, EventQueue, Router

KIB: Final = 1024

Attachment = Literal["ethernet", "pcie"]


@dataclass(frozen=True, slots=True)
class ChipSpec:
    """Nominal figures of one chip model."""

    family: Family
    model: str
    """Chip model as published in the ``model`` attribute."""
    description: str
    core_kind: str
    """What the vendor calls a core: NC (neuron core), PE (processing element), NPU."""
    group_kind: str
    """What the natural core group is called: tile, QPE, node."""
    core_mesh: tuple[int, int]
    """Width, height of the core mesh; width * height == nominal cores (no holes)."""
    natural_group: tuple[int, int]
    """Width, height of the natural core group; must tile core_mesh exactly."""
    neurons_per_core: int
    synapse_memory_per_core: int
    """Bytes of synapse SRAM per core."""
    embedded_cpus: int
    attachment: Attachment
    spike_throughput_keps: int
    """Per core, thousands of spike events per second (simulated)."""
    router_event_throughput_meps: int
    """Per chip router, millions of events per second (simulated)."""
    event_queues: int
    """Host-facing event queues per chip (simulated; no SDK exposes them as allocatable)."""
    queue_depth: int
    queue_event_throughput_meps: int
    pci_device_id: int | None = None
    simulated: dict[str, str] = field(default_factory=dict)
    """Figure name -> why this value was chosen; every figure listed here is simulated, not published."""

    @property
    def nominal_cores(self) -> int:
        return self.core_mesh[0] * self.core_mesh[1]

    @property
    def cores_per_group(self) -> int:
        return self.natural_group[0] * self.natural_group[1]

    @property
    def groups(self) -> int:
        return self.nominal_cores // self.cores_per_group

    @property
    def group_grid(self) -> tuple[int, int]:
        """Width, height of the grid of natural groups."""
        return self.core_mesh[0] // self.natural_group[0], self.core_mesh[1] // self.natural_group[1]

    @property
    def neurons_per_chip(self) -> int:
        return self.neurons_per_core * self.nominal_cores

    @property
    def synapse_memory_per_chip(self) -> int:
        return self.synapse_memory_per_core * self.nominal_cores

    def core_position(self, index: int) -> tuple[int, int]:
        """(x, y) of core ``index`` on the core mesh, group-major (see module docstring)."""
        if not 0 <= index < self.nominal_cores:
            raise ValueError(f"core index {index} is outside 0..{self.nominal_cores - 1} of a {self.model} chip")
        gw, gh = self.natural_group
        group, inner = divmod(index, gw * gh)
        gx, gy = group % self.group_grid[0], group // self.group_grid[0]
        ix, iy = inner % gw, inner // gw
        return gx * gw + ix, gy * gh + iy

    def group_of(self, index: int) -> int:
        """Natural group (QPE, Akida node, Loihi tile) that core ``index`` belongs to."""
        return index // self.cores_per_group


LOIHI2: Final = ChipSpec(
    family=Family.LOIHI2,
    model="loihi2",
    description="Loihi-2-like: 128 neuron cores on a 2D mesh NoC, 6 embedded x86 cores",
    core_kind="NC",
    group_kind="tile",
    core_mesh=(8, 16),  # 128 NCs; the 8x16 layout is a modelling choice, the die floorplan is not public
    natural_group=(4, 4),  # 16-core tile: a square block keeps X-Y routes of a placement short
    neurons_per_core=8_192,  # 1,048,576 neurons per chip / 128 cores
    synapse_memory_per_core=128 * KIB,  # 128 KB SRAM per core (hardware.md; 192 KB unverified)
    embedded_cpus=6,  # Lakemont x86 management cores
    attachment="ethernet",
    spike_throughput_keps=1_000,
    router_event_throughput_meps=512,
    event_queues=3,
    queue_depth=4_096,
    queue_event_throughput_meps=35,
    simulated={
        "spikeThroughputKEPS": "8,192 neurons at ~120 Hz mean rate is ~1 M spikes/s per core",
        "eventThroughputMEPS": "router sized at 4x the 128 MEPS all cores can inject, for multi-hop fan-out",
        "eventQueues": "one host spike-I/O queue per pair of the 6 embedded x86 cores",
        "queueDepth": "4 Ki slots: one timestep of host I/O at typical rates without back-pressure",
        "queueEventThroughputMEPS": "10 GbE (1.25 GB/s) carrying ~32-byte spike messages is ~35-39 M/s",
    },
)

SPINNAKER2: Final = ChipSpec(
    family=Family.SPINNAKER2,
    model="spinnaker2",
    description="SpiNNaker2-like: 152 ARM PEs in 38 quad-PE groups, central multicast router",
    core_kind="PE",
    group_kind="QPE",
    core_mesh=(38, 4),  # 38 QPEs as a 19x2 grid of 2x2 PEs: the smallest exact grid without holes
    natural_group=(2, 2),  # one QPE
    neurons_per_core=1_000,  # ~1,000 neurons per PE (Sandia: 1,152 chips, ~180 M neurons)
    synapse_memory_per_core=128 * KIB,  # 152 x 128 KiB = 19 MiB, matching ~19-20 MB SRAM per chip
    embedded_cpus=0,  # every ARM core is a PE; none is reserved for management here
    attachment="ethernet",
    spike_throughput_keps=150,
    router_event_throughput_meps=300,
    event_queues=1,
    queue_depth=2_048,
    queue_event_throughput_meps=15,
    simulated={
        "spikeThroughputKEPS": "1,000 neurons per PE at a ~150 Hz peak rate",
        "eventThroughputMEPS": "one multicast packet per router cycle at ~300 MHz",
        "eventQueues": "one host queue per chip, behind the board's Ethernet link",
        "queueDepth": "2 Ki slots of SRAM-backed buffer per chip",
        "queueEventThroughputMEPS": "1 GbE share per board link (125 MB/s) over ~8-byte packets is ~15 M/s",
    },
)

AKD1000: Final = ChipSpec(
    family=Family.AKIDA,
    model="akd1000",
    description="Akida-like AKD1000: 80 NPUs in 20 nodes of 4, Cortex-M4, PCIe",
    core_kind="NPU",
    group_kind="node",
    core_mesh=(10, 8),  # 20 nodes as a 5x4 grid of 2x2 NPUs
    natural_group=(2, 2),  # one node of 4 NPUs
    neurons_per_core=15_000,  # 1.2 M neurons per chip / 80 NPUs
    synapse_memory_per_core=100_000,  # 8 MB SRAM per chip (SI) / 80 NPUs
    embedded_cpus=1,  # Cortex-M4 at 300 MHz
    attachment="pcie",
    spike_throughput_keps=200,
    router_event_throughput_meps=400,
    event_queues=2,
    queue_depth=1_024,
    queue_event_throughput_meps=25,
    pci_device_id=0xBCA1,
    simulated={
        "spikeThroughputKEPS": "event-based convolution: ~200 k events/s per NPU at 300 MHz",
        "eventThroughputMEPS": "mesh router sized for 80 NPUs x 200 KEPS with ~25x fan-out",
        "eventQueues": "one per direction of the PCIe eDMA engine (read and write channel)",
        "queueDepth": "1 Ki descriptors per DMA channel ring",
        "queueEventThroughputMEPS": "PCIe Gen2 x1 (~400 MB/s usable) over ~16-byte events is ~25 M/s",
    },
)

AKD1500: Final = ChipSpec(
    family=Family.AKIDA,
    model="akd1500",
    description="Akida-like AKD1500: 32 NPUs in 8 nodes of 4, PCIe x2 (figures partly unverified)",
    core_kind="NPU",
    group_kind="node",
    core_mesh=(8, 4),  # 8 nodes as a 4x2 grid of 2x2 NPUs
    natural_group=(2, 2),
    neurons_per_core=15_000,  # unverified: per-NPU figure assumed equal to AKD1000
    synapse_memory_per_core=100_000,  # unverified: per-NPU figure assumed equal to AKD1000
    embedded_cpus=0,  # no ARM core (unverified)
    attachment="pcie",
    spike_throughput_keps=200,
    router_event_throughput_meps=160,
    event_queues=2,
    queue_depth=1_024,
    queue_event_throughput_meps=50,
    pci_device_id=0xA500,
    simulated={
        "spikeThroughputKEPS": "same NPU design as AKD1000 assumed",
        "eventThroughputMEPS": "AKD1000 router scaled to 32 of 80 NPUs",
        "eventQueues": "one per direction of the PCIe DMA engine",
        "queueDepth": "1 Ki descriptors per DMA channel ring",
        "queueEventThroughputMEPS": "PCIe x2 doubles the AKD1000 x1 link",
    },
)

CHIP_SPECS: Final[dict[str, ChipSpec]] = {s.model: s for s in (LOIHI2, SPINNAKER2, AKD1000, AKD1500)}
"""Chip model -> figures."""

DEFAULT_CHIP_MODEL: Final[dict[Family, str]] = {
    Family.LOIHI2: LOIHI2.model,
    Family.SPINNAKER2: SPINNAKER2.model,
    Family.AKIDA: AKD1000.model,
}

AKIDA_PCI_VENDOR: Final = 0x1E7C
"""BrainChip's PCI vendor id."""
AKIDA_PCI_DEVICES: Final[dict[int, ChipSpec]] = {0xBCA1: AKD1000, 0xA500: AKD1500}
"""PCI device id -> chip (0xa500 for AKD1500 comes from third-party driver code, unverified)."""

KAPOHO_POINT_MESH: Final = (2, 2, 2)
"""Eight Loihi 2 chips, stacked as two layers of 2x2."""
SPINNAKER2_BOARD_CHIPS: Final = 48
SPINNAKER2_BOARD_MESH: Final = (8, 6, 1)
"""48 chips per SpiNNaker2 server board."""

DEFAULT_ETHERNET_INTERFACE: Final[dict[Family, str]] = {
    Family.LOIHI2: "enp2s0",  # Lava's ConnectionConfig default
    Family.SPINNAKER2: "eth1",
}
SPINNAKER_BOARD_SUBNET: Final = "192.168.240"
"""SpiNNaker boards answer on 192.168.240.x by default; board i gets .(1 + 8*i) here."""


def spec_for(family: Family, model: str | None = None) -> ChipSpec:
    """The figures of ``model`` (or the family default), refusing a model of another family."""
    name = model or DEFAULT_CHIP_MODEL[family]
    spec = CHIP_SPECS.get(name)
    if spec is None or spec.family != family:
        allowed = sorted(s.model for s in CHIP_SPECS.values() if s.family == family)
        raise ValueError(f"chip model {name!r} is not a {family} chip; allowed: {', '.join(allowed)}")
    return spec


def default_board_mesh(family: Family, chips: int) -> tuple[int, int, int]:
    """Chip arrangement when the config gives none: the known boards, else the squarest 2D grid."""
    if family == Family.AKIDA:
        return chips, 1, 1  # PCIe cards are not meshed; the coordinate only orders them
    if family == Family.LOIHI2 and chips == 8:
        return KAPOHO_POINT_MESH
    if family == Family.SPINNAKER2 and chips == SPINNAKER2_BOARD_CHIPS:
        return SPINNAKER2_BOARD_MESH
    height = max(h for h in range(1, int(chips**0.5) + 1) if chips % h == 0)
    return chips // height, height, 1


def usable_cores(spec: ChipSpec, fused: list[int] | tuple[int, ...] = ()) -> tuple[Core, ...]:
    """The chip's cores minus the fused-off ones, in index order."""
    gone = set(fused)
    out: list[Core] = []
    for index in range(spec.nominal_cores):
        if index in gone:
            continue
        x, y = spec.core_position(index)
        out.append(
            Core(
                index=index,
                x=x,
                y=y,
                neurons=spec.neurons_per_core,
                synapse_memory_bytes=spec.synapse_memory_per_core,
                spike_throughput_keps=spec.spike_throughput_keps,
            )
        )
    return tuple(out)


def router_of(spec: ChipSpec) -> Router:
    return Router(
        event_throughput_meps=spec.router_event_throughput_meps,
        mesh_width=spec.core_mesh[0],
        mesh_height=spec.core_mesh[1],
    )


def event_queues_of(spec: ChipSpec) -> tuple[EventQueue, ...]:
    return tuple(
        EventQueue(index=i, depth=spec.queue_depth, event_throughput_meps=spec.queue_event_throughput_meps)
        for i in range(spec.event_queues)
    )
