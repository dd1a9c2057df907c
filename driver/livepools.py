"""Which published slices count: readers of a live cluster (``status``, ``split place``) must see the devices the
scheduler allocates from, and the scheduler reads only the newest generation of each pool (older generations are
leftovers of a republish still being cleaned up)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from snn_dra.api.attributes import DRIVER_NAME


def newest_slices(slices: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """This driver's slices of the newest generation of each pool."""
    mine = [s for s in slices if (s.get("spec") or {}).get("driver") == DRIVER_NAME]
    newest: dict[str, int] = {}
    for s in mine:
        pool = s["spec"]["pool"]
        newest[pool["name"]] = max(newest.get(pool["name"], -1), int(pool.get("generation", 0)))
    return [s for s in mine if int(s["spec"]["pool"].get("generation", 0)) == newest[s["spec"]["pool"]["name"]]]
