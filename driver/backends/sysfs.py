"""Real discovery of Akida-class PCIe accelerators through sysfs.

The kernel is the only trustworthy source of which character device belongs to which card, so
device nodes are taken from ``class/akida/akida<N>`` (its ``dev`` numbers and its ``device`` link to
the PCI function) and nothing else. Roots are configurable so tests build a fake tree in a temp dir.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

from snn_dra.api.nodeconfig import NodeConfig
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
    AKIDA_PCI_DEVICES,
    AKIDA_PCI_VENDOR,
    ChipSpec,
    event_queues_of,
    router_of,
    usable_cores,
)

log = logging.getLogger(__name__)

_BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_DEV = re.compile(r"^(\d+):(\d+)$")
_AKIDA_NAME = re.compile(r"^akida(\d+)$")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise BackendError(f"{path} is missing: is sysfs mounted at the configured sysfsRoot?") from None
    except OSError as e:
        raise BackendError(f"cannot read {path}: {e.strerror or e}") from None


def _read_hex(path: Path) -> int:
    text = _read(path)
    try:
        if not text.lower().startswith("0x"):
            raise ValueError
        return int(text, 16)
    except ValueError:
        raise BackendError(f"{path} holds {text!r}, expected a hex id such as 0x1e7c") from None


def _read_int(path: Path) -> int:
    text = _read(path)
    try:
        return int(text)
    except ValueError:
        raise BackendError(f"{path} holds {text!r}, expected an integer") from None


def _pcie_root(device_dir: Path) -> str | None:
    """The ``pciDDDD:BB`` component of the device's resolved path: its root complex."""
    for part in device_dir.resolve().parts:
        if part.startswith("pci") and ":" in part:
            return part
    return None


class SysfsBackend:
    """Akida PCIe cards found under ``sysfsRoot``, with their char devices under ``devRoot``."""

    name = "sysfs"

    def __init__(self, config: NodeConfig, node_name: str, poll_interval: float = 5.0) -> None:
        if not node_name:
            raise BackendError("node name is empty: pass --node-name or set NODE_NAME")
        self.config = config
        self.node_name = node_name
        self.sysfs_root = Path(config.sysfs_root)
        self.dev_root = Path(config.dev_root)
        self.poll_interval = poll_interval

    def discover(self) -> Inventory:
        """One board per Akida PCI function, in PCI address order (stable across reboots)."""
        system_id = self.config.system_id or stable_id("sys", self.node_name)
        char_devices = self._char_devices()
        boards: list[Board] = []
        for bdf, spec, numa in self._pci_functions():
            found = char_devices.get(bdf)
            if found is None:
                log.warning(
                    "PCI device %s (%04x:%04x) has no %s entry; skipped (is the akida_pcie module loaded?)",
                    bdf,
                    AKIDA_PCI_VENDOR,
                    spec.pci_device_id or 0,
                    self.sysfs_root / "class" / "akida",
                )
                continue
            boards.append(self._board(bdf, spec, numa, found, system_id))
        return Inventory(node_name=self.node_name, system_id=system_id, boards=tuple(boards))

    async def watch_health(self) -> AsyncIterator[HealthEvent]:
        """Poll discovery: a card whose device node disappears (or comes back) changes health."""
        previous = {c.id: c.healthy for c in self.discover().chips}
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                current = {c.id: (c.healthy, c.health_reason) for c in self.discover().chips}
            except BackendError as e:
                log.warning("health poll failed: %s", e)
                continue
            for chip_id in previous:
                if chip_id not in current:
                    yield HealthEvent(chip_id=chip_id, healthy=False, reason="PCI device disappeared")
            for chip_id, (healthy, reason) in current.items():
                if previous.get(chip_id, True) != healthy:  # a new chip reports only if it starts unhealthy
                    yield HealthEvent(chip_id=chip_id, healthy=healthy, reason=reason or "recovered")
            previous = {k: v for k, (v, _) in current.items()}

    # --- scanning -------------------------------------------------------------------------------

    def _pci_functions(self) -> list[tuple[str, ChipSpec, int | None]]:
        root = self.sysfs_root / "bus" / "pci" / "devices"
        if not root.is_dir():
            raise BackendError(f"{root} is not a directory: is sysfs mounted at the configured sysfsRoot?")
        out: list[tuple[str, ChipSpec, int | None]] = []
        for entry in sorted(root.iterdir()):
            if _read_hex(entry / "vendor") != AKIDA_PCI_VENDOR:
                continue
            device_id = _read_hex(entry / "device")
            spec = AKIDA_PCI_DEVICES.get(device_id)
            if spec is None:
                log.warning(
                    "PCI device %s (%04x:%04x) is not a known Akida chip; skipped",
                    entry.name,
                    AKIDA_PCI_VENDOR,
                    device_id,
                )
                continue
            if not _BDF.match(entry.name):
                raise BackendError(f"{entry} is not named as a PCI address (dddd:bb:dd.f)")
            numa = _read_int(entry / "numa_node")
            out.append((entry.name, spec, numa if numa >= 0 else None))
        return out

    def _char_devices(self) -> dict[str, tuple[int, int, int]]:
        """PCI address -> (akida index, major, minor) from ``class/akida``."""
        root = self.sysfs_root / "class" / "akida"
        if not root.exists():
            return {}
        out: dict[str, tuple[int, int, int]] = {}
        for entry in sorted(root.iterdir()):
            m = _AKIDA_NAME.match(entry.name)
            if m is None:
                continue
            dev_text = _read(entry / "dev")
            dm = _DEV.match(dev_text)
            if dm is None:
                raise BackendError(f"{entry / 'dev'} holds {dev_text!r}, expected major:minor such as 240:0")
            link = entry / "device"
            if not link.exists():
                raise BackendError(f"{link} is missing or dangling: cannot tell which PCI device {entry.name} is")
            bdf = link.resolve().name
            out[bdf] = (int(m.group(1)), int(dm.group(1)), int(dm.group(2)))
        return out

    def _board(self, bdf: str, spec: ChipSpec, numa: int | None, found: tuple[int, int, int], system_id: str) -> Board:
        n, major, minor = found
        node_name = f"akida{n}"
        host_path = self.dev_root / node_name
        healthy = host_path.exists()
        board_id = stable_id("board", self.node_name, bdf, spec.model)
        chip = Chip(
            index=0,
            id=stable_id("akida", self.node_name, bdf, spec.model),
            serial=f"AKD-{stable_digest('serial', self.node_name, bdf, spec.model)[:12].upper()}",
            family=spec.family,
            model=spec.model,
            board_id=board_id,
            system_id=system_id,
            mesh=(0, 0, 0),
            core_mesh=spec.core_mesh,
            nominal_cores=spec.nominal_cores,
            cores=usable_cores(spec),
            natural_group=spec.natural_group,
            router=router_of(spec),
            event_queues=event_queues_of(spec),
            hops_to_host=0,
            firmware_version="1.0.0",
            access=Access(
                device_nodes=(
                    DeviceNode(path=f"/dev/{node_name}", host_path=str(host_path), major=major, minor=minor),
                ),
                env=(("AKIDA_DEVICE", f"/dev/{node_name}"),),
            ),
            pci_bus_id=bdf,
            pcie_root=_pcie_root(self.sysfs_root / "bus" / "pci" / "devices" / bdf),
            numa_node=numa,
            healthy=healthy,
            health_reason="" if healthy else f"device node {host_path} is missing (udev rule not applied?)",
            embedded_cpus=spec.embedded_cpus,
        )
        return Board(id=board_id, model=f"{spec.model}-pcie", family=spec.family, chips=(chip,))
