"""The cost model of split placement, in one place: hop-weighted spike traffic.

``cost = sum over consecutive stages i, i+1 of rate_i (thousand spikes/s) x hops(stage i, stage i+1)``

Hops come from the routing model of ``topology.py`` (X-Y dimension-order routing, so a hop count is a
Manhattan distance), measured between the devices' origin cores, the same point the published
``hopsToHost`` uses:

* same chip: X-Y hops on the core mesh;
* same board: out through the source chip's host port, over the chip mesh, in through the target's port
  (``topology.hops_between``);
* two boards of one node: both legs to the host (``hopsToHost`` of each device);
* two nodes: both legs to the host plus :data:`NODE_HOPS` for the network between the hosts.

A stage on several devices sends its spikes spread evenly, so the hops between two stages are the mean
over all device pairs. Traffic is only counted between consecutive stages: a split model is a chain.
No family publishes a per-hop latency, so the cost is in hop-weighted thousand spikes per second; with
a per-hop latency L the expected routing time per second of traffic is ``cost x L``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from snn_dra.driver.topology import HOST_PORT, chip_hops, core_hops

NODE_HOPS: Final = 64
"""Charge for crossing the network between two nodes, in router hops: far above any on-board route (an
8x6 SpiNNaker2 board is at most 12 chip hops plus two core-mesh legs), so placement never prefers it."""


@dataclass(frozen=True, slots=True)
class Site:
    """Where one device sits, as its published attributes say."""

    node: str
    pool: str
    device: str
    type: str
    board: str
    chip: str
    mesh: tuple[int, int, int]
    origin: tuple[int, int]
    extent: tuple[int, int]
    hops_to_host: int

    def overlaps(self, other: Site) -> bool:
        """Two partitions of one chip share a core (a chip covers its whole mesh)."""
        if self.chip != other.chip or self.node != other.node:
            return False
        ax, ay = self.origin
        bx, by = other.origin
        aw, ah = self.extent
        bw, bh = other.extent
        return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def hops(a: Site, b: Site) -> int:
    """Router hops between two devices (see the module docstring)."""
    if a.node != b.node:
        return a.hops_to_host + b.hops_to_host + NODE_HOPS
    if a.chip == b.chip:
        return core_hops(a.origin, b.origin)
    if a.board == b.board:
        return core_hops(a.origin, HOST_PORT) + chip_hops(a.mesh, b.mesh) + core_hops(HOST_PORT, b.origin)
    return a.hops_to_host + b.hops_to_host


def stage_hops(a: Sequence[Site], b: Sequence[Site]) -> float:
    """Mean hops over all device pairs of two stages."""
    return sum(hops(x, y) for x in a for y in b) / (len(a) * len(b))


def traffic(rates: Sequence[float], stages: Sequence[Sequence[Site]]) -> float:
    """Hop-weighted spike traffic of a chain: ``rates[i]`` flows from stage i to stage i+1."""
    return sum(rates[i] * stage_hops(stages[i], stages[i + 1]) for i in range(len(stages) - 1))
