"""The backend interface and the inventory it reports.

The rest of the driver sees hardware only through these types: an :class:`Inventory` of chips with
their usable cores, and :class:`Access` telling how a container reaches a chip. Nothing here knows
about Kubernetes, so a real discovery backend replaces the simulation without touching the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from snn_dra.api.attributes import Family


@dataclass(frozen=True, slots=True)
class DeviceNode:
    """A host character device a container needs (only ever taken from discovery, never from a claim)."""

    path: str
    host_path: str
    major: int | None = None
    minor: int | None = None
    type: str = "c"


@dataclass(frozen=True, slots=True)
class Access:
    """How a container reaches a chip: char devices for PCIe parts, endpoints/env for Ethernet parts."""

    device_nodes: tuple[DeviceNode, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Core:
    """One usable neuron core (Loihi NC, SpiNNaker2 PE, Akida NPU) at (x, y) of the chip's core mesh."""

    index: int
    x: int
    y: int
    neurons: int
    synapse_memory_bytes: int
    spike_throughput_keps: int


@dataclass(frozen=True, slots=True)
class Router:
    """The chip's spike router (NoC / multicast router), shared by many claims."""

    event_throughput_meps: int
    mesh_width: int
    mesh_height: int


@dataclass(frozen=True, slots=True)
class EventQueue:
    """A chip's host-facing event queue, shared by many claims."""

    index: int
    depth: int
    event_throughput_meps: int


@dataclass(frozen=True, slots=True)
class Chip:
    """One chip as discovered; ``cores`` lists only usable cores (fused-off ones are absent)."""

    index: int
    """Position on the board (0-based), stable across restarts."""
    id: str
    """Stable, DNS-label-safe identifier, deterministic from node name and position."""
    serial: str
    family: Family
    model: str
    board_id: str
    system_id: str
    mesh: tuple[int, int, int]
    """Chip coordinate (x, y, z) in the system's chip mesh."""
    core_mesh: tuple[int, int]
    """Width and height of the chip's core mesh (nominal)."""
    nominal_cores: int
    cores: tuple[Core, ...]
    natural_group: tuple[int, int]
    """Width and height, in cores, of the family's natural core group (QPE, Akida node, ...)."""
    router: Router
    event_queues: tuple[EventQueue, ...]
    hops_to_host: int
    """Router hops from this chip to the board's host interface."""
    firmware_version: str
    access: Access
    pci_bus_id: str | None = None
    healthy: bool = True
    embedded_cpus: int = 0
    pcie_root: str | None = None
    """PCIe root complex (e.g. ``pci0000:00``) for the standard ``pcieRoot`` attribute; None if unknown."""
    numa_node: int | None = None
    """NUMA node of the PCIe device as sysfs reports it; None when not PCIe or not reported."""
    health_reason: str = ""
    """Why the chip is unhealthy (empty when healthy)."""


@dataclass(frozen=True, slots=True)
class Board:
    id: str
    model: str
    family: Family
    chips: tuple[Chip, ...]


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything one node has, in discovery order (which is also publication order)."""

    node_name: str
    system_id: str
    boards: tuple[Board, ...] = ()

    @property
    def chips(self) -> tuple[Chip, ...]:
        return tuple(c for b in self.boards for c in b.chips)


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A change in one chip's health, reported by the backend."""

    chip_id: str
    healthy: bool
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)


class BackendError(Exception):
    """Discovery failed; the message names what was being read and what to do."""


class NodeConfigError(BackendError):
    """A node configuration file is invalid; ``problems`` holds (field path, what is wrong and allowed)."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {loc or '(top level)'}: {msg}" for loc, msg in problems)
        super().__init__(f"invalid node config {path}:\n{lines}")


class Backend(Protocol):
    """What the driver needs from hardware: discover, watch health, describe access."""

    name: str

    def discover(self) -> Inventory:
        """Read the node's hardware. Must be deterministic for the same node and hardware."""
        ...

    def watch_health(self) -> AsyncIterator[HealthEvent]:
        """Yield health changes until cancelled."""
        ...


def stable_digest(*parts: object) -> str:
    """Hex sha256 of the parts: IDs derived from node name and position survive restarts unchanged."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def stable_id(prefix: str, *parts: object, length: int = 10) -> str:
    """A DNS-label-safe id ``<prefix>-<hex>``; prefix must itself be lowercase alphanumerics and '-'."""
    return f"{prefix}-{stable_digest(prefix, *parts)[:length]}"
