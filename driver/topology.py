"""Routing distance and locality: the one place the driver computes how far apart two things are.

Every supported family routes spikes with X-Y dimension-order routing, on the core mesh inside a chip
and on the chip mesh between chips (Loihi 2 adds a Z layer for stacked chips). Under dimension-order
routing the hop count between two routers is exactly their Manhattan distance, so this module needs
no routing tables: anything that wants a distance (the ``hopsToHost`` attribute, placement, cost
models) asks here, and a future change of the routing model happens here only.

The host interface of a chip is modelled at core-mesh coordinate (0, 0): the edge router that the
chip's host link (Ethernet bridge / PCIe endpoint) attaches to. Vendors do not publish the floorplan,
so this is a documented convention, applied the same way to every family.
"""

from __future__ import annotations

from typing import Final

from snn_dra.driver.backends.base import Chip

HOST_PORT: Final = (0, 0)
"""Core-mesh coordinate of the router the chip's host interface attaches to (convention, see module doc)."""


def core_hops(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Router hops between two cores of one chip under X-Y routing."""
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def chip_hops(a: tuple[int, int, int], b: tuple[int, int, int]) -> int:
    """Chip-to-chip hops between two chip-mesh coordinates under dimension-order routing."""
    return abs(a[0] - b[0]) + abs(a[1] - b[1]) + abs(a[2] - b[2])


def hops_to_host(chip: Chip, origin: tuple[int, int] = HOST_PORT) -> int:
    """Hops from a core (or a group's origin core) to the host: inside the chip, then the chip's own distance.

    For the chip itself (and its router/queues, which sit at the host port) ``origin`` is the host port,
    so the result is the chip's distance to the host alone.
    """
    return core_hops(origin, HOST_PORT) + chip.hops_to_host


def hops_between(chip_a: Chip, core_a: tuple[int, int], chip_b: Chip, core_b: tuple[int, int]) -> int:
    """Hops between two cores anywhere in one system.

    Inside one chip: the X-Y distance. Across chips: out of the source chip through its host port,
    over the chip mesh, into the target chip from its host port. Exact chip-edge ports are not public,
    so the chip port is taken at the host port, which makes cross-chip distances an upper bound.
    """
    if chip_a.id == chip_b.id:
        return core_hops(core_a, core_b)
    return core_hops(core_a, HOST_PORT) + chip_hops(chip_a.mesh, chip_b.mesh) + core_hops(HOST_PORT, core_b)


REGION_SIDE: Final = 2
"""Chips per side of a chip region (a 2x2 block of one mesh layer)."""


def chip_region(mesh: tuple[int, int, int]) -> int:
    """Index of the 2x2 block of one mesh layer that holds a chip, unique within its board.

    Chips of one region are at most two chip-to-chip hops apart, so ``matchAttribute`` on the published
    ``chipRegion`` (with ``boardID``) keeps stages of a split model near each other when one chip is too small.
    """
    x, y, z = mesh
    return (z * 1024 + y // REGION_SIDE) * 1024 + x // REGION_SIDE


def chip_locality_key(chip: Chip) -> tuple[str, str, int, int, int]:
    """Sort key that keeps chips of one board and neighbouring mesh positions next to each other.

    Order: system, board, then mesh layer, row, column (z, y, x), so walking the sorted list walks the
    mesh row by row and consecutive chips are at most a few hops apart.
    """
    x, y, z = chip.mesh
    return chip.system_id, chip.board_id, z, y, x


def core_locality_key(position: tuple[int, int]) -> tuple[int, int]:
    """Row-major order on the core mesh (y, then x): neighbours in the order are neighbours on the mesh."""
    return position[1], position[0]
