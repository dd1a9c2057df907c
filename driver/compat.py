"""What this API server can take: version detection and the fallback publication plan.

A 1.34 cluster runs partitionable devices, consumable capacity and device taints behind alpha gates that
are off by default. The API server then silently drops ``sharedCounters``/``consumesCounters`` and
``allowMultipleAllocations``; publishing chips, core groups and cores anyway would let the allocator hand
out a chip and a core group of it to two pods. So the driver publishes what is safe for the server it
finds:

* counters dropped (``DRAPartitionableDevices`` off) -> a single partition level (no overlap possible);
* shared devices dropped (``DRAConsumableCapacity`` off) -> routers and queues are not published, since
  without ``allowMultipleAllocations`` one claim would take a router away from every other;
* 1.34 with the gates on still resolves counters only inside one slice; when a chip's devices cannot share
  one slice with its counter sets, the finest partition level goes first until the layout fits.

Each step is logged with the reason, so an operator sees why a level is missing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from snn_dra.api.attributes import DeviceType
from snn_dra.api.nodeconfig import PublishConfig
from snn_dra.driver.backends.base import Inventory
from snn_dra.driver.model import DeviceModel, build_model
from snn_dra.driver.slices import SliceBuildError, build_slices

log = logging.getLogger(__name__)

PROFILES = ("1.34", "1.35", "1.36", "1.37")
PARTITION_ORDER = (DeviceType.CHIP, DeviceType.CORE_GROUP, DeviceType.NEURON_CORE)
"""Coarse to fine; a fallback keeps the coarsest and drops from the fine end."""
SHARED_TYPES = (DeviceType.SPIKE_ROUTER, DeviceType.EVENT_QUEUE)


def profile_for_version(major: str, minor: str) -> str:
    """The validation profile for a server's ``/version`` (clamped to the range the driver knows)."""
    try:
        m = int(re.sub(r"\D.*$", "", minor) or "0")
        if int(major) != 1:
            raise ValueError(major)
    except ValueError:
        log.warning("unrecognised API server version %s.%s; assuming %s", major, minor, PROFILES[-1])
        return PROFILES[-1]
    return f"1.{min(max(m, 34), 37)}"


def _without(publish: PublishConfig, drop: Iterable[DeviceType]) -> PublishConfig:
    gone = set(drop)
    return publish.model_copy(update={"levels": [lvl for lvl in publish.levels if lvl not in gone]})


def fallback_publish(publish: PublishConfig, dropped_gates: set[str]) -> PublishConfig:
    """The publish levels that stay correct when the server dropped the fields of ``dropped_gates``."""
    result = publish
    if "DRAPartitionableDevices" in dropped_gates:
        partitions = [lvl for lvl in PARTITION_ORDER if lvl in result.levels]
        if len(partitions) > 1:
            log.warning(
                "the API server does not keep shared counters (feature gate DRAPartitionableDevices off): "
                "publishing only %s devices so partitions cannot overlap; enable the gate to publish %s",
                partitions[0],
                ", ".join(partitions[1:]),
            )
            result = _without(result, partitions[1:])
    if "DRAConsumableCapacity" in dropped_gates:
        shared = [lvl for lvl in SHARED_TYPES if lvl in result.levels]
        if shared:
            log.warning(
                "the API server does not keep allowMultipleAllocations (feature gate DRAConsumableCapacity off): "
                "not publishing %s devices, which only make sense shared",
                ", ".join(shared),
            )
            result = _without(result, shared)
    if not result.levels:
        raise SliceBuildError(
            "nothing left to publish on this API server: the node config publishes only "
            f"{', '.join(publish.levels)}; add the chip level to publish.levels"
        )
    return result


@dataclass(frozen=True, slots=True)
class Publication:
    """What the node publishes on a given server: the levels actually used, the model and its slices."""

    publish: PublishConfig
    model: DeviceModel
    slices: list[dict[str, object]]


def plan(
    inventory: Inventory,
    publish: PublishConfig,
    *,
    profile: str,
    dropped_gates: set[str] | None = None,
) -> Publication:
    """Build model and slices for this server, falling back level by level where the server needs it."""
    effective = fallback_publish(publish, dropped_gates or set())
    while True:
        model = build_model(inventory, effective)
        try:
            slices = build_slices(model, inventory.node_name, profile=profile)
        except SliceBuildError as exc:
            partitions = [lvl for lvl in PARTITION_ORDER if lvl in effective.levels]
            if profile != "1.34" or len(partitions) < 2:
                raise
            log.warning(
                "%s; Kubernetes 1.34 resolves counters only within one slice, so %s devices are not published "
                "on this cluster (1.35+ publishes them)",
                exc,
                partitions[-1],
            )
            effective = _without(effective, partitions[-1:])
            continue
        return Publication(publish=effective, model=model, slices=slices)
