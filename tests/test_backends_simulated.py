"""The simulated backend: fused cores, deterministic ids, mesh coordinates, access and health."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import pytest

from snn_dra.api.attributes import Family
from snn_dra.api.nodeconfig import NodeConfig
from snn_dra.driver.backends import BackendError, SimulatedBackend, load_backend, load_node_config, parse_node_config
from snn_dra.driver.backends.base import HealthEvent, Inventory
from snn_dra.driver.backends.families import SPINNAKER2

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def configs(repo_root: Path) -> list[Path]:
    return sorted((repo_root / "deploy" / "node-configs").glob("*.yaml"))


def mixed(repo_root: Path) -> NodeConfig:
    return load_node_config(repo_root / "deploy" / "node-configs" / "mixed.yaml")


def test_example_configs_are_all_there(repo_root: Path) -> None:
    names = {p.name for p in configs(repo_root)}
    assert {"kapoho-point.yaml", "spinnaker2-48.yaml", "akida-pcie.yaml", "mixed.yaml"} <= names


def test_every_example_config_loads_and_discovers(repo_root: Path) -> None:
    for path in configs(repo_root):
        config = load_node_config(path)
        inventory = load_backend(config, "node-a").discover()
        assert inventory.chips, path
        assert sum(b.chips for b in config.boards) == len(inventory.chips), path


def test_kapoho_point_is_eight_loihi2_chips_in_a_2x2x2_mesh(repo_root: Path) -> None:
    inv = SimulatedBackend(load_node_config(repo_root / "deploy/node-configs/kapoho-point.yaml"), "n").discover()
    chips = inv.chips
    assert len(chips) == 8 and {c.family for c in chips} == {Family.LOIHI2}
    assert sorted(c.mesh for c in chips) == sorted((x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1))
    # Manhattan distance to the host-attached chip (0,0,0)
    assert {c.mesh: c.hops_to_host for c in chips}[(1, 1, 1)] == 3
    assert {c.mesh: c.hops_to_host for c in chips}[(0, 0, 0)] == 0
    for chip in chips:
        assert chip.access.device_nodes == ()  # Ethernet-attached: no /dev node
        env = dict(chip.access.env)
        assert env["LOIHI_CHIP_ID"] == "{},{},{}".format(*chip.mesh)
        assert env["LOIHI_ETHERNET_INTERFACE"] == "enp2s0"
        assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", env["LOIHI_MAC_ADDRESS"])
        assert int(env["LOIHI_MAC_ADDRESS"][:2], 16) & 0x03 == 0x02  # locally administered unicast
        assert chip.embedded_cpus == 6


def test_spinnaker2_board_mesh_hops_and_endpoint(repo_root: Path) -> None:
    inv = SimulatedBackend(load_node_config(repo_root / "deploy/node-configs/spinnaker2-48.yaml"), "n").discover()
    chips = inv.chips
    assert len(chips) == 48
    assert {c.mesh for c in chips} == {(x, y, 0) for x in range(8) for y in range(6)}
    far = next(c for c in chips if c.mesh == (7, 5, 0))
    assert far.hops_to_host == 12
    assert far.access.endpoints == ("ipv4://192.168.240.1",)
    assert dict(far.access.env)["SPINNAKER2_CHIP_XY"] == "7,5"


def test_fused_cores_are_absent_and_the_rest_keep_their_positions() -> None:
    config = parse_node_config(
        {"boards": [{"family": "spinnaker2", "model": "b", "chips": 2, "mesh": [2, 1, 1], "fusedCores": {1: [0, 5]}}]}
    )
    chips = SimulatedBackend(config, "n").discover().chips
    assert len(chips[0].cores) == 152
    assert [c.index for c in chips[1].cores][:5] == [1, 2, 3, 4, 6]
    assert len(chips[1].cores) == 150 and chips[1].nominal_cores == 152
    assert all(c.index not in (0, 5) for c in chips[1].cores)
    by_index = {c.index: c for c in chips[1].cores}
    assert (by_index[6].x, by_index[6].y) == SPINNAKER2.core_position(6)


def test_same_node_name_gives_an_identical_inventory(repo_root: Path) -> None:
    a = SimulatedBackend(mixed(repo_root), "node-a").discover()
    b = SimulatedBackend(mixed(repo_root), "node-a").discover()
    assert a == b


def test_different_node_names_give_different_ids(repo_root: Path) -> None:
    a = SimulatedBackend(mixed(repo_root), "node-a").discover()
    b = SimulatedBackend(mixed(repo_root), "node-b").discover()
    ids_a = {c.id for c in a.chips} | {c.serial for c in a.chips} | {bd.id for bd in a.boards}
    ids_b = {c.id for c in b.chips} | {c.serial for c in b.chips} | {bd.id for bd in b.boards}
    assert not ids_a & ids_b
    assert a.system_id != b.system_id


def test_ids_are_unique_dns_labels(repo_root: Path) -> None:
    inv = SimulatedBackend(mixed(repo_root), "Node_With.Odd-Name").discover()
    ids = [c.id for c in inv.chips] + [b.id for b in inv.boards] + [inv.system_id]
    assert len(set(ids)) == len(ids)
    assert all(DNS_LABEL.match(i) for i in ids), ids


def test_akida_gets_char_devices_and_pci_ids(repo_root: Path) -> None:
    inv = SimulatedBackend(load_node_config(repo_root / "deploy/node-configs/akida-pcie.yaml"), "n").discover()
    nodes = [c.access.device_nodes[0].path for c in inv.chips]
    assert nodes == ["/dev/akida0", "/dev/akida1"]
    assert all(c.hops_to_host == 0 for c in inv.chips)
    assert [c.pci_bus_id for c in inv.chips] == ["0000:01:00.0", "0000:02:00.0"]
    assert [len(c.cores) for c in inv.chips] == [78, 80]


def test_unhealthy_chips_from_config(repo_root: Path) -> None:
    inv = SimulatedBackend(mixed(repo_root), "n").discover()
    bad = [c for c in inv.chips if not c.healthy]
    assert [c.family for c in bad] == [Family.AKIDA]
    assert "unhealthyChips" in bad[0].health_reason


async def _next(stream: object) -> HealthEvent:
    return await asyncio.wait_for(stream.__anext__(), timeout=5)  # type: ignore[attr-defined]


def test_health_injection_reaches_watchers_and_discovery(repo_root: Path) -> None:
    backend = SimulatedBackend(mixed(repo_root), "n")
    chip = backend.chip_ids()[0]

    async def scenario() -> tuple[list[HealthEvent], Inventory]:
        stream = backend.watch_health()
        assert backend.set_chip_health(chip, False, "ECC errors") is True
        assert backend.set_chip_health(chip, False, "again") is False  # no change, no event
        first = await _next(stream)
        # a change made from another thread (as the demo does) wakes the waiting reader
        waiter = asyncio.ensure_future(_next(stream))
        await asyncio.sleep(0)
        thread = threading.Thread(target=backend.set_chip_health, args=(chip, True))
        thread.start()
        second = await waiter
        thread.join()
        mid = backend.discover()
        backend.close()
        with pytest.raises(StopAsyncIteration):
            await _next(stream)
        return [first, second], mid

    events, inventory = asyncio.run(scenario())
    assert events == [
        HealthEvent(chip_id=chip, healthy=False, reason="ECC errors"),
        HealthEvent(chip_id=chip, healthy=True, reason="recovered"),
    ]
    assert next(c for c in inventory.chips if c.id == chip).healthy


def test_discover_reflects_injected_health(repo_root: Path) -> None:
    backend = SimulatedBackend(mixed(repo_root), "n")
    chip = backend.chip_ids()[3]
    backend.set_chip_health(chip, False, "link down")
    found = next(c for c in backend.discover().chips if c.id == chip)
    assert (found.healthy, found.health_reason) == (False, "link down")


def test_unknown_chip_health_is_refused(repo_root: Path) -> None:
    backend = SimulatedBackend(mixed(repo_root), "n")
    with pytest.raises(BackendError, match="no chip 'nope'"):
        backend.set_chip_health("nope", False)


def test_empty_node_name_is_refused(repo_root: Path) -> None:
    with pytest.raises(BackendError, match="node name is empty"):
        SimulatedBackend(mixed(repo_root), "")
