"""The upstream semantic rules for resource.k8s.io/v1 ResourceSlice, per Kubernetes minor version.

JSON-schema validation (kubernetes-validate) only checks shapes. The API server additionally checks
names, one-of fields, the per-slice and per-device limits, request policies, taints and immutable
fields; an object that passes the schema can still be refused at publish time. This module applies
those rules offline (slice builder, ``snn-dra slices``) and in the embedded API server, with the same
JSON field paths (``spec.devices[3].attributes[bad-id]``).

Profiles differ where the API changed (docs/resource-api.md §2, §8):

* 1.34: counter references must point into the slice's own ``sharedCounters``; at most 32 shared
  counters per slice, 32 consumed counters per device, 1,024 per slice; 4 taints per device; no
  64-device limit.
* 1.35+: a slice holds devices XOR sharedCounters, references resolve pool-wide (``validate_pool``);
  8 counter sets of 32 counters, 2 consumptions of 32 counters per device; 64 devices when any device
  consumes counters or has taints; 16 taints per device.
* 1.36+: taint effect ``None``; list-type attributes (which also trigger the 64-device limit) and at
  most 48 attribute values per device.
* 1.37: ``partitionTypeAttribute`` and ``skipNodeOperations``.

Counter references across slices are a pool property: :func:`validate_pool` checks them, together
with device and counter-set names that must be unique in the pool.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from snn_dra.driver.validation.common import (
    as_mapping,
    check_list,
    child,
    duplicate,
    forbidden,
    gate_enabled,
    index,
    invalid,
    is_semver,
    key,
    not_supported,
    parse_quantity_strict,
    required,
    same_taint,
    too_many,
    type_invalid,
    validate_attribute_value,
    validate_dns_label,
    validate_driver_name,
    validate_fully_qualified_name,
    validate_label_value,
    validate_object_meta,
    validate_pool_name,
    validate_qualified_key,
    validate_qualified_name,
    validate_quantity,
)
from snn_dra.driver.validation.errors import CauseType, FieldError
from snn_dra.driver.validation.nodeselector import validate_node_selector
from snn_dra.driver.validation.requestpolicy import validate_request_policy

PROFILES: Final = ("1.34", "1.35", "1.36", "1.37")

MAX_DEVICES: Final = 128
MAX_DEVICES_ADVANCED: Final = 64
MAX_ATTRIBUTES_AND_CAPACITIES: Final = 32
MAX_ATTRIBUTE_VALUES: Final = 48
MAX_COUNTER_SETS: Final = 8
MAX_COUNTERS_PER_SET: Final = 32
MAX_CONSUMPTIONS_PER_DEVICE: Final = 2
MAX_COUNTERS_PER_CONSUMPTION: Final = 32
MAX_SHARED_COUNTERS_134: Final = 32
MAX_COUNTERS_PER_DEVICE_134: Final = 32
MAX_DEVICE_COUNTERS_PER_SLICE_134: Final = 1024
MAX_TAINTS_134: Final = 4
MAX_TAINTS: Final = 16
MAX_BINDING_CONDITIONS: Final = 4
MAX_VALID_VALUES: Final = 10

_NODE_FIELDS: Final = ("nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection")
_DEVICE_NODE_FIELDS: Final = ("nodeName", "nodeSelector", "allNodes")
_DEVICE_NODE_FIELDS_SET: Final = frozenset(_DEVICE_NODE_FIELDS)
_BINDING_FIELDS: Final = frozenset({"bindingConditions", "bindingFailureConditions", "bindsToNode"})
_SCALAR_TYPES: Final = {"int": int, "bool": bool, "string": str}
_LIST_FIELDS: Final = ("ints", "bools", "strings", "versions")
_SKIP_OPS: Final = ("NodePrepareResources", "NodeUnprepareResources", "*")


def _minor(profile: str) -> int:
    if profile not in PROFILES:
        raise ValueError(f"unknown validation profile {profile!r}; use one of {', '.join(PROFILES)}")
    return int(profile.split(".")[1])


@functools.lru_cache(maxsize=4096)
def _qualified_name_errors(name: str) -> tuple[FieldError, ...]:
    """Name checks are pure functions of the name and repeat on every device: compute them once."""
    return tuple(validate_qualified_name(name, "\0"))


@functools.lru_cache(maxsize=4096)
def _qualified(name: str, driver: str) -> tuple[tuple[FieldError, ...], str]:
    """(name errors, the name as CEL files it: unqualified names go under the driver's domain)."""
    return _qualified_name_errors(name), name if "/" in name else f"{driver}/{name}"


@functools.lru_cache(maxsize=1024)
def _version_ok(value: str) -> bool:
    return len(value) <= 64 and is_semver(value)


@functools.lru_cache(maxsize=16384)
def _label_errors(name: str, what: str) -> tuple[FieldError, ...]:
    return tuple(validate_dns_label(name, "\0", what=what))


def _dns_label(value: Any, path: str, what: str) -> list[FieldError]:
    if type(value) is str and value:
        found = _label_errors(value, what)
        return _at(found, path) if found else []
    return validate_dns_label(value, path, what=what)


def _at(errors: Sequence[FieldError], path: str) -> list[FieldError]:
    return [FieldError(e.type, path, e.message) for e in errors]


@functools.lru_cache(maxsize=8192)
def _parse_quantity_cached(value: str) -> Decimal:
    return parse_quantity_strict(value)


def _quantity(value: Any, path: str, errs: list[FieldError]) -> Decimal | None:
    """Parse a Quantity (memoised: a pool repeats a handful of amounts thousands of times) or record why not."""
    try:
        return _parse_quantity_cached(value) if type(value) is str else parse_quantity_strict(value)
    except (ValueError, InvalidOperation):
        errs.extend(validate_quantity(value, path))
        return None


def validate_resource_slice(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    """Every rule the API server of ``profile`` ("1.34".."1.37") applies to a ResourceSlice create or update."""
    m = _minor(profile)
    errs = validate_object_meta(obj.get("metadata"), namespaced=False)
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        errs.append(required("spec", "a ResourceSlice needs a spec with driver, pool and devices"))
        return errs
    # DRAListTypeAttributes (alpha in 1.36/1.37): list values only with the gate on, or when the stored slice
    # already has them (the API server keeps a disabled gate's fields an object already uses).
    lists_ok = m >= 36 and (
        gate_enabled(profile, "DRAListTypeAttributes") or (old is not None and uses_list_attributes(old))
    )
    old_spec = as_mapping(old.get("spec")) if old is not None else None
    errs.extend(_validate_spec(spec, "spec", m, lists_ok, old_spec))
    if old is not None:
        errs.extend(_validate_update(obj, old))
    return errs


def _validate_update(obj: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    new_meta, old_meta = as_mapping(obj.get("metadata")), as_mapping(old.get("metadata"))
    if old_meta.get("name") and new_meta.get("name") != old_meta.get("name"):
        errs.append(invalid("metadata.name", new_meta.get("name"), "field is immutable"))
    new_spec, old_spec = as_mapping(obj.get("spec")), as_mapping(old.get("spec"))
    for path, new, prev in (
        ("spec.driver", new_spec.get("driver"), old_spec.get("driver")),
        ("spec.pool.name", as_mapping(new_spec.get("pool")).get("name"), as_mapping(old_spec.get("pool")).get("name")),
        ("spec.nodeName", new_spec.get("nodeName"), old_spec.get("nodeName")),
    ):
        if new != prev:
            errs.append(invalid(path, new, "field is immutable: delete the slice and create a new one instead"))
    return errs


def uses_list_attributes(obj: Mapping[str, Any]) -> bool:
    """Whether any device of the slice has an ints/bools/strings/versions attribute value."""
    for device in as_mapping(obj.get("spec")).get("devices") or ():
        for value in as_mapping(as_mapping(device).get("attributes")).values():
            if any(f in as_mapping(value) for f in _LIST_FIELDS):
                return True
    return False


def _validate_spec(
    spec: Mapping[str, Any], path: str, m: int, lists_ok: bool, old_spec: Mapping[str, Any] | None = None
) -> list[FieldError]:
    errs: list[FieldError] = []
    old_devices = {
        d["name"]: d for d in (old_spec or {}).get("devices") or () if isinstance(d, Mapping) and "name" in d
    }
    driver = spec.get("driver")
    errs.extend(validate_driver_name(driver, child(path, "driver")))
    errs.extend(_validate_pool_block(spec.get("pool"), child(path, "pool")))
    errs.extend(_validate_node_selection(spec, path))

    devices, e = check_list(spec.get("devices"), child(path, "devices"))
    errs.extend(e)
    counter_sets, e = check_list(spec.get("sharedCounters"), child(path, "sharedCounters"))
    errs.extend(e)
    if m >= 35 and devices and counter_sets:
        errs.append(
            invalid(
                path,
                "{`devices`, `sharedCounters`}",
                "a slice holds either devices or sharedCounters, not both: move the counter sets into their own slice",
            )
        )
    slice_counters = _validate_counter_sets(counter_sets, child(path, "sharedCounters"), m, errs)

    per_device_nodes = spec.get("perDeviceNodeSelection") is True
    advanced = False
    consumed_total = 0
    seen: set[str] = set()
    dpath = child(path, "devices")
    for i, device in enumerate(devices):
        p = index(dpath, i)
        if not isinstance(device, Mapping):
            errs.append(type_invalid(p, device, "an object"))
            continue
        name = device.get("name")
        if isinstance(name, str) and name:
            if name in seen:
                errs.append(duplicate(child(p, "name"), name))
            seen.add(name)
        old_device = old_devices.get(name) if isinstance(name, str) else None
        flags = _validate_device(
            device, p, m, str(driver or ""), per_device_nodes, slice_counters, lists_ok, errs, old_device
        )
        advanced = advanced or flags[0]
        consumed_total += flags[1]
    limit = MAX_DEVICES_ADVANCED if m >= 35 and advanced else MAX_DEVICES
    if len(devices) > limit:
        why = "devices" if limit == MAX_DEVICES else "devices when any device has taints, counters or list attributes"
        errs.append(too_many(dpath, len(devices), limit, why))
    if m == 34 and consumed_total > MAX_DEVICE_COUNTERS_PER_SLICE_134:
        errs.append(
            invalid(
                dpath,
                consumed_total,
                f"the total number of counters in devices must not exceed {MAX_DEVICE_COUNTERS_PER_SLICE_134}",
            )
        )

    if "partitionTypeAttribute" in spec:
        p = child(path, "partitionTypeAttribute")
        if m < 37:
            errs.append(forbidden(p, f"not supported before Kubernetes 1.37 (profile 1.{m}); remove it"))
        else:
            errs.extend(validate_fully_qualified_name(spec.get("partitionTypeAttribute"), p))
            errs.extend(_validate_partition_type(spec, path, devices))
    if "skipNodeOperations" in spec:
        errs.extend(_validate_skip_ops(spec.get("skipNodeOperations"), child(path, "skipNodeOperations"), m))
    return errs


def _validate_partition_type(spec: Mapping[str, Any], path: str, devices: list[Any]) -> list[FieldError]:
    """Every device that consumes counters carries the named attribute as a string (the partition's type).

    The attribute may be written bare when it is in the driver's domain; devices without counters are exempt.
    """
    name = spec.get("partitionTypeAttribute")
    partitions = [(i, d) for i, d in enumerate(devices) if isinstance(d, Mapping) and d.get("consumesCounters")]
    if not partitions:
        return [
            invalid(
                child(path, "partitionTypeAttribute"),
                name,
                "may only be set on a slice which declares devices that consume counters",
            )
        ]
    if not isinstance(name, str) or validate_fully_qualified_name(name, ""):
        return []  # the name itself is reported once, not on every device
    prefix = f"{spec.get('driver')}/"
    bare = name[len(prefix) :] if name.startswith(prefix) else name
    errs: list[FieldError] = []
    for i, device in partitions:
        attrs = as_mapping(device.get("attributes"))
        value = attrs.get(name, attrs.get(bare))
        apath = key(child(index(child(path, "devices"), i), "attributes"), name)
        if value is None:
            errs.append(
                required(
                    apath,
                    "device consumes counters and `partitionTypeAttribute` names this attribute, so it must be set",
                )
            )
        elif not isinstance(as_mapping(value).get("string"), str):
            errs.append(
                invalid(apath, value, "must be a string value because `partitionTypeAttribute` names this attribute")
            )
    return errs


def _validate_pool_block(pool: Any, path: str) -> list[FieldError]:
    if not isinstance(pool, Mapping):
        return [required(path, "pool {name, generation, resourceSliceCount} is required")]
    errs = validate_pool_name(pool.get("name"), child(path, "name"))
    gen = pool.get("generation", 0)
    if isinstance(gen, bool) or not isinstance(gen, int):
        errs.append(type_invalid(child(path, "generation"), gen, "an integer"))
    elif gen < 0:
        errs.append(invalid(child(path, "generation"), gen, "must be greater than or equal to 0"))
    count = pool.get("resourceSliceCount", 0)
    if isinstance(count, bool) or not isinstance(count, int):
        errs.append(type_invalid(child(path, "resourceSliceCount"), count, "an integer"))
    elif count <= 0:
        errs.append(
            invalid(
                child(path, "resourceSliceCount"), count, "must be greater than 0 (the number of slices in the pool)"
            )
        )
    return errs


def _validate_node_selection(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    present = [f for f in _NODE_FIELDS if spec.get(f) is not None]
    node_name = spec.get("nodeName")
    if node_name is not None:
        if node_name == "":
            errs.append(invalid(child(path, "nodeName"), "", "must be either unset or set to a non-empty string"))
        elif not isinstance(node_name, str):
            errs.append(type_invalid(child(path, "nodeName"), node_name, "a string"))
    for flag in ("allNodes", "perDeviceNodeSelection"):
        if spec.get(flag) is False:
            errs.append(invalid(child(path, flag), False, "must be either unset or set to true"))
    if "nodeSelector" in present:
        errs.extend(_validate_node_selector(spec["nodeSelector"], child(path, "nodeSelector"), one_term=True))
    if not present:
        errs.append(
            required(
                path, "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"
            )
        )
    elif len(present) > 1:
        fields = ", ".join(f"`{f}`" for f in present)
        errs.append(
            invalid(
                path,
                "{" + fields + "}",
                "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, "
                "but multiple fields are set",
            )
        )
    return errs


def _validate_node_selector(selector: Any, path: str, *, one_term: bool) -> list[FieldError]:
    """The core/v1 rules (label keys and values, operators); a slice's own selector also has exactly one term
    (which keeps merging the selectors of devices allocated from several slices simple)."""
    errs = validate_node_selector(selector, path)
    if not isinstance(selector, Mapping):
        return errs
    terms = selector.get("nodeSelectorTerms")
    n = len(terms) if isinstance(terms, list) else 0
    if one_term and n != 1:
        errs.append(invalid(child(path, "nodeSelectorTerms"), n, "must have exactly one node selector term"))
    return errs


def _validate_counter_sets(counter_sets: list[Any], path: str, m: int, errs: list[FieldError]) -> dict[str, set[str]]:
    """Check the slice's counter sets; return set name -> counter names (for 1.34's slice-local references)."""
    out: dict[str, set[str]] = {}
    total = 0
    if m >= 35 and len(counter_sets) > MAX_COUNTER_SETS:
        errs.append(too_many(path, len(counter_sets), MAX_COUNTER_SETS, "counter sets per slice"))
    for i, cs in enumerate(counter_sets):
        p = index(path, i)
        if not isinstance(cs, Mapping):
            errs.append(type_invalid(p, cs, "an object with name and counters"))
            continue
        name = cs.get("name")
        errs.extend(validate_dns_label(name, child(p, "name"), what="counter set name"))
        if isinstance(name, str) and name:
            if name in out:
                errs.append(duplicate(child(p, "name"), name))
            out[name] = set()
        counters = cs.get("counters")
        cp = child(p, "counters")
        if not isinstance(counters, Mapping) or not counters:
            errs.append(required(cp, "a counter set needs at least one counter"))
            continue
        total += len(counters)
        if m >= 35 and len(counters) > MAX_COUNTERS_PER_SET:
            errs.append(too_many(cp, len(counters), MAX_COUNTERS_PER_SET, "counters per counter set"))
        for cname, counter in counters.items():
            kp = key(cp, str(cname))
            errs.extend(_dns_label(cname, kp, "counter name"))
            if isinstance(name, str) and name:
                out[name].add(str(cname))
            _validate_counter_value(counter, kp, errs)
    if m == 34 and total > MAX_SHARED_COUNTERS_134:
        errs.append(
            invalid(path, total, f"the total number of shared counters must not exceed {MAX_SHARED_COUNTERS_134}")
        )
    return out


def _validate_counter_value(counter: Any, path: str, errs: list[FieldError]) -> None:
    if type(counter) is dict and type(counter.get("value")) is str and counter["value"]:
        _quantity(counter["value"], child(path, "value"), errs)
        return
    if not isinstance(counter, Mapping) or counter.get("value") in (None, ""):
        errs.append(required(child(path, "value"), "a counter needs a value such as '4' or '128Ki'"))
        return
    _quantity(counter["value"], child(path, "value"), errs)


def _same_amounts(old: Any, new: Any) -> bool:
    """Equal as upstream's semantic comparison sees it: quantities by value ("1.5" is "1500m"), the rest as is."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return old.keys() == new.keys() and all(_same_amounts(old[k], new[k]) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same_amounts(a, b) for a, b in zip(old, new, strict=True))
    if old == new:
        return True
    if isinstance(old, str) and isinstance(new, str):
        try:
            return _parse_quantity_cached(old) == _parse_quantity_cached(new)
        except (ValueError, InvalidOperation):
            return False
    return False


def _same_taints(old: Any, new: Any) -> bool:
    if not isinstance(old, list) or not isinstance(new, list) or len(old) != len(new):
        return bool(old == new)
    return all(same_taint(a, b) for a, b in zip(old, new, strict=True))


def _validate_device(
    device: Mapping[str, Any],
    path: str,
    m: int,
    driver: str,
    per_device_nodes: bool,
    slice_counters: dict[str, set[str]],
    lists_ok: bool,
    errs: list[FieldError],
    old_device: Mapping[str, Any] | None = None,
) -> tuple[bool, int]:
    """Validate one device; return (uses an advanced feature, counters it consumes).

    On update, what the stored device (same name) already had is not checked again, as upstream: its taints
    (any version) and, from 1.37, its capacity map, so a rule or gate that changed since does not block
    updates of other fields.
    """
    errs.extend(validate_dns_label(device.get("name"), child(path, "name"), what="device name"))
    attributes = device.get("attributes") or {}
    capacity = device.get("capacity") or {}
    has_lists = False
    if type(attributes) is not dict and not isinstance(attributes, Mapping):
        errs.append(type_invalid(child(path, "attributes"), attributes, "a map"))
        attributes = {}
    if type(capacity) is not dict and not isinstance(capacity, Mapping):
        errs.append(type_invalid(child(path, "capacity"), capacity, "a map"))
        capacity = {}
    if len(attributes) + len(capacity) > MAX_ATTRIBUTES_AND_CAPACITIES:
        errs.append(
            too_many(path, len(attributes) + len(capacity), MAX_ATTRIBUTES_AND_CAPACITIES, "attributes and capacities")
        )
    apath = child(path, "attributes")
    values = 0
    for name, value in attributes.items():
        kp = f"{apath}[{name}]"
        if type(name) is str:
            name_errs = _qualified_name_errors(name)
            if name_errs:
                errs.extend(_at(name_errs, kp))
        if type(value) is dict and len(value) == 1:
            ((vtype, v),) = value.items()
            expected = _SCALAR_TYPES.get(vtype)
            if expected is not None and type(v) is expected and (not isinstance(v, str) or len(v) <= 64):
                values += 1
                continue  # the common case, checked without building error objects
            if vtype == "version" and type(v) is str and _version_ok(v):
                values += 1
                continue
            if vtype in _LIST_FIELDS:
                has_lists = True
                values += len(v) if isinstance(v, list) else 1
                if m < 36:
                    errs.append(
                        forbidden(child(kp, vtype), f"list-type attributes need Kubernetes 1.36+ (profile 1.{m})")
                    )
                    continue
                if not lists_ok:
                    errs.append(
                        forbidden(
                            child(kp, vtype),
                            f"list-type attributes require the DRAListTypeAttributes feature gate (alpha, off by "
                            f"default in Kubernetes 1.{m}); publish a scalar value or enable the gate",
                        )
                    )
                    continue
            else:
                values += 1
        else:
            values += 1
        errs.extend(validate_attribute_value(value, kp, allow_lists=lists_ok))
    if m >= 36 and values > MAX_ATTRIBUTE_VALUES:
        errs.append(
            too_many(apath, values, MAX_ATTRIBUTE_VALUES, "attribute values per device (list items count each)")
        )

    shared = device.get("allowMultipleAllocations") is True
    cpath = child(path, "capacity")
    stored_capacity = m >= 37 and old_device is not None and _same_amounts(old_device.get("capacity"), capacity)
    for name, cap in () if stored_capacity else capacity.items():
        kp = f"{cpath}[{name}]"
        if type(name) is str:
            name_errs = _qualified_name_errors(name)
            if name_errs:
                errs.extend(_at(name_errs, kp))
        if not isinstance(cap, Mapping) or cap.get("value") in (None, ""):
            errs.append(required(child(kp, "value"), "a capacity needs a value such as '8' or '128Ki'"))
            continue
        total = _quantity(cap["value"], child(kp, "value"), errs)
        policy = cap.get("requestPolicy")
        if policy is not None:
            pp = child(kp, "requestPolicy")
            if not shared:
                errs.append(forbidden(pp, "a requestPolicy is only allowed when allowMultipleAllocations is true"))
            elif total is not None:
                errs.extend(
                    validate_request_policy(
                        policy, total, pp, minor=m, fractional=gate_enabled(f"1.{m}", "DRAFractionalCapacityRange")
                    )
                )

    consumed = _validate_consumption(
        device.get("consumesCounters"), child(path, "consumesCounters"), m, slice_counters, errs
    )
    taints = device.get("taints")
    if taints is not None and (old_device is None or not _same_taints(old_device.get("taints"), taints)):
        errs.extend(_validate_taints(taints, child(path, "taints"), m))
    if per_device_nodes or not _DEVICE_NODE_FIELDS_SET.isdisjoint(device):
        errs.extend(_validate_device_nodes(device, path, per_device_nodes))
    if not _BINDING_FIELDS.isdisjoint(device):
        errs.extend(_validate_binding(device, path))
    if "allowMultipleAllocations" in device and not isinstance(device["allowMultipleAllocations"], bool):
        errs.append(
            type_invalid(child(path, "allowMultipleAllocations"), device["allowMultipleAllocations"], "a boolean")
        )
    advanced = bool(taints) or bool(device.get("consumesCounters")) or (m >= 36 and has_lists)
    return advanced, consumed


def _validate_consumption(
    entries: Any, path: str, m: int, slice_counters: dict[str, set[str]], errs: list[FieldError]
) -> int:
    items, e = check_list(entries, path)
    errs.extend(e)
    if m >= 35 and len(items) > MAX_CONSUMPTIONS_PER_DEVICE:
        errs.append(too_many(path, len(items), MAX_CONSUMPTIONS_PER_DEVICE, "counter consumptions per device"))
    total = 0
    seen: set[str] = set()
    for i, entry in enumerate(items):
        p = index(path, i)
        if not isinstance(entry, Mapping):
            errs.append(type_invalid(p, entry, "an object with counterSet and counters"))
            continue
        set_name = entry.get("counterSet")
        sp = child(p, "counterSet")
        errs.extend(_dns_label(set_name, sp, "counter set name"))
        if isinstance(set_name, str) and set_name:
            if set_name in seen:
                errs.append(duplicate(p, set_name))
            seen.add(set_name)
        known = slice_counters.get(set_name) if isinstance(set_name, str) else None
        if m == 34 and known is None:
            errs.append(
                invalid(sp, set_name, "must reference a counterSet defined in the ResourceSlice sharedCounters")
            )
        counters = entry.get("counters")
        cp = child(p, "counters")
        if not isinstance(counters, Mapping) or not counters:
            errs.append(required(cp, "list the counters this device consumes"))
            continue
        total += len(counters)
        if m >= 35 and len(counters) > MAX_COUNTERS_PER_CONSUMPTION:
            errs.append(too_many(cp, len(counters), MAX_COUNTERS_PER_CONSUMPTION, "counters per consumption"))
        for cname, counter in counters.items():
            kp = key(cp, str(cname))
            errs.extend(_dns_label(cname, kp, "counter name"))
            if m == 34 and known is not None and cname not in known:
                errs.append(invalid(cp, cname, "must reference a counter defined in the ResourceSlice sharedCounters"))
            _validate_counter_value(counter, kp, errs)
    if m == 34 and total > MAX_COUNTERS_PER_DEVICE_134:
        errs.append(
            invalid(
                path.rsplit(".", 1)[0],
                total,
                f"the total number of counters must not exceed {MAX_COUNTERS_PER_DEVICE_134}",
            )
        )
    return total


def _validate_taints(taints: Any, path: str, m: int) -> list[FieldError]:
    limit = MAX_TAINTS_134 if m == 34 else MAX_TAINTS
    items, errs = check_list(taints, path, limit, "taints per device")
    effects = ["NoSchedule", "NoExecute"] + (["None"] if m >= 36 else [])
    for i, taint in enumerate(items):
        p = index(path, i)
        if not isinstance(taint, Mapping):
            errs.append(type_invalid(p, taint, "an object with key and effect"))
            continue
        errs.extend(validate_qualified_key(taint.get("key"), child(p, "key"), what="taint key"))
        if taint.get("value") is not None:
            errs.extend(validate_label_value(taint["value"], child(p, "value")))
        effect = taint.get("effect")
        if not effect:
            errs.append(required(child(p, "effect"), f"one of {', '.join(effects)}"))
        elif effect not in effects:
            errs.append(not_supported(child(p, "effect"), effect, effects))
    return errs


def _validate_device_nodes(device: Mapping[str, Any], path: str, per_device_nodes: bool) -> list[FieldError]:
    present = [f for f in _DEVICE_NODE_FIELDS if device.get(f) is not None]
    errs: list[FieldError] = []
    if device.get("nodeName") == "":
        errs.append(invalid(child(path, "nodeName"), "", "must not be empty"))
    if device.get("allNodes") is False:
        errs.append(invalid(child(path, "allNodes"), False, "must be either unset or set to true"))
    if not per_device_nodes:
        errs.extend(
            forbidden(child(path, f), "only allowed when the slice sets perDeviceNodeSelection: true") for f in present
        )
    elif len(present) != 1:
        msg = (
            "exactly one of `nodeName`, `nodeSelector`, or `allNodes` is required when `perDeviceNodeSelection` "
            "is set to true in the ResourceSlice spec"
        )
        if present:
            errs.append(invalid(path, "{" + ", ".join(f"`{f}`" for f in present) + "}", msg))
        else:
            errs.append(required(path, msg))
    elif "nodeSelector" in present:
        errs.extend(_validate_node_selector(device["nodeSelector"], child(path, "nodeSelector"), one_term=False))
    return errs


def _validate_binding(device: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    lists: dict[str, list[Any]] = {}
    for f in ("bindingConditions", "bindingFailureConditions"):
        items, e = check_list(device.get(f), child(path, f), MAX_BINDING_CONDITIONS, f)
        errs.extend(e)
        lists[f] = items
        for i, cond in enumerate(items):
            errs.extend(validate_qualified_key(cond, index(child(path, f), i), what="condition type"))
    cond, fail = lists["bindingConditions"], lists["bindingFailureConditions"]
    if bool(cond) != bool(fail):
        missing = "bindingFailureConditions" if cond else "bindingConditions"
        errs.append(required(child(path, missing), "bindingConditions and bindingFailureConditions go together"))
    for c in set(map(str, cond)) & set(map(str, fail)):
        errs.append(invalid(child(path, "bindingFailureConditions"), c, "must not also be a binding condition"))
    if device.get("bindsToNode") is not None and not isinstance(device["bindsToNode"], bool):
        errs.append(type_invalid(child(path, "bindsToNode"), device["bindsToNode"], "a boolean"))
    return errs


def _validate_skip_ops(value: Any, path: str, m: int) -> list[FieldError]:
    if m < 37:
        return [forbidden(path, f"not supported before Kubernetes 1.37 (profile 1.{m}); remove it")]
    items, errs = check_list(value, path)
    seen: set[str] = set()
    for i, op in enumerate(items):
        if op in seen:
            errs.append(duplicate(index(path, i), op))
        seen.add(str(op))
        if op not in _SKIP_OPS:
            errs.append(not_supported(index(path, i), op, list(_SKIP_OPS)))
    if "NodePrepareResources" in seen and not seen & {"NodeUnprepareResources", "*"}:
        errs.append(
            invalid(path, sorted(seen), "NodePrepareResources may only be skipped together with NodeUnprepareResources")
        )
    return errs


def lint_slice(obj: Mapping[str, Any]) -> list[FieldError]:
    """Problems the API server accepts but that break CEL selectors: for the slice builder, not the API server.

    A name without a domain is filed under the driver's domain in CEL (docs/resource-api.md §6), so a device
    publishing both ``cores`` and ``<driver>/cores`` (attribute or capacity) makes one of them unreachable.
    Upstream validation lets it through; a driver should never publish it.
    """
    spec = as_mapping(obj.get("spec"))
    driver = str(spec.get("driver") or "")
    errs: list[FieldError] = []
    for i, device in enumerate(spec.get("devices") or ()):
        for field in ("attributes", "capacity"):
            fpath = child(index("spec.devices", i), field)
            seen: dict[str, str] = {}
            for name in as_mapping(as_mapping(device).get(field)):
                if type(name) is not str:
                    continue
                full = _qualified(name, driver)[1]
                if full in seen:
                    errs.append(
                        FieldError(
                            CauseType.DUPLICATE,
                            key(fpath, name),
                            f"Duplicate value: {name!r}: CEL files it as {full!r}, like {seen[full]!r}; "
                            "publish only one of the two names",
                        )
                    )
                else:
                    seen[full] = name
    return errs


def validate_pool(slices: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Rules that span the slices of a pool (1.35+), as the slice controller pre-validates and the allocator checks.

    Device and counter-set names must be unique per pool, every consumed counter must exist in a counter
    set of the same pool, and the slice count must match ``pool.resourceSliceCount`` at the newest
    generation. Paths are ``items[<slice index>].spec...``. Only slices of the highest generation count.
    """
    errs: list[FieldError] = []
    pools: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(slices):
        spec = as_mapping(s.get("spec"))
        pools.setdefault((str(spec.get("driver")), str(as_mapping(spec.get("pool")).get("name"))), []).append(i)
    for (_, pool_name), members in pools.items():
        gens = {i: as_mapping(as_mapping(slices[i].get("spec")).get("pool")).get("generation", 0) for i in members}
        newest = max((g for g in gens.values() if isinstance(g, int)), default=0)
        current = [i for i in members if gens[i] == newest]
        counters: dict[str, set[str]] = {}
        devices: dict[str, int] = {}
        for i in current:
            spec = as_mapping(slices[i].get("spec"))
            count = as_mapping(spec.get("pool")).get("resourceSliceCount")
            if count != len(current):
                errs.append(
                    invalid(
                        f"items[{i}].spec.pool.resourceSliceCount",
                        count,
                        f"pool {pool_name} has {len(current)} slices at generation {newest}; "
                        "every slice must carry that count",
                    )
                )
            for j, cs in enumerate(spec.get("sharedCounters") or ()):
                name = as_mapping(cs).get("name")
                if not isinstance(name, str):
                    continue
                if name in counters:
                    errs.append(duplicate(f"items[{i}].spec.sharedCounters[{j}].name", name))
                counters.setdefault(name, set()).update(map(str, as_mapping(as_mapping(cs).get("counters"))))
            for j, d in enumerate(spec.get("devices") or ()):
                name = as_mapping(d).get("name")
                if isinstance(name, str):
                    if name in devices:
                        errs.append(duplicate(f"items[{i}].spec.devices[{j}].name", name))
                    devices[name] = i
        for i in current:
            spec = as_mapping(slices[i].get("spec"))
            for j, d in enumerate(spec.get("devices") or ()):
                for k, entry in enumerate(as_mapping(d).get("consumesCounters") or ()):
                    p = f"items[{i}].spec.devices[{j}].consumesCounters[{k}]"
                    set_name = as_mapping(entry).get("counterSet")
                    known = counters.get(set_name) if isinstance(set_name, str) else None
                    if known is None:
                        errs.append(
                            FieldError(
                                CauseType.NOT_FOUND,
                                child(p, "counterSet"),
                                f"Not found: {set_name!r}: no slice of pool {pool_name} defines this counter set",
                            )
                        )
                        continue
                    for cname in as_mapping(as_mapping(entry).get("counters")):
                        if cname not in known:
                            errs.append(
                                FieldError(
                                    CauseType.NOT_FOUND,
                                    key(child(p, "counters"), str(cname)),
                                    f"Not found: counter {cname!r} is not in counter set {set_name!r}",
                                )
                            )
    return errs
