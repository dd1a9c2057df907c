"""Kubernetes version profiles: which DRA feature gates are on, and which fields a disabled gate drops on write.

The real API server silently drops fields of a disabled gate (unless the stored object already uses them);
drivers detect that as "dropped fields". The embedded server does the same so a 1.34 profile behaves like a
1.34 cluster with default gates, and ``feature_gates`` overrides behave like ``--feature-gates``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_PROFILES = ("1.34", "1.35", "1.36", "1.37")
DEFAULT_PROFILE = "1.37"

# Gate defaults per version (resource-api.md §3). Gates absent from a version are off and cannot be enabled there.
_ON_EVERYWHERE = {"DynamicResourceAllocation", "DRAPrioritizedList", "DRAAdminAccess",
                  "DRAResourceClaimDeviceStatus", "DRASchedulerFilterTimeout"}
_ALPHA_UNTIL_136 = {"DRADeviceTaints", "DRAPartitionableDevices", "DRAConsumableCapacity",
                    "DRADeviceBindingConditions", "DRAExtendedResource", "ResourceHealthStatus"}

_GATES: dict[str, dict[str, bool]] = {
    "1.34": {**{g: True for g in _ON_EVERYWHERE}, **{g: False for g in _ALPHA_UNTIL_136}},
    "1.35": {**{g: True for g in _ON_EVERYWHERE}, **{g: False for g in _ALPHA_UNTIL_136},
             "DRADeviceTaintRules": False},
    "1.36": {**{g: True for g in _ON_EVERYWHERE}, **{g: True for g in _ALPHA_UNTIL_136},
             "DRADeviceTaintRules": False, "DRAListTypeAttributes": False, "DRANodeAllocatableResources": False,
             "DRAWorkloadResourceClaims": False},
    "1.37": {**{g: True for g in _ON_EVERYWHERE}, **{g: True for g in _ALPHA_UNTIL_136},
             "DRADeviceTaintRules": True, "DRAListTypeAttributes": False, "DRANodeAllocatableResources": False,
             "DRAWorkloadResourceClaims": False, "DRAOptionalNodeOperations": False,
             "DRAPartitionableDevicesType": False, "DRAFractionalCapacityRange": False},
}


class ProfileError(ValueError):
    """Unknown profile or gate: the message lists what is accepted."""


@dataclass(frozen=True)
class Profile:
    """A Kubernetes minor version plus its effective feature gates."""

    version: str
    gates: Mapping[str, bool] = field(default_factory=dict)

    def enabled(self, gate: str) -> bool:
        return bool(self.gates.get(gate, False))


def resolve_profile(version: str = DEFAULT_PROFILE, feature_gates: Mapping[str, bool] | None = None) -> Profile:
    if version not in _GATES:
        raise ProfileError(f"unknown profile {version!r}: use one of {', '.join(SUPPORTED_PROFILES)}")
    gates = dict(_GATES[version])
    for name, value in (feature_gates or {}).items():
        if name not in gates:
            raise ProfileError(f"feature gate {name!r} does not exist in Kubernetes {version}; known gates: "
                               f"{', '.join(sorted(gates))}")
        gates[name] = bool(value)
    return Profile(version=version, gates=gates)


# --- field dropping ---------------------------------------------------------------------------------------------

def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def _pop(d: Any, *keys: str) -> bool:
    dropped = False
    if isinstance(d, dict):
        for k in keys:
            if k in d:
                del d[k]
                dropped = True
    return dropped


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _slice_devices(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return _dicts(_get(obj, "spec", "devices"))


def _claim_specs(resource: str, obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = _get(obj, "spec") if resource == "resourceclaims" else _get(obj, "spec", "spec")
    if isinstance(spec, dict):
        yield spec


def _requests(resource: str, obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every request body: ``exactly`` and each ``firstAvailable`` subrequest."""
    for spec in _claim_specs(resource, obj):
        for req in _dicts(_get(spec, "devices", "requests")):
            ex = req.get("exactly")
            if isinstance(ex, dict):
                yield ex
            yield from _dicts(req.get("firstAvailable"))


def _results(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return _dicts(_get(obj, "status", "allocation", "devices", "results"))


def _drop_partitionable(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource == "resourceslices":
        d |= _pop(obj.get("spec"), "sharedCounters", "perDeviceNodeSelection")
        for dev in _slice_devices(obj):
            d |= _pop(dev, "consumesCounters", "nodeName", "nodeSelector", "allNodes")
    return d


def _drop_consumable(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource == "resourceslices":
        for dev in _slice_devices(obj):
            d |= _pop(dev, "allowMultipleAllocations")
            cap = dev.get("capacity")
            if isinstance(cap, dict):
                for c in cap.values():
                    d |= _pop(c, "requestPolicy")
    elif resource in ("resourceclaims", "resourceclaimtemplates"):
        for req in _requests(resource, obj):
            d |= _pop(req, "capacity")
        for spec in _claim_specs(resource, obj):
            for con in _dicts(_get(spec, "devices", "constraints")):
                d |= _pop(con, "distinctAttribute")
        if resource == "resourceclaims":
            for res in _results(obj):
                d |= _pop(res, "shareID", "consumedCapacity")
            for st in _dicts(_get(obj, "status", "devices")):
                d |= _pop(st, "shareID")
    return d


def _drop_taints(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource == "resourceslices":
        for dev in _slice_devices(obj):
            d |= _pop(dev, "taints")
    elif resource in ("resourceclaims", "resourceclaimtemplates"):
        for req in _requests(resource, obj):
            d |= _pop(req, "tolerations")
        if resource == "resourceclaims":
            for res in _results(obj):
                d |= _pop(res, "tolerations")
    return d


def _drop_binding(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource == "resourceslices":
        for dev in _slice_devices(obj):
            d |= _pop(dev, "bindsToNode", "bindingConditions", "bindingFailureConditions")
    elif resource == "resourceclaims":
        for res in _results(obj):
            d |= _pop(res, "bindingConditions", "bindingFailureConditions")
        d |= _pop(_get(obj, "status", "allocation"), "allocationTimestamp")
    return d


def _drop_device_status(resource: str, obj: dict[str, Any]) -> bool:
    return resource == "resourceclaims" and _pop(obj.get("status"), "devices")


def _drop_admin(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource in ("resourceclaims", "resourceclaimtemplates"):
        for req in _requests(resource, obj):
            d |= _pop(req, "adminAccess")
        if resource == "resourceclaims":
            for res in _results(obj):
                d |= _pop(res, "adminAccess")
    return d


def _drop_prioritized(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource in ("resourceclaims", "resourceclaimtemplates"):
        for spec in _claim_specs(resource, obj):
            for req in _dicts(_get(spec, "devices", "requests")):
                d |= _pop(req, "firstAvailable")
    return d


def _drop_extended(resource: str, obj: dict[str, Any]) -> bool:
    return resource == "deviceclasses" and _pop(obj.get("spec"), "extendedResourceName")


def _drop_optional_ops(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource == "resourceslices":
        d |= _pop(obj.get("spec"), "skipNodeOperations")
    elif resource == "resourceclaims":
        for res in _results(obj):
            d |= _pop(res, "skipNodeOperations")
    return d


def _drop_partition_type(resource: str, obj: dict[str, Any]) -> bool:
    return resource == "resourceslices" and _pop(obj.get("spec"), "partitionTypeAttribute")


def _drop_node_allocatable(resource: str, obj: dict[str, Any]) -> bool:
    d = False
    if resource == "resourceslices":
        for dev in _slice_devices(obj):
            d |= _pop(dev, "nodeAllocatableResourceMappings", "nodeAllocatableResources")
    return d


def _drop_list_attributes(resource: str, obj: dict[str, Any]) -> bool:
    """ints/bools/strings/versions values go; an attribute left without a value then fails validation."""
    d = False
    if resource == "resourceslices":
        for dev in _slice_devices(obj):
            attrs = dev.get("attributes")
            if isinstance(attrs, dict):
                for value in attrs.values():
                    d |= _pop(value, "ints", "bools", "strings", "versions")
    return d


_DROPPERS: dict[str, Callable[[str, dict[str, Any]], bool]] = {
    "DRAPartitionableDevices": _drop_partitionable,
    "DRAConsumableCapacity": _drop_consumable,
    "DRADeviceTaints": _drop_taints,
    "DRADeviceBindingConditions": _drop_binding,
    "DRAResourceClaimDeviceStatus": _drop_device_status,
    "DRAAdminAccess": _drop_admin,
    "DRAPrioritizedList": _drop_prioritized,
    "DRAExtendedResource": _drop_extended,
    "DRAOptionalNodeOperations": _drop_optional_ops,
    "DRAPartitionableDevicesType": _drop_partition_type,
    "DRANodeAllocatableResources": _drop_node_allocatable,
    "DRAListTypeAttributes": _drop_list_attributes,
}


def drop_disabled_fields(profile: Profile, resource: str, obj: dict[str, Any],
                         old: Mapping[str, Any] | None) -> list[str]:
    """Remove fields of disabled gates from ``obj`` in place; returns the gates whose fields were dropped.

    As upstream, a field the stored (old) object already uses is kept, so disabling a gate never breaks
    updates of existing objects.
    """
    dropped: list[str] = []
    for gate, dropper in _DROPPERS.items():
        if profile.enabled(gate):
            continue
        if old is not None and dropper(resource, copy.deepcopy(dict(old))):
            continue
        if dropper(resource, obj):
            dropped.append(gate)
    return dropped


def served_resources(profile: Profile) -> frozenset[str]:
    """resource.k8s.io/v1 resources the profile serves (DeviceTaintRule only with its gate)."""
    base = {"deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices"}
    if profile.enabled("DRADeviceTaintRules"):
        base.add("devicetaintrules")
    return frozenset(base)
