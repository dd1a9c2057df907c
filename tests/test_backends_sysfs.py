"""sysfs discovery of Akida PCIe cards on a fake sysfs tree built per test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from snn_dra.api.nodeconfig import NodeConfig
from snn_dra.driver.backends import BackendError, SysfsBackend, load_backend, parse_node_config


class FakeSysfs:
    """A tmp_path tree shaped like /sys and /dev for PCI devices and the akida char-device class."""

    def __init__(self, root: Path) -> None:
        self.sys = root / "sys"
        self.dev = root / "dev"
        (self.sys / "bus" / "pci" / "devices").mkdir(parents=True)
        self.dev.mkdir()

    def pci(self, bdf: str, vendor: str, device: str, numa: str = "0") -> Path:
        real = self.sys / "devices" / f"pci{bdf[:7]}" / bdf
        real.mkdir(parents=True)
        (real / "vendor").write_text(vendor + "\n")
        (real / "device").write_text(device + "\n")
        (real / "numa_node").write_text(numa + "\n")
        (self.sys / "bus" / "pci" / "devices" / bdf).symlink_to(real)
        return real

    def akida(self, n: int, bdf: str, dev: str = "240:0", node: bool = True) -> None:
        entry = self.sys / "class" / "akida" / f"akida{n}"
        entry.mkdir(parents=True)
        (entry / "dev").write_text(dev + "\n")
        (entry / "device").symlink_to(self.sys / "bus" / "pci" / "devices" / bdf)
        if node:
            (self.dev / f"akida{n}").touch()

    def config(self) -> NodeConfig:
        return parse_node_config({"backend": "sysfs", "sysfsRoot": str(self.sys), "devRoot": str(self.dev)})


@pytest.fixture
def fake(tmp_path: Path) -> FakeSysfs:
    tree = FakeSysfs(tmp_path)
    tree.pci("0000:00:1f.0", "0x8086", "0xa0a3")  # an Intel bridge: ignored
    tree.pci("0000:01:00.0", "0x1e7c", "0xbca1", numa="1")  # AKD1000
    tree.pci("0000:02:00.0", "0x10de", "0x2204")  # a GPU: ignored
    tree.pci("0000:03:00.0", "0x1e7c", "0xa500", numa="-1")  # AKD1500
    tree.akida(0, "0000:01:00.0", "240:0")
    tree.akida(1, "0000:03:00.0", "240:1")
    return tree


def test_discovers_only_akida_devices_with_their_char_nodes(fake: FakeSysfs) -> None:
    backend = load_backend(fake.config(), "node-a")
    assert isinstance(backend, SysfsBackend)
    chips = backend.discover().chips
    assert [(c.model, c.pci_bus_id) for c in chips] == [("akd1000", "0000:01:00.0"), ("akd1500", "0000:03:00.0")]
    first, second = chips
    assert len(first.cores) == 80 and len(second.cores) == 32
    node = first.access.device_nodes[0]
    assert (node.path, node.host_path, node.major, node.minor) == (
        "/dev/akida0",
        str(fake.dev / "akida0"),
        240,
        0,
    )
    assert second.access.device_nodes[0].minor == 1
    assert (first.numa_node, second.numa_node) == (1, None)
    assert first.pcie_root == "pci0000:01"
    assert all(c.healthy for c in chips)


def test_ids_are_deterministic_per_node(fake: FakeSysfs) -> None:
    a = SysfsBackend(fake.config(), "node-a").discover()
    assert a == SysfsBackend(fake.config(), "node-a").discover()
    b = SysfsBackend(fake.config(), "node-b").discover()
    assert not {c.id for c in a.chips} & {c.id for c in b.chips}


def test_device_without_char_device_is_skipped(tmp_path: Path) -> None:
    tree = FakeSysfs(tmp_path)
    tree.pci("0000:01:00.0", "0x1e7c", "0xbca1")
    assert SysfsBackend(tree.config(), "n").discover().chips == ()


def test_missing_dev_node_makes_the_chip_unhealthy(tmp_path: Path) -> None:
    tree = FakeSysfs(tmp_path)
    tree.pci("0000:01:00.0", "0x1e7c", "0xbca1")
    tree.akida(0, "0000:01:00.0", node=False)
    chip = SysfsBackend(tree.config(), "n").discover().chips[0]
    assert not chip.healthy and "akida0 is missing" in chip.health_reason


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("vendor-missing", r"0000:00:1f\.0/vendor is missing"),
        ("vendor-garbled", r"0000:01:00\.0/vendor holds 'banana', expected a hex id"),
        ("numa-garbled", r"0000:01:00\.0/numa_node holds 'x', expected an integer"),
        ("dev-garbled", r"akida0/dev holds '240', expected major:minor"),
        ("link-dangling", r"akida0/device is missing or dangling"),
    ],
)
def test_missing_or_garbled_files_name_the_path(fake: FakeSysfs, breakage: str, expected: str) -> None:
    pci = fake.sys / "bus" / "pci" / "devices"
    if breakage == "vendor-missing":
        (pci / "0000:00:1f.0" / "vendor").unlink()
    elif breakage == "vendor-garbled":
        (pci / "0000:01:00.0" / "vendor").write_text("banana\n")
    elif breakage == "numa-garbled":
        (pci / "0000:01:00.0" / "numa_node").write_text("x\n")
    elif breakage == "dev-garbled":
        (fake.sys / "class" / "akida" / "akida0" / "dev").write_text("240\n")
    else:
        link = fake.sys / "class" / "akida" / "akida0" / "device"
        link.unlink()
        link.symlink_to(fake.sys / "nowhere")
    with pytest.raises(BackendError, match=expected):
        SysfsBackend(fake.config(), "n").discover()


def test_missing_sysfs_root_is_a_clear_error(tmp_path: Path) -> None:
    config = parse_node_config({"backend": "sysfs", "sysfsRoot": str(tmp_path / "nosys")})
    with pytest.raises(BackendError, match=r"nosys/bus/pci/devices is not a directory"):
        SysfsBackend(config, "n").discover()


def test_watch_health_reports_a_vanishing_device_node(fake: FakeSysfs) -> None:
    backend = SysfsBackend(fake.config(), "n", poll_interval=0.01)
    chip = backend.discover().chips[0]

    async def scenario() -> tuple[bool, str, str]:
        stream = backend.watch_health()
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # let the watcher take its baseline before the node disappears
        (fake.dev / "akida0").unlink()
        event = await asyncio.wait_for(first, timeout=10)
        await stream.aclose()  # type: ignore[attr-defined]
        return event.healthy, event.chip_id, event.reason

    healthy, chip_id, reason = asyncio.run(scenario())
    assert (healthy, chip_id) == (False, chip.id)
    assert "akida0 is missing" in reason
