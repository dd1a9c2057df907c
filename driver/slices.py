"""Device model -> the ResourceSlices of one node pool, as JSON-ready dicts exactly as they are POSTed.

**What each device carries.** Every device, whatever its type, has the same attribute names (so a
selector never hits a missing key, which would abort scheduling rather than skip the device):
``type family model chipID chipSerial boardID systemID chipX chipY chipZ chipRegion hopsToHost coreCount
coreX coreY coreWidth coreHeight version``. Routers and queues describe the whole core mesh they serve.
``hopsToHost`` counts X-Y hops from the device's origin core to the chip's host port plus the chip's
own distance to the host (``topology.py``). PCIe families (Akida) also carry the standard
``resource.kubernetes.io/pciBusID`` (and ``pcieRoot`` when discovery reports it) on every device;
Ethernet-attached families (Loihi 2, SpiNNaker2) have no PCI function, so they omit them on every
device: selectors on those names must guard with ``has()`` or select the family first.

Capacities are uniform per type. Partitions (chip, coreGroup, neuronCore) carry ``cores``,
``neurons``, ``synapseMemory`` (bytes) and ``spikeThroughputKEPS``. Routers (``eventThroughputMEPS``)
and event queues (``eventThroughputMEPS``, ``queueDepth``) set ``allowMultipleAllocations`` and give
each capacity a ``requestPolicy`` (default 1/16 of the device, any whole amount from 1 to all), so
many claims share one router or queue and the allocator books what each takes. Because capacity
names differ between types, a selector that reads a capacity names the type first
(``...type == "chip" && device.capacity[...].cores...``): CEL's ``&&`` is false as soon as one side
is false, so the missing key on other types is never an error.

Devices of an unhealthy chip keep their place and get the taint ``snn.dra.dev/unhealthy:NoSchedule``.

**Slicing.** One pool per node (pool name = node name), every slice with ``spec.nodeName``. Counter
sets go into their own slices (a slice holds devices XOR sharedCounters), at most 8 sets and, for
1.34 compatibility, at most 32 counters per slice; they come first. Device slices follow in device
order (= allocation priority), cut greedily at 128 devices, 64 once a device consumes counters or
has taints, and 1,024 consumed counters (the 1.34 per-slice limit). By default every device slice
is cut at 64 (``reserve_for_taints``) so a chip turning unhealthy adds taints in place and never
changes how the pool is split. Names use the 1.36+ controller scheme
``<hex index>-<driver>-<node>-`` as ``generateName``; owner references are the publisher's job.
Quantities are written in the API server's canonical form, so what is read back equals what was sent.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final

from snn_dra.api import attributes as attr
from snn_dra.api.attributes import DRIVER_NAME, DeviceType
from snn_dra.driver.backends.base import Chip
from snn_dra.driver.model import CounterSet, DeviceModel, DeviceModelError, ModelDevice
from snn_dra.driver.quantity import integer as canonical_integer
from snn_dra.driver.topology import chip_region, hops_to_host
from snn_dra.driver.validation.common import dns1123_subdomain_problems

API_VERSION: Final = "resource.k8s.io/v1"
TAINT_KEY: Final = "snn.dra.dev/unhealthy"
TAINT_EFFECT: Final = "NoSchedule"

MAX_DEVICES_PER_SLICE: Final = 128
MAX_DEVICES_PER_SLICE_ADVANCED: Final = 64
"""When any device in the slice consumes counters or has taints."""
MAX_COUNTER_SETS_PER_SLICE: Final = 8
MAX_SHARED_COUNTERS_PER_SLICE: Final = 32
"""1.34's total over all counter sets of a slice (1.35+ allows 8 x 32)."""
MAX_COUNTER_CONSUMPTIONS_PER_SLICE: Final = 1024
"""1.34's total of consumed counters over all devices of a slice."""
MAX_COUNTERS_PER_DEVICE_134: Final = 32
"""1.34's total of consumed counters of one device."""
MAX_ATTRIBUTES_AND_CAPACITIES: Final = 32
MAX_STRING_LENGTH: Final = 64
DEFAULT_SHARE_DIVISOR: Final = 16
"""A claim that asks for no amount of a shared router/queue gets 1/16 of it."""

_BINARY_CAPACITIES: Final = frozenset({attr.CAP_SYNAPSE_MEMORY, "synapse-memory"})


class SliceBuildError(DeviceModelError):
    """The devices cannot be laid out in slices within the API limits; the message names item and limit."""


@functools.lru_cache(maxsize=65536)
def quantity(value: int, binary: bool = False) -> str:
    """A whole number as the API server stores it (1000 -> ``1k``; bytes: 131072 -> ``128Ki``, 100000 -> ``100k``).

    A byte amount that is no whole number of KiB is written in decimal form: text without a binary suffix is
    decimal to the server, which would store "100000" as "100k" and make every comparison differ.
    """
    return canonical_integer(value, binary)


def _q(name: str, value: int) -> str:
    return quantity(value, name in _BINARY_CAPACITIES)


def slice_prefix_width(count: int) -> int:
    """Hex digits of the index prefix: at least 5, more when the pool has over 0xfffff slices."""
    return max(5, len(f"{max(count - 1, 0):x}"))


def generate_name(index: int, count: int, driver: str, node_name: str) -> str:
    """``generateName`` of slice ``index`` of ``count``: ``<hex index>-<driver>-<node>-`` (1.36+ scheme)."""
    return f"{index:0{slice_prefix_width(count)}x}-{driver}-{node_name}-"


class RenderCache:
    """Per-build memo that lets devices of one build share their leaf values and chip-level attributes.

    At Hala Point scale (155k devices) sharing ``{"int": 4}``-style leaves cuts the pool's memory by
    more than half. The result is therefore read-only: deep-copy a slice before editing it (the
    publisher does). Never reuse a cache across builds: health and firmware change between them.
    """

    __slots__ = ("chips", "leaves")

    def __init__(self) -> None:
        self.leaves: dict[tuple[str, object], dict[str, Any]] = {}
        self.chips: dict[str, dict[str, dict[str, Any]]] = {}

    def leaf(self, kind: str, value: object) -> dict[str, Any]:
        k = (kind, value)
        found = self.leaves.get(k)
        if found is None:
            found = self.leaves[k] = {kind: value}
        return found


def _check_string(value: str, what: str) -> str:
    if len(value) > MAX_STRING_LENGTH:
        raise SliceBuildError(
            f"{what} {value!r} has {len(value)} characters; string attributes allow at most {MAX_STRING_LENGTH}"
        )
    return value


def _chip_attributes(chip: Chip, cache: RenderCache) -> dict[str, dict[str, Any]]:
    x, y, z = chip.mesh
    leaf = cache.leaf
    attrs: dict[str, dict[str, Any]] = {
        attr.FAMILY: leaf("string", str(chip.family)),
        attr.MODEL: leaf("string", _check_string(chip.model, f"chip {chip.id}: model")),
        attr.CHIP_ID: leaf("string", _check_string(chip.id, "chip ID")),
        attr.CHIP_SERIAL: leaf("string", _check_string(chip.serial, f"chip {chip.id}: serial")),
        attr.BOARD_ID: leaf("string", _check_string(chip.board_id, f"chip {chip.id}: board ID")),
        attr.SYSTEM_ID: leaf("string", _check_string(chip.system_id, f"chip {chip.id}: system ID")),
        attr.CHIP_X: leaf("int", x),
        attr.CHIP_Y: leaf("int", y),
        attr.CHIP_Z: leaf("int", z),
        attr.CHIP_REGION: leaf("int", chip_region(chip.mesh)),
        attr.VERSION: leaf("version", _check_string(chip.firmware_version, f"chip {chip.id}: firmware version")),
    }
    if chip.pci_bus_id is not None:
        attrs[attr.PCI_BUS_ID] = leaf("string", _check_string(chip.pci_bus_id, f"chip {chip.id}: PCI bus ID"))
    if chip.pcie_root is not None:
        attrs[attr.PCIE_ROOT] = leaf("string", _check_string(chip.pcie_root, f"chip {chip.id}: PCIe root"))
    return attrs


def _shared_capacity(value: int, cache: RenderCache) -> dict[str, Any]:
    default = max(1, value // DEFAULT_SHARE_DIVISOR)
    found = cache.leaves.get(("sharedCapacity", value))
    if found is None:
        found = cache.leaves[("sharedCapacity", value)] = {
            "value": quantity(value),
            "requestPolicy": {
                "default": quantity(default),
                "validRange": {"min": "1", "max": quantity(value), "step": "1"},
            },
        }
    return found


def _counters_json(counters: tuple[tuple[str, int], ...]) -> dict[str, dict[str, str]]:
    return {name: {"value": _q(name, value)} for name, value in counters}


def device_json(device: ModelDevice, cache: RenderCache | None = None) -> dict[str, Any]:
    """The ``spec.devices[]`` entry of one device (camelCase, canonical quantities).

    Pass one :class:`RenderCache` for all devices of a build to share leaves (the result is then read-only).
    """
    if cache is None:
        cache = RenderCache()
    chip = device.chip
    common = cache.chips.get(chip.id)
    if common is None:
        common = cache.chips[chip.id] = _chip_attributes(chip, cache)
    leaf = cache.leaf
    attrs = dict(common)
    attrs[attr.TYPE] = leaf("string", str(device.type))
    attrs[attr.HOPS_TO_HOST] = leaf("int", hops_to_host(chip, device.origin))
    attrs[attr.CORE_X] = leaf("int", device.origin[0])
    attrs[attr.CORE_Y] = leaf("int", device.origin[1])
    attrs[attr.CORE_WIDTH] = leaf("int", device.extent[0])
    attrs[attr.CORE_HEIGHT] = leaf("int", device.extent[1])
    out: dict[str, Any] = {"name": device.name, "attributes": attrs}
    capacity: dict[str, Any]
    if device.type == DeviceType.SPIKE_ROUTER:
        attrs[attr.CORE_COUNT] = leaf("int", len(chip.cores))
        capacity = {attr.CAP_EVENT_THROUGHPUT_MEPS: _shared_capacity(chip.router.event_throughput_meps, cache)}
    elif device.type == DeviceType.EVENT_QUEUE:
        queue = device.queue
        if queue is None:
            raise SliceBuildError(f"eventQueue device {device.name} has no queue")
        attrs[attr.CORE_COUNT] = leaf("int", len(chip.cores))
        capacity = {
            attr.CAP_EVENT_THROUGHPUT_MEPS: _shared_capacity(queue.event_throughput_meps, cache),
            attr.CAP_QUEUE_DEPTH: _shared_capacity(queue.depth, cache),
        }
    else:
        cores = device.cores
        attrs[attr.CORE_COUNT] = leaf("int", len(cores))
        capacity = {
            attr.CAP_CORES: leaf("value", quantity(len(cores))),
            attr.CAP_NEURONS: leaf("value", quantity(sum(c.neurons for c in cores))),
            attr.CAP_SYNAPSE_MEMORY: leaf("value", quantity(sum(c.synapse_memory_bytes for c in cores), True)),
            attr.CAP_SPIKE_THROUGHPUT_KEPS: leaf("value", quantity(sum(c.spike_throughput_keps for c in cores))),
        }
    out["capacity"] = capacity
    if len(attrs) + len(capacity) > MAX_ATTRIBUTES_AND_CAPACITIES:
        raise SliceBuildError(
            f"device {device.name} has {len(attrs) + len(capacity)} attributes and capacities; "
            f"a device allows at most {MAX_ATTRIBUTES_AND_CAPACITIES}"
        )
    if device.consumes:
        out["consumesCounters"] = [
            {"counterSet": c.counter_set, "counters": {n: leaf("value", _q(n, v)) for n, v in c.counters}}
            for c in device.consumes
        ]
    if device.shared:
        out["allowMultipleAllocations"] = True
    if device.tainted:
        out["taints"] = [{"key": TAINT_KEY, "effect": TAINT_EFFECT}]
    return out


def counter_set_json(counter_set: CounterSet) -> dict[str, Any]:
    return {"name": counter_set.name, "counters": _counters_json(counter_set.counters)}


def _pack_counter_sets(sets: Sequence[CounterSet]) -> list[list[dict[str, Any]]]:
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    counters = 0
    for cs in sets:
        n = len(cs.counters)
        if n > MAX_SHARED_COUNTERS_PER_SLICE:
            raise SliceBuildError(
                f"counter set {cs.name} has {n} counters; a counter set allows at most {MAX_SHARED_COUNTERS_PER_SLICE}"
            )
        if current and (len(current) == MAX_COUNTER_SETS_PER_SLICE or counters + n > MAX_SHARED_COUNTERS_PER_SLICE):
            chunks.append(current)
            current, counters = [], 0
        current.append(counter_set_json(cs))
        counters += n
    if current:
        chunks.append(current)
    return chunks


def _pack_devices(devices: Sequence[ModelDevice], reserve_for_taints: bool) -> list[list[dict[str, Any]]]:
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    advanced = reserve_for_taints
    consumed = 0
    cache = RenderCache()
    for device in devices:
        n = sum(len(c.counters) for c in device.consumes)
        if n > MAX_COUNTER_CONSUMPTIONS_PER_SLICE:
            raise SliceBuildError(
                f"device {device.name} consumes {n} counters; a slice allows at most "
                f"{MAX_COUNTER_CONSUMPTIONS_PER_SLICE} consumed counters in total"
            )
        dev_advanced = bool(device.consumes) or device.tainted
        limit = MAX_DEVICES_PER_SLICE_ADVANCED if (advanced or dev_advanced) else MAX_DEVICES_PER_SLICE
        if current and (len(current) >= limit or consumed + n > MAX_COUNTER_CONSUMPTIONS_PER_SLICE):
            chunks.append(current)
            current, consumed, advanced = [], 0, reserve_for_taints
        current.append(device_json(device, cache))
        consumed += n
        advanced = advanced or dev_advanced
    if current:
        chunks.append(current)
    return chunks


def _chip_local_chunks(model: DeviceModel) -> list[dict[str, list[dict[str, Any]]]]:
    """1.34 layout: one slice per chip holding its counter sets and every device consuming them.

    Kubernetes 1.34 resolves ``consumesCounters`` only inside the same slice, allows 32 shared counters
    per slice, 32 consumed counters per device and 128 devices. What does not fit is refused with the fix.
    """
    sets_by_chip: dict[str, list[CounterSet]] = {}
    for cs in model.counter_sets:
        sets_by_chip.setdefault(cs.chip_id, []).append(cs)
    devices_by_chip: dict[str, list[ModelDevice]] = {}
    for d in model.devices:
        if d.consumes:
            devices_by_chip.setdefault(d.chip.id, []).append(d)
    fix = "for Kubernetes 1.34 publish fewer levels (e.g. chip and coreGroup) or a larger publish.coreGroup"
    chunks = []
    cache = RenderCache()
    for chip_id, sets in sets_by_chip.items():
        devices = devices_by_chip.get(chip_id, [])
        counters = sum(len(cs.counters) for cs in sets)
        if counters > MAX_SHARED_COUNTERS_PER_SLICE:
            raise SliceBuildError(
                f"chip {chip_id} needs {counters} shared counters in one slice; Kubernetes 1.34 allows "
                f"{MAX_SHARED_COUNTERS_PER_SLICE} per slice: {fix}"
            )
        if len(devices) > MAX_DEVICES_PER_SLICE:
            raise SliceBuildError(
                f"chip {chip_id} has {len(devices)} partition devices sharing its counters; Kubernetes 1.34 needs "
                f"them in one slice of at most {MAX_DEVICES_PER_SLICE} devices: {fix}"
            )
        consumed = 0
        for d in devices:
            n = sum(len(c.counters) for c in d.consumes)
            if n > MAX_COUNTERS_PER_DEVICE_134:
                raise SliceBuildError(
                    f"device {d.name} consumes {n} counters; Kubernetes 1.34 allows {MAX_COUNTERS_PER_DEVICE_134} "
                    f"per device: {fix}"
                )
            consumed += n
        if consumed > MAX_COUNTER_CONSUMPTIONS_PER_SLICE:
            raise SliceBuildError(
                f"chip {chip_id}: its devices consume {consumed} counters in one slice; Kubernetes 1.34 allows "
                f"{MAX_COUNTER_CONSUMPTIONS_PER_SLICE}: {fix}"
            )
        chunks.append(
            {
                "sharedCounters": [counter_set_json(cs) for cs in sets],
                "devices": [device_json(d, cache) for d in devices],
            }
        )
    return chunks


def build_slices(
    model: DeviceModel,
    node_name: str,
    *,
    driver: str = DRIVER_NAME,
    generation: int = 1,
    reserve_for_taints: bool = True,
    profile: str = "1.37",
) -> list[dict[str, Any]]:
    """The node's ResourceSlices in index order (counter slices first), ready to POST.

    Always returns at least one slice: an empty pool is still published, so consumers see it complete.
    ``profile`` "1.35" and later share one layout; "1.34" needs counter sets in the same slice as
    the devices consuming them (see :func:`_chip_local_chunks`). Raises :class:`SliceBuildError` when
    a device or counter set cannot fit any slice.
    """
    problems = dns1123_subdomain_problems(node_name)
    if problems or len(node_name) > 253:
        raise SliceBuildError(f"node name {node_name!r} is not usable as nodeName and pool name: {'; '.join(problems)}")
    if generation < 0:
        raise SliceBuildError(f"pool generation must be >= 0, got {generation}")
    specs: list[dict[str, list[dict[str, Any]]]]
    if profile == "1.34" and model.counter_sets:
        specs = _chip_local_chunks(model)
        rest = [d for d in model.devices if not d.consumes]
        specs += [{"devices": c} for c in _pack_devices(rest, reserve_for_taints=False)]
    else:
        specs = [{"sharedCounters": c} for c in _pack_counter_sets(model.counter_sets)]
        specs += [{"devices": c} for c in _pack_devices(model.devices, reserve_for_taints)]
    if not specs:
        specs = [{"devices": []}]
    count = len(specs)
    slices = []
    for i, body in enumerate(specs):
        name = generate_name(i, count, driver, node_name)
        if len(name) + 5 > 253:
            raise SliceBuildError(
                f"slice name prefix {name!r} leaves no room for the API server's 5-character suffix "
                "within 253 characters; use a shorter node name"
            )
        slices.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ResourceSlice",
                "metadata": {"generateName": name},
                "spec": {
                    "driver": driver,
                    "nodeName": node_name,
                    "pool": {"name": node_name, "generation": generation, "resourceSliceCount": count},
                    **body,
                },
            }
        )
    return slices


def device_counts(slices: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Devices per ``type`` attribute over ``slices`` (for tables and summaries)."""
    counts: dict[str, int] = {}
    for s in slices:
        for d in s["spec"].get("devices") or ():
            t = d.get("attributes", {}).get(attr.TYPE, {}).get("string", "?")
            counts[t] = counts.get(t, 0) + 1
    return counts
