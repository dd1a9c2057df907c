"""Hand-built inventories for the model/slices tests, independent of the simulated backend.

Figures follow docs/hardware.md (Loihi 2: 128 NCs of 8,192 neurons and 128 KiB; SpiNNaker2: 152 PEs in
38 QPEs; AKD1000: 80 NPUs in 20 nodes, PCIe), with the core numbering the families use: group-major.
"""

from __future__ import annotations

from dataclasses import replace

from snn_dra.api.attributes import Family
from snn_dra.driver.backends.base import Access, Board, Chip, Core, EventQueue, Inventory, Router

FAMILIES: dict[str, dict[str, object]] = {
    "loihi2": dict(
        family=Family.LOIHI2,
        mesh=(8, 16),
        group=(4, 4),
        neurons=8192,
        mem=128 * 1024,
        keps=1000,
        router=512,
        queues=3,
        depth=4096,
        qmeps=35,
        pci=False,
    ),
    "spinnaker2": dict(
        family=Family.SPINNAKER2,
        mesh=(38, 4),
        group=(2, 2),
        neurons=1000,
        mem=128 * 1024,
        keps=150,
        router=300,
        queues=1,
        depth=2048,
        qmeps=15,
        pci=False,
    ),
    "akd1000": dict(
        family=Family.AKIDA,
        mesh=(10, 8),
        group=(2, 2),
        neurons=15000,
        mem=100_000,
        keps=200,
        router=400,
        queues=2,
        depth=1024,
        qmeps=25,
        pci=True,
    ),
}


def core_position(index: int, mesh: tuple[int, int], group: tuple[int, int]) -> tuple[int, int]:
    gw, gh = group
    grid_x = mesh[0] // gw
    g, inner = divmod(index, gw * gh)
    return (g % grid_x) * gw + inner % gw, (g // grid_x) * gh + inner // gw


def make_chip(
    model: str = "loihi2",
    index: int = 0,
    *,
    chip_id: str | None = None,
    fused: tuple[int, ...] = (),
    healthy: bool = True,
    board: str = "b0",
    system: str = "sys0",
    mesh_pos: tuple[int, int, int] | None = None,
    hops: int = 0,
) -> Chip:
    f = FAMILIES[model]
    mesh: tuple[int, int] = f["mesh"]  # type: ignore[assignment]
    group: tuple[int, int] = f["group"]  # type: ignore[assignment]
    nominal = mesh[0] * mesh[1]
    cores = []
    for i in range(nominal):
        if i in fused:
            continue
        x, y = core_position(i, mesh, group)
        cores.append(Core(i, x, y, f["neurons"], f["mem"], f["keps"]))  # type: ignore[arg-type]
    return Chip(
        index=index,
        id=chip_id or f"{board}-c{index}",
        serial=f"SN-{model}-{board}-{index:04d}",
        family=f["family"],  # type: ignore[arg-type]
        model=model,
        board_id=board,
        system_id=system,
        mesh=mesh_pos or (index, 0, 0),
        core_mesh=mesh,
        nominal_cores=nominal,
        cores=tuple(cores),
        natural_group=group,
        router=Router(f["router"], mesh[0], mesh[1]),  # type: ignore[arg-type]
        event_queues=tuple(EventQueue(q, f["depth"], f["qmeps"]) for q in range(f["queues"])),  # type: ignore[call-overload]
        hops_to_host=hops,
        firmware_version="1.2.3",
        access=Access(),
        pci_bus_id=f"0000:{index + 1:02x}:00.0" if f["pci"] else None,
        healthy=healthy,
    )


def make_inventory(chips: list[Chip], node: str = "node-a") -> Inventory:
    boards: dict[str, list[Chip]] = {}
    for c in chips:
        boards.setdefault(c.board_id, []).append(c)
    return Inventory(
        node_name=node,
        system_id="sys0",
        boards=tuple(Board(b, cs[0].model, cs[0].family, tuple(cs)) for b, cs in boards.items()),
    )


def family_inventory(model: str, n: int = 2, **kw: object) -> Inventory:
    return make_inventory([make_chip(model, i, hops=i, **kw) for i in range(n)])  # type: ignore[arg-type]


def with_health(chip: Chip, healthy: bool) -> Chip:
    return replace(chip, healthy=healthy)
