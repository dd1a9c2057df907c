"""Where ``resource.Quantity`` values sit in the objects the driver publishes and the embedded server stores.

The API server rewrites every quantity into its canonical text on every write, so both the embedded server
(which must return what a real one returns) and the publisher (which must not mistake a respelled amount for a
change) need the same list of places. Paths are dotted JSON names; ``[]`` walks every list item and ``*`` every
map value. Facts from k8s.io/api ``resource/v1`` and ``core/v1`` types (1.34-1.37).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

_REQUESTS_LIMITS: Final = ("requests.*", "limits.*")
_DEVICE_REQUEST: Final = ("exactly.capacity.requests.*", "firstAvailable[].capacity.requests.*")
_CLAIM_SPEC: Final = tuple(f"devices.requests[].{p}" for p in _DEVICE_REQUEST)
_CONTAINER: Final = tuple(f"resources.{p}" for p in _REQUESTS_LIMITS)
_CONTAINER_STATUS: Final = ("allocatedResources.*", *(f"resources.{p}" for p in _REQUESTS_LIMITS))
_DEVICE: Final = (
    "capacity.*.value",
    "capacity.*.requestPolicy.default",
    "capacity.*.requestPolicy.validValues[]",
    "capacity.*.requestPolicy.validRange.min",
    "capacity.*.requestPolicy.validRange.max",
    "capacity.*.requestPolicy.validRange.step",
    "consumesCounters[].counters.*.value",
    "nodeAllocatableResourceMappings.*.allocationMultiplier",  # 1.36 alpha
    "nodeAllocatableResources.*.mapping.capacityMultiplier",  # 1.37 alpha, replaces the mappings above
    "nodeAllocatableResources.*.mapping.deviceMultiplier",
    "nodeAllocatableResources.*.overhead.perPod",
    "nodeAllocatableResources.*.overhead.perContainer",
)

RESOURCESLICE_SPEC_PATHS: Final = (
    *(f"devices[].{p}" for p in _DEVICE),
    "sharedCounters[].counters.*.value",
)
"""Quantities inside a ResourceSlice's ``spec``."""

QUANTITY_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    "resourceslices": tuple(f"spec.{p}" for p in RESOURCESLICE_SPEC_PATHS),
    "resourceclaims": (
        *(f"spec.{p}" for p in _CLAIM_SPEC),
        "status.allocation.devices.results[].consumedCapacity.*",
    ),
    "resourceclaimtemplates": tuple(f"spec.spec.{p}" for p in _CLAIM_SPEC),
    "pods": (
        *(f"spec.{kind}[].{p}" for kind in ("containers", "initContainers", "ephemeralContainers") for p in _CONTAINER),
        "spec.overhead.*",
        *(f"spec.resources.{p}" for p in _REQUESTS_LIMITS),
        "spec.volumes[].emptyDir.sizeLimit",
        *(f"spec.volumes[].ephemeral.volumeClaimTemplate.spec.resources.{p}" for p in _REQUESTS_LIMITS),
        *(
            f"status.{kind}[].{p}"
            for kind in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
            for p in _CONTAINER_STATUS
        ),
        *(f"status.resources.{p}" for p in _REQUESTS_LIMITS),
        "status.nodeAllocatableResourceClaimStatuses[].mapping[].quantity",
        "status.nodeAllocatableResourceClaimStatuses[].overhead[].perPod",
        "status.nodeAllocatableResourceClaimStatuses[].overhead[].perContainer",
    ),
    "nodes": ("status.capacity.*", "status.allocatable.*"),
}
"""Quantity paths of every stored kind that has any, by resource (plural) name."""


@lru_cache(maxsize=64)
def _steps(path: str) -> tuple[str, ...]:
    """``a.b[].*`` -> ("a", "b", "[]", "*")."""
    out: list[str] = []
    for part in path.split("."):
        if part.endswith("[]"):
            out += [part[:-2], "[]"]
        else:
            out.append(part)
    return tuple(out)


def _rewrite(node: Any, steps: tuple[str, ...], fn: Callable[[Any], Any]) -> None:
    step, rest = steps[0], steps[1:]
    if step == "[]":
        if isinstance(node, list):
            for i, item in enumerate(node):
                if rest:
                    _rewrite(item, rest, fn)
                elif item is not None:
                    node[i] = fn(item)
        return
    if not isinstance(node, dict):
        return
    keys = list(node) if step == "*" else [step] if step in node else []
    for key in keys:
        if rest:
            _rewrite(node[key], rest, fn)
        elif node[key] is not None:
            node[key] = fn(node[key])


def map_quantities(obj: Any, paths: tuple[str, ...], fn: Callable[[Any], Any]) -> None:
    """Replace, in place, every value found at ``paths`` in ``obj`` with ``fn(value)``; other shapes are skipped."""
    for path in paths:
        _rewrite(obj, _steps(path), fn)
