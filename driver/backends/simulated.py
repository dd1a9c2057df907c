"""The simulated backend: the hardware the node config describes, with figures faithful to the chips.

It is the default backend, so everything above it (model, slices, prepare, the demo) runs without
hardware. IDs are derived from the node name and the position of board and chip, never from
randomness or time, so a restarted driver publishes exactly the same devices. Health can be changed
at run time (``set_chip_health``) so tests and the demo can drive taints and the kubelet health stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import deque
from collections.abc import AsyncIterator

from snn_dra.api.attributes import Family
from snn_dra.api.nodeconfig import BoardConfig, NodeConfig
from snn_dra.driver.backends.base import (
    Access,
    BackendError,
    Board,
    Chip,
    DeviceNode,
    HealthEvent,
    Inventory,
    stable_digest,
    stable_id,
)
from snn_dra.driver.backends.families import (
    DEFAULT_ETHERNET_INTERFACE,
    SPINNAKER_BOARD_SUBNET,
    ChipSpec,
    default_board_mesh,
    event_queues_of,
    router_of,
    spec_for,
    usable_cores,
)

CONFIGURED_UNHEALTHY = "configured unhealthy (unhealthyChips in the node config)"

_SERIAL_PREFIX = {Family.LOIHI2: "LH2", Family.SPINNAKER2: "SP2", Family.AKIDA: "AKD"}


def mesh_coordinates(mesh: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """Chip coordinates in chip-index order: x fastest, then y, then z."""
    w, h, d = mesh
    return [(x, y, z) for z in range(d) for y in range(h) for x in range(w)]


def locally_administered_mac(*parts: object) -> str:
    """A stable unicast MAC with the locally-administered bit set, so it never clashes with a vendor's."""
    raw = bytearray(bytes.fromhex(stable_digest("mac", *parts)[:12]))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


class _HealthStream:
    """One subscriber's health events; registered when created so no change after it is lost.

    ``set_chip_health`` may run on another thread (the demo drives it from a CLI thread), so the
    buffer is guarded by a lock and the waiting coroutine is woken through its own event loop.
    """

    def __init__(self, owner: SimulatedBackend) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._events: deque[HealthEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def push(self, event: HealthEvent | None) -> None:
        """Queue an event (None = end of stream) and wake the reader."""
        with self._lock:
            if event is None:
                self._closed = True
            else:
                self._events.append(event)
            waiter, loop = self._waiter, self._loop
            self._waiter = None
        if waiter is not None and loop is not None:
            loop.call_soon_threadsafe(_wake, waiter)

    def __aiter__(self) -> _HealthStream:
        return self

    async def __anext__(self) -> HealthEvent:
        while True:
            loop = asyncio.get_running_loop()
            with self._lock:
                if self._events:
                    return self._events.popleft()
                if self._closed:
                    self._owner._unsubscribe(self)
                    raise StopAsyncIteration
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiter, self._loop = waiter, loop
            try:
                await waiter
            except asyncio.CancelledError:
                self._owner._unsubscribe(self)
                raise

    async def aclose(self) -> None:
        self._owner._unsubscribe(self)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SimulatedBackend:
    """Boards and chips exactly as the node config lists them."""

    name = "simulated"

    def __init__(self, config: NodeConfig, node_name: str) -> None:
        if not node_name:
            raise BackendError("node name is empty: pass --node-name or set NODE_NAME")
        self.config = config
        self.node_name = node_name
        self._lock = threading.Lock()
        self._streams: list[_HealthStream] = []
        self._inventory = self._build()
        self._health: dict[str, tuple[bool, str]] = {c.id: (c.healthy, c.health_reason) for c in self._inventory.chips}

    # --- Backend protocol ---------------------------------------------------------------------

    def discover(self) -> Inventory:
        """The configured hardware with the current health of every chip."""
        with self._lock:
            health = dict(self._health)
        boards = tuple(
            dataclasses.replace(
                b,
                chips=tuple(
                    dataclasses.replace(c, healthy=health[c.id][0], health_reason=health[c.id][1]) for c in b.chips
                ),
            )
            for b in self._inventory.boards
        )
        return dataclasses.replace(self._inventory, boards=boards)

    def watch_health(self) -> AsyncIterator[HealthEvent]:
        """Changes made by ``set_chip_health`` after this call, until ``close()`` or cancellation."""
        stream = _HealthStream(self)
        with self._lock:
            self._streams.append(stream)
        return stream

    # --- simulation controls --------------------------------------------------------------------

    def chip_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self._inventory.chips)

    def set_chip_health(self, chip_id: str, healthy: bool, reason: str = "") -> bool:
        """Change one chip's health as the hardware would; returns False if it already was in that state.

        Every open ``watch_health`` stream receives the event, and the next ``discover()`` reflects it.
        """
        with self._lock:
            if chip_id not in self._health:
                known = ", ".join(self._health)
                raise BackendError(f"no chip {chip_id!r} on node {self.node_name!r}; known chips: {known}")
            if self._health[chip_id][0] == healthy:
                return False
            reason = "" if healthy else (reason or "simulated fault")
            self._health[chip_id] = (healthy, reason)
            streams = list(self._streams)
        event = HealthEvent(chip_id=chip_id, healthy=healthy, reason=reason or "recovered")
        for stream in streams:
            stream.push(event)
        return True

    def close(self) -> None:
        """End every health stream (their readers see the end of iteration)."""
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.push(None)

    def _unsubscribe(self, stream: _HealthStream) -> None:
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)

    # --- inventory construction -----------------------------------------------------------------

    def _build(self) -> Inventory:
        node = self.node_name
        system_id = self.config.system_id or stable_id("sys", node)
        boards: list[Board] = []
        pcie_ordinal = 0
        for b_index, board in enumerate(self.config.boards):
            try:
                spec = spec_for(board.family, board.chip_model)
            except ValueError as e:
                raise BackendError(f"boards[{b_index}].chipModel: {e}") from e
            board_id = stable_id("board", node, b_index, board.family, board.model)
            mesh = board.mesh or default_board_mesh(board.family, board.chips)
            chips: list[Chip] = []
            for c_index, coord in enumerate(mesh_coordinates(mesh)):
                fused = board.fused_cores.get(c_index, [])
                bad = [c for c in fused if c >= spec.nominal_cores]
                if bad:
                    raise BackendError(
                        f"boards[{b_index}].fusedCores.{c_index}: core {bad[0]} is outside "
                        f"0..{spec.nominal_cores - 1} of a {spec.model} chip"
                    )
                unhealthy = c_index in board.unhealthy_chips
                chips.append(
                    Chip(
                        index=c_index,
                        id=stable_id(str(board.family), node, b_index, c_index, spec.model),
                        serial=_serial(board.family, node, b_index, c_index, spec.model),
                        family=board.family,
                        model=spec.model,
                        board_id=board_id,
                        system_id=system_id,
                        mesh=coord,
                        core_mesh=spec.core_mesh,
                        nominal_cores=spec.nominal_cores,
                        cores=usable_cores(spec, fused),
                        natural_group=spec.natural_group,
                        router=router_of(spec),
                        event_queues=event_queues_of(spec),
                        hops_to_host=sum(coord) if spec.attachment == "ethernet" else 0,
                        firmware_version=board.firmware_version,
                        access=self._access(spec, board, b_index, board_id, coord, pcie_ordinal),
                        pci_bus_id=_simulated_bdf(pcie_ordinal) if spec.attachment == "pcie" else None,
                        pcie_root="pci0000:00" if spec.attachment == "pcie" else None,
                        healthy=not unhealthy,
                        health_reason=CONFIGURED_UNHEALTHY if unhealthy else "",
                        embedded_cpus=spec.embedded_cpus,
                    )
                )
                if spec.attachment == "pcie":
                    pcie_ordinal += 1
            boards.append(Board(id=board_id, model=board.model, family=board.family, chips=tuple(chips)))
        return Inventory(node_name=node, system_id=system_id, boards=tuple(boards))

    def _access(
        self,
        spec: ChipSpec,
        board: BoardConfig,
        b_index: int,
        board_id: str,
        coord: tuple[int, int, int],
        pcie_ordinal: int,
    ) -> Access:
        x, y, z = coord
        if spec.family == Family.LOIHI2:
            iface = board.ethernet_interface or DEFAULT_ETHERNET_INTERFACE[Family.LOIHI2]
            mac = locally_administered_mac(self.node_name, board_id)
            return Access(
                env=(
                    ("LOIHI_ETHERNET_INTERFACE", iface),
                    ("LOIHI_MAC_ADDRESS", mac),
                    ("LOIHI_CHIP_ID", f"{x},{y},{z}"),
                ),
                endpoints=(f"ethernet://{iface}/{mac}",),
            )
        if spec.family == Family.SPINNAKER2:
            address = board.address or f"{SPINNAKER_BOARD_SUBNET}.{1 + 8 * b_index}"
            return Access(
                env=(("SPINNAKER2_BOARD_ADDRESS", address), ("SPINNAKER2_CHIP_XY", f"{x},{y}")),
                endpoints=(f"ipv4://{address}",),
            )
        # PCIe: the simulated character device the real akida_pcie driver would create.
        node = f"akida{pcie_ordinal}"
        dev_root = self.config.dev_root.rstrip("/") or ""
        return Access(
            device_nodes=(DeviceNode(path=f"/dev/{node}", host_path=f"{dev_root}/{node}"),),
            env=(("AKIDA_DEVICE", f"/dev/{node}"),),
        )


def _serial(family: Family, *parts: object) -> str:
    return f"{_SERIAL_PREFIX[family]}-{stable_digest('serial', family, *parts)[:12].upper()}"


def _simulated_bdf(ordinal: int) -> str:
    """One PCIe bus per card, as a root port per slot would give."""
    return f"0000:{ordinal + 1:02x}:00.0"
