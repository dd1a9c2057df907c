"""What a live cluster offers a split model: the published partitions, minus what claims already hold.

Input is the JSON the API server returns (ResourceSlices and ResourceClaims), so the same code reads the
embedded cluster, a kind cluster or the local real cluster. A device is free when it is healthy (no
NoSchedule/NoExecute taint), not allocated, and shares no core with an allocated partition of its chip:
chips, core groups and cores overlap through the shared counters, and the published core rectangles
(``coreX``, ``coreY``, ``coreWidth``, ``coreHeight``) say exactly which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snn_dra.api import attributes as attr
from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.api.split import STAGE_DEVICE_TYPES
from snn_dra.driver.cel.quantity import QuantityError, as_integer
from snn_dra.driver.livepools import newest_slices
from snn_dra.driver.split.cost import Site

_BLOCKING = frozenset({"NoSchedule", "NoExecute"})


class InventoryError(ValueError):
    """A published device lacks an attribute placement needs; the message names the device and attribute."""


@dataclass(frozen=True, slots=True)
class LiveDevice:
    site: Site
    family: str
    model: str
    cores: int
    neurons: int
    synapse_memory: int
    tainted: bool


@dataclass(slots=True)
class LiveInventory:
    devices: list[LiveDevice]
    taken: set[tuple[str, str]] = field(default_factory=set)
    """(pool, device) of every allocated device of this driver."""

    def free(self) -> list[LiveDevice]:
        """Devices a new claim could get now (see the module docstring)."""
        held = [d.site for d in self.devices if (d.site.pool, d.site.device) in self.taken]
        by_chip: dict[tuple[str, str], list[Site]] = {}
        for site in held:
            by_chip.setdefault((site.node, site.chip), []).append(site)
        out = []
        for d in self.devices:
            if d.tainted or (d.site.pool, d.site.device) in self.taken:
                continue
            if any(d.site.overlaps(h) for h in by_chip.get((d.site.node, d.site.chip), ())):
                continue
            out.append(d)
        return out

    def nodes(self) -> list[str]:
        return sorted({d.site.node for d in self.devices})


def _value(attrs: Mapping[str, Any], name: str, device: str) -> Any:
    try:
        return next(iter(attrs[name].values()))
    except (KeyError, AttributeError, StopIteration):
        raise InventoryError(
            f"device {device} has no attribute {name}; the driver on its node is older than split placement "
            "(upgrade it so every device publishes its chip mesh and core geometry)"
        ) from None


def _capacity(device: Mapping[str, Any], name: str) -> int:
    raw = ((device.get("capacity") or {}).get(name) or {}).get("value", "0")
    try:
        return as_integer(str(raw))
    except QuantityError:
        return 0


def read_inventory(slices: Iterable[Mapping[str, Any]], claims: Iterable[Mapping[str, Any]]) -> LiveInventory:
    devices = []
    types = {str(t) for t in STAGE_DEVICE_TYPES}
    for s in newest_slices(slices):
        spec = s["spec"]
        pool = str(spec["pool"]["name"])
        node = str(spec.get("nodeName") or pool)
        for d in spec.get("devices") or ():
            attrs = d.get("attributes") or {}
            name = str(d["name"])
            kind = str(_value(attrs, attr.TYPE, name))
            if kind not in types:
                continue
            site = Site(
                node=node,
                pool=pool,
                device=name,
                type=kind,
                board=str(_value(attrs, attr.BOARD_ID, name)),
                chip=str(_value(attrs, attr.CHIP_ID, name)),
                mesh=(int(_value(attrs, attr.CHIP_X, name)), int(_value(attrs, attr.CHIP_Y, name)),
                      int(_value(attrs, attr.CHIP_Z, name))),
                origin=(int(_value(attrs, attr.CORE_X, name)), int(_value(attrs, attr.CORE_Y, name))),
                extent=(int(_value(attrs, attr.CORE_WIDTH, name)), int(_value(attrs, attr.CORE_HEIGHT, name))),
                hops_to_host=int(_value(attrs, attr.HOPS_TO_HOST, name)),
            )  # fmt: skip
            devices.append(
                LiveDevice(
                    site=site,
                    family=str(_value(attrs, attr.FAMILY, name)),
                    model=str(_value(attrs, attr.MODEL, name)),
                    cores=_capacity(d, attr.CAP_CORES),
                    neurons=_capacity(d, attr.CAP_NEURONS),
                    synapse_memory=_capacity(d, attr.CAP_SYNAPSE_MEMORY),
                    tainted=any(t.get("effect") in _BLOCKING for t in d.get("taints") or ()),
                )
            )
    taken = set()
    for claim in claims:
        allocation = (claim.get("status") or {}).get("allocation") or {}
        for r in (allocation.get("devices") or {}).get("results") or ():
            if r.get("driver") == DRIVER_NAME and not r.get("adminAccess"):
                taken.add((str(r.get("pool", "")), str(r.get("device", ""))))
    return LiveInventory(devices, taken)
