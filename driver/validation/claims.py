"""ResourceClaim and ResourceClaimTemplate validation (resource.k8s.io/v1), spec and status, as the API server.

Rules and limits: docs/resource-api.md §1.3, §1.4, §2. Paths match upstream's (``spec.devices.requests[0]
.exactly.selectors[1].cel.expression``). The claim spec is immutable; on update only status rules and the
immutability check apply to it, so stored selectors are never recompiled.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from snn_dra.driver.validation.common import (
    OPAQUE_PARAMETERS_MAX_LENGTH,
    as_mapping,
    check_list,
    child,
    duplicate,
    forbidden,
    gate_enabled,
    gated,
    index,
    invalid,
    key,
    not_supported,
    required,
    too_long,
    type_invalid,
    validate_annotations,
    validate_conditions,
    validate_dns_label,
    validate_dns_subdomain,
    validate_driver_name,
    validate_fully_qualified_name,
    validate_label_value,
    validate_labels,
    validate_pool_name,
    validate_qualified_key,
    validate_qualified_name,
    validate_quantity,
    validate_uuid,
)
from snn_dra.driver.validation.errors import CauseType, FieldError
from snn_dra.driver.validation.nodeselector import validate_node_selector
from snn_dra.driver.validation.selectors import (
    stored_parameters,
    validate_config_entry,
    validate_selectors,
)

DEVICE_REQUESTS_MAX_SIZE = 32
FIRST_AVAILABLE_MAX_SIZE = 8
DEVICE_CONSTRAINTS_MAX_SIZE = 32
DEVICE_CONFIG_MAX_SIZE = 32
DEVICE_TOLERATIONS_MAX_LENGTH = 16
ALLOCATION_RESULTS_MAX_SIZE = 32
ALLOCATION_CONFIG_MAX_SIZE = 64
RESERVED_FOR_MAX_SIZE = 256
DEVICE_STATUS_MAX_CONDITIONS = 8
DEVICE_STATUS_DATA_MAX_LENGTH = 10 * 1024
NETWORK_MAX_IPS = 16
NETWORK_INTERFACE_NAME_MAX_LENGTH = 256
NETWORK_HARDWARE_ADDRESS_MAX_LENGTH = 128
BINDING_CONDITIONS_MAX_SIZE = 4

ALLOCATION_MODES = ["ExactCount", "All"]
TOLERATION_OPERATORS = ["Exists", "Equal"]
CONFIG_SOURCES = ["FromClass", "FromClaim"]

RequestNames = dict[str, set[str]]  # request name -> its subrequest names (empty for ``exactly``)


# ---- entry points --------------------------------------------------------------------------------------


def immutable(path: str, value: Any) -> FieldError:
    """Upstream's wording (the full value, then "field is immutable"); the embedded store reports the same."""
    return FieldError(
        CauseType.INVALID, path, f"Invalid value: {json.dumps(value, sort_keys=True)}: field is immutable"
    )


def validate_resource_claim(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    """Object metadata is the API server's generic check (embedded store), not repeated here."""
    spec = obj.get("spec")
    if old is not None and spec != old.get("spec"):
        # A spec change is rejected outright; status rules would only report follow-on noise.
        return [immutable("spec", spec)]
    errs = validate_claim_spec(spec, "spec", profile) if old is None else []
    status = obj.get("status")
    old_status = old.get("status") if old is not None else None
    if status is not None and status != old_status:
        deleted = old is not None and bool(as_mapping(old.get("metadata")).get("deletionTimestamp"))
        errs.extend(
            validate_claim_status(status, as_mapping(old_status), request_names(spec), profile, deleted=deleted)
        )
    return errs


def validate_resource_claim_template(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str
) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return [required("spec", "a template spec with spec.devices is required")]
    if old is not None:
        return [immutable("spec", spec)] if spec != old.get("spec") else []
    errs: list[FieldError] = []
    meta = spec.get("metadata")
    if meta is not None:
        m = as_mapping(meta)
        for field in m:
            if field not in ("labels", "annotations"):
                errs.append(forbidden(child("spec.metadata", field), "only labels and annotations may be set here"))
        errs.extend(validate_labels(m.get("labels"), "spec.metadata.labels"))
        errs.extend(validate_annotations(m.get("annotations"), "spec.metadata.annotations"))
    errs.extend(validate_claim_spec(spec.get("spec"), "spec.spec", profile))
    return errs


# ---- spec ---------------------------------------------------------------------------------------------


def request_names(spec: Any) -> RequestNames:
    names: RequestNames = {}
    for req in as_mapping(as_mapping(spec).get("devices")).get("requests") or []:
        r = as_mapping(req)
        if isinstance(r.get("name"), str):
            subs = {str(as_mapping(s).get("name")) for s in r.get("firstAvailable") or [] if as_mapping(s).get("name")}
            names[r["name"]] = subs
    return names


def validate_claim_spec(spec: Any, path: str, profile: str) -> list[FieldError]:
    """``ResourceClaimSpec`` on create (it is immutable, so nothing in it is ever "stored" and every selector
    is compiled and every parameter size-checked)."""
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        return [type_invalid(path, spec, "an object")]
    devices = spec.get("devices")
    if devices is None:
        return []
    dpath = child(path, "devices")
    if not isinstance(devices, Mapping):
        return [type_invalid(dpath, devices, "an object")]
    stored: set[str] = set()

    requests, errs = check_list(devices.get("requests"), child(dpath, "requests"), DEVICE_REQUESTS_MAX_SIZE, "requests")
    seen: set[str] = set()
    for i, req in enumerate(requests):
        rpath = index(child(dpath, "requests"), i)
        errs.extend(validate_device_request(req, rpath, profile, stored))
        name = as_mapping(req).get("name")
        if isinstance(name, str) and name:
            if name in seen:
                errs.append(duplicate(rpath, name))  # upstream: at the entry, keyed by name
            seen.add(name)
    names = request_names(spec)

    constraints, cerrs = check_list(
        devices.get("constraints"), child(dpath, "constraints"), DEVICE_CONSTRAINTS_MAX_SIZE, "constraints"
    )
    errs.extend(cerrs)
    for i, c in enumerate(constraints):
        errs.extend(validate_constraint(c, index(child(dpath, "constraints"), i), names, profile))

    configs, ferrs = check_list(devices.get("config"), child(dpath, "config"), DEVICE_CONFIG_MAX_SIZE, "config entries")
    errs.extend(ferrs)
    stored_params: list[Any] = []
    for i, cfg in enumerate(configs):
        errs.extend(
            validate_config_entry(
                cfg,
                index(child(dpath, "config"), i),
                stored_params,
                extra=lambda c, p: validate_request_refs(c.get("requests"), child(p, "requests"), names),
            )
        )
    return errs


def validate_device_request(req: Any, path: str, profile: str, stored: set[str]) -> list[FieldError]:
    if not isinstance(req, Mapping):
        return [type_invalid(path, req, "an object")]
    errs = validate_dns_label(req.get("name"), child(path, "name"), what="request name")
    exactly, first = req.get("exactly"), req.get("firstAvailable")
    if exactly is None and first is None:
        errs.append(required(path, "exactly one of `exactly` or `firstAvailable` is required"))
    elif exactly is not None and first is not None:
        errs.append(invalid(path, "<request>", "exactly one of `exactly` or `firstAvailable` is required, not both"))
    if exactly is not None:
        errs.extend(validate_exact_request(exactly, child(path, "exactly"), profile, stored, allow_admin=True))
    if first is not None:
        fpath = child(path, "firstAvailable")
        subs, serrs = check_list(first, fpath, FIRST_AVAILABLE_MAX_SIZE, "subrequests")
        errs.extend(serrs)
        errs.extend(gated(profile, "DRAPrioritizedList", fpath, True))
        if isinstance(first, list) and not first:
            errs.append(required(fpath, "at least one subrequest is required"))
        seen: set[str] = set()
        for i, sub in enumerate(subs):
            spath = index(fpath, i)
            if not isinstance(sub, Mapping):
                errs.append(type_invalid(spath, sub, "an object"))
                continue
            name = sub.get("name")
            errs.extend(validate_dns_label(name, child(spath, "name"), what="subrequest name"))
            if isinstance(name, str) and name:
                if name in seen:
                    errs.append(duplicate(spath, name))
                seen.add(name)
            errs.extend(validate_exact_request(sub, spath, profile, stored, allow_admin=False))
    return errs


def validate_exact_request(
    req: Any, path: str, profile: str, stored: set[str], *, allow_admin: bool
) -> list[FieldError]:
    """The fields an ``exactly`` request and a ``firstAvailable`` subrequest share."""
    if not isinstance(req, Mapping):
        return [type_invalid(path, req, "an object")]
    errs = validate_dns_subdomain(req.get("deviceClassName"), child(path, "deviceClassName"), what="device class name")
    errs.extend(validate_selectors(req.get("selectors"), child(path, "selectors"), stored))
    mode = req.get("allocationMode") or "ExactCount"
    count = req.get("count")
    if mode not in ALLOCATION_MODES:
        errs.append(not_supported(child(path, "allocationMode"), mode, ALLOCATION_MODES))
    elif mode == "ExactCount":
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count <= 0):
            errs.append(
                invalid(child(path, "count"), count, "must be greater than zero when allocationMode is ExactCount")
            )
    elif count not in (None, 0):
        errs.append(
            invalid(child(path, "count"), count, "must not be specified when allocationMode is All; remove count")
        )
    if "adminAccess" in req and req["adminAccess"] is not None:
        if not allow_admin:
            errs.append(forbidden(child(path, "adminAccess"), "not supported in a firstAvailable subrequest"))
        elif not isinstance(req["adminAccess"], bool):
            errs.append(type_invalid(child(path, "adminAccess"), req["adminAccess"], "a boolean"))
    tolerations = req.get("tolerations")
    errs.extend(gated(profile, "DRADeviceTaints", child(path, "tolerations"), bool(tolerations)))
    errs.extend(validate_tolerations(tolerations, child(path, "tolerations")))
    capacity = req.get("capacity")
    if capacity is not None:
        cpath = child(path, "capacity")
        errs.extend(gated(profile, "DRAConsumableCapacity", cpath, True))
        errs.extend(validate_capacity_map(as_mapping(capacity).get("requests"), child(cpath, "requests")))
    return errs


def validate_capacity_map(value: Any, path: str) -> list[FieldError]:
    """``{QualifiedName: Quantity}`` (capacity requests, consumed capacity)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [type_invalid(path, value, "a map of capacity name to quantity")]
    errs: list[FieldError] = []
    for name, q in value.items():
        errs.extend(validate_qualified_name(name, path))
        errs.extend(validate_quantity(q, key(path, str(name)), non_negative=True))
    return errs


def validate_tolerations(value: Any, path: str) -> list[FieldError]:
    tolerations, errs = check_list(value, path, DEVICE_TOLERATIONS_MAX_LENGTH, "tolerations")
    for i, tol in enumerate(tolerations):
        errs.extend(validate_toleration(tol, index(path, i)))
    return errs


def validate_toleration(tol: Any, path: str) -> list[FieldError]:
    if not isinstance(tol, Mapping):
        return [type_invalid(path, tol, "an object")]
    errs: list[FieldError] = []
    k = tol.get("key")
    if k:
        errs.extend(validate_qualified_key(k, child(path, "key"), what="toleration key"))
    op = tol.get("operator") or "Equal"
    value = tol.get("value")
    if op not in TOLERATION_OPERATORS:
        errs.append(not_supported(child(path, "operator"), op, TOLERATION_OPERATORS))
    elif op == "Exists":
        if value:
            errs.append(invalid(child(path, "value"), value, "must be empty when operator is Exists"))
    elif value:
        # Upstream accepts an empty key with Equal (it matches the value under any key) and ignores
        # tolerationSeconds unless the effect is NoExecute: neither is an error.
        errs.extend(validate_label_value(value, child(path, "value")))
    effect = tol.get("effect")
    if effect not in (None, "", "NoSchedule", "NoExecute", "None"):
        errs.append(not_supported(child(path, "effect"), effect, ["NoSchedule", "NoExecute", "None"]))
    return errs


def validate_request_refs(value: Any, path: str, names: RequestNames) -> list[FieldError]:
    """``requests: [name | name/subrequest]`` of constraints and config: unique, each naming a request."""
    refs, errs = check_list(value, path, DEVICE_REQUESTS_MAX_SIZE, "request references")
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        errs.extend(validate_request_ref(ref, index(path, i), names))
        if isinstance(ref, str):
            if ref in seen:
                errs.append(duplicate(index(path, i), ref))
            seen.add(ref)
    return errs


def validate_request_ref(ref: Any, path: str, names: RequestNames) -> list[FieldError]:
    if not isinstance(ref, str) or not ref:
        return [required(path, "a request name is required")]
    parts = ref.split("/")
    if len(parts) > 2 or not all(parts):
        return [
            invalid(
                path,
                ref,
                "must be the name of a request in the claim, or a request and a subrequest separated by '/'",
            )
        ]
    if parts[0] not in names:
        known = ", ".join(sorted(names)) or "none"
        return [invalid(path, ref, f"must be the name of a request in the claim (requests: {known})")]
    if len(parts) == 2 and parts[1] not in names[parts[0]]:
        known = ", ".join(sorted(names[parts[0]])) or "none"
        return [invalid(path, ref, f"must be the name of a subrequest of {parts[0]!r} (subrequests: {known})")]
    return []


def validate_constraint(c: Any, path: str, names: RequestNames, profile: str) -> list[FieldError]:
    if not isinstance(c, Mapping):
        return [type_invalid(path, c, "an object")]
    errs = validate_request_refs(c.get("requests"), child(path, "requests"), names)
    match, distinct = c.get("matchAttribute"), c.get("distinctAttribute")
    if match is None and distinct is None:
        if gate_enabled(profile, "DRAConsumableCapacity"):
            errs.append(required(path, "exactly one of `matchAttribute` or `distinctAttribute` is required"))
        else:  # without distinctAttribute there is only one field to name
            errs.append(required(child(path, "matchAttribute"), "a fully qualified attribute name is required"))
    elif match is not None and distinct is not None:
        errs.append(invalid(path, "<constraint>", "exactly one of `matchAttribute` or `distinctAttribute` is required"))
    if match is not None:
        errs.extend(validate_fully_qualified_name(match, child(path, "matchAttribute")))
    if distinct is not None:
        errs.extend(gated(profile, "DRAConsumableCapacity", child(path, "distinctAttribute"), True))
        errs.extend(validate_fully_qualified_name(distinct, child(path, "distinctAttribute")))
    return errs


# ---- status -------------------------------------------------------------------------------------------


def _device_id(d: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (str(d.get("driver", "")), str(d.get("pool", "")), str(d.get("device", "")), str(d.get("shareID") or ""))


def validate_claim_status(
    status: Any, old_status: Mapping[str, Any], names: RequestNames, profile: str, *, deleted: bool = False
) -> list[FieldError]:
    """Status rules; an allocation already stored is only checked for immutability, never validated again
    (rules for new allocations may be stricter than when it was written). ``deleted``: the stored claim has a
    deletionTimestamp, so consumers may leave ``reservedFor`` but none may join."""
    if not isinstance(status, Mapping):
        return [type_invalid("status", status, "an object")]
    errs: list[FieldError] = []
    allocation = status.get("allocation")
    old_allocation = old_status.get("allocation")
    reserved = status.get("reservedFor") or []
    if allocation is not None and old_allocation is not None and allocation != old_allocation:
        errs.append(
            invalid(
                "status.allocation", "<allocation>", "field is immutable once set; deallocate (set it to null) first"
            )
        )
    if old_allocation is not None and allocation is None and reserved:
        errs.append(forbidden("status.allocation", "may not be cleared while status.reservedFor is not empty"))
    if reserved and allocation is None:
        errs.append(forbidden("status.reservedFor", "may not be set while the claim is not allocated"))
    elif reserved and deleted and isinstance(reserved, list):
        before = {json.dumps(r, sort_keys=True) for r in old_status.get("reservedFor") or []}
        if any(json.dumps(r, sort_keys=True) not in before for r in reserved):
            errs.append(
                forbidden(
                    "status.reservedFor",
                    "new entries may not be added while `deallocationRequested` or `deletionTimestamp` are set "
                    "(the claim is being deleted)",
                )
            )
    allocated: set[tuple[str, str, str, str]] = set()
    if allocation is not None and old_allocation is None:
        errs.extend(validate_allocation(allocation, "status.allocation", names, profile, old_allocation))
    if allocation is not None:
        for r in as_mapping(as_mapping(allocation).get("devices")).get("results") or []:
            if isinstance(r, Mapping):
                allocated.add(_device_id(r))
    errs.extend(validate_reserved_for(status.get("reservedFor"), "status.reservedFor"))
    errs.extend(validate_devices_status(status.get("devices"), "status.devices", allocated, profile))
    return errs


def validate_allocation(
    allocation: Any, path: str, names: RequestNames, profile: str, old_allocation: Any
) -> list[FieldError]:
    if not isinstance(allocation, Mapping):
        return [type_invalid(path, allocation, "an object")]
    devices = as_mapping(allocation.get("devices"))
    dpath = child(path, "devices")
    results, errs = check_list(devices.get("results"), child(dpath, "results"), ALLOCATION_RESULTS_MAX_SIZE, "results")
    for i, r in enumerate(results):
        errs.extend(validate_allocation_result(r, index(child(dpath, "results"), i), names, profile))
    configs, cerrs = check_list(
        devices.get("config"), child(dpath, "config"), ALLOCATION_CONFIG_MAX_SIZE, "allocation config entries"
    )
    errs.extend(cerrs)
    stored = stored_parameters(as_mapping(as_mapping(old_allocation).get("devices")).get("config"))

    def source_and_refs(cfg: Mapping[str, Any], p: str) -> list[FieldError]:
        out: list[FieldError] = []
        source = cfg.get("source")
        if not source:
            out.append(required(child(p, "source"), "FromClass or FromClaim"))
        elif source not in CONFIG_SOURCES:
            out.append(not_supported(child(p, "source"), source, CONFIG_SOURCES))
        out.extend(validate_request_refs(cfg.get("requests"), child(p, "requests"), names))
        return out

    for i, cfg in enumerate(configs):
        errs.extend(validate_config_entry(cfg, index(child(dpath, "config"), i), stored, extra=source_and_refs))
    if allocation.get("nodeSelector") is not None:
        errs.extend(validate_node_selector(allocation["nodeSelector"], child(path, "nodeSelector")))
    return errs


def validate_allocation_result(r: Any, path: str, names: RequestNames, profile: str) -> list[FieldError]:
    if not isinstance(r, Mapping):
        return [type_invalid(path, r, "an object")]
    errs = validate_request_ref(r.get("request"), child(path, "request"), names)
    errs.extend(validate_driver_name(r.get("driver"), child(path, "driver")))
    errs.extend(validate_pool_name(r.get("pool"), child(path, "pool")))
    errs.extend(validate_dns_label(r.get("device"), child(path, "device"), what="device name"))
    if r.get("adminAccess") is not None and not isinstance(r["adminAccess"], bool):
        errs.append(type_invalid(child(path, "adminAccess"), r["adminAccess"], "a boolean"))
    tolerations = r.get("tolerations")
    errs.extend(gated(profile, "DRADeviceTaints", child(path, "tolerations"), bool(tolerations)))
    errs.extend(validate_tolerations(tolerations, child(path, "tolerations")))
    if r.get("shareID") is not None:
        errs.extend(gated(profile, "DRAConsumableCapacity", child(path, "shareID"), True))
        errs.extend(validate_uuid(r["shareID"], child(path, "shareID")))
    if r.get("consumedCapacity") is not None:
        errs.extend(gated(profile, "DRAConsumableCapacity", child(path, "consumedCapacity"), True))
        errs.extend(validate_capacity_map(r["consumedCapacity"], child(path, "consumedCapacity")))
    errs.extend(validate_binding_conditions(r, path, profile))
    skip = r.get("skipNodeOperations")
    if skip:
        errs.extend(gated(profile, "DRAOptionalNodeOperations", child(path, "skipNodeOperations"), True))
    return errs


def validate_binding_conditions(obj: Mapping[str, Any], path: str, profile: str) -> list[FieldError]:
    """bindingConditions / bindingFailureConditions: ≤ 4 each, both or neither, no overlap, label-key syntax."""
    bc, bf = obj.get("bindingConditions"), obj.get("bindingFailureConditions")
    errs: list[FieldError] = []
    if not bc and not bf:
        return errs
    errs.extend(gated(profile, "DRADeviceBindingConditions", child(path, "bindingConditions"), True))
    lists: dict[str, list[Any]] = {}
    for field, value in (("bindingConditions", bc), ("bindingFailureConditions", bf)):
        items, lerrs = check_list(value, child(path, field), BINDING_CONDITIONS_MAX_SIZE, "conditions")
        errs.extend(lerrs)
        lists[field] = items
        seen: set[str] = set()
        for i, cond in enumerate(items):
            errs.extend(validate_qualified_key(cond, index(child(path, field), i), what="condition type"))
            if isinstance(cond, str):
                if cond in seen:
                    errs.append(duplicate(index(child(path, field), i), cond))
                seen.add(cond)
    if bool(lists["bindingConditions"]) != bool(lists["bindingFailureConditions"]):
        missing = "bindingFailureConditions" if lists["bindingConditions"] else "bindingConditions"
        errs.append(required(child(path, missing), "bindingConditions and bindingFailureConditions go together"))
    overlap = {c for c in lists["bindingConditions"] if isinstance(c, str)} & {
        c for c in lists["bindingFailureConditions"] if isinstance(c, str)
    }
    for cond in sorted(overlap):
        errs.append(
            invalid(child(path, "bindingFailureConditions"), cond, "must not also be listed in bindingConditions")
        )
    return errs


def validate_reserved_for(value: Any, path: str) -> list[FieldError]:
    refs, errs = check_list(value, path, RESERVED_FOR_MAX_SIZE, "consumers")
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        p = index(path, i)
        if not isinstance(ref, Mapping):
            errs.append(type_invalid(p, ref, "an object"))
            continue
        for field in ("resource", "name", "uid"):
            if not ref.get(field):
                errs.append(required(child(p, field), f"the consumer's {field} is required"))
        uid = ref.get("uid")
        if isinstance(uid, str) and uid:
            if uid in seen:
                errs.append(duplicate(child(p, "uid"), uid))
            seen.add(uid)
    return errs


def validate_devices_status(
    value: Any, path: str, allocated: set[tuple[str, str, str, str]], profile: str
) -> list[FieldError]:
    entries, errs = check_list(value, path)
    if entries:
        errs.extend(gated(profile, "DRAResourceClaimDeviceStatus", path, True))
    seen: set[tuple[str, str, str, str]] = set()
    for i, d in enumerate(entries):
        p = index(path, i)
        if not isinstance(d, Mapping):
            errs.append(type_invalid(p, d, "an object"))
            continue
        errs.extend(validate_driver_name(d.get("driver"), child(p, "driver")))
        errs.extend(validate_pool_name(d.get("pool"), child(p, "pool")))
        errs.extend(validate_dns_label(d.get("device"), child(p, "device"), what="device name"))
        if d.get("shareID") is not None:
            errs.extend(gated(profile, "DRAConsumableCapacity", child(p, "shareID"), True))
            errs.extend(validate_uuid(d["shareID"], child(p, "shareID")))
        ident = _device_id(d)
        if ident in seen:
            errs.append(duplicate(p, "/".join(x for x in ident if x)))
        seen.add(ident)
        if ident not in allocated:
            errs.append(
                invalid(
                    p,
                    "/".join(x for x in ident if x),
                    "must be an allocated device in the claim (driver, pool, device and shareID of a "
                    "status.allocation.devices.results entry)",
                )
            )
        errs.extend(validate_conditions(d.get("conditions"), child(p, "conditions"), DEVICE_STATUS_MAX_CONDITIONS))
        data = d.get("data")
        if data is not None:
            if not isinstance(data, Mapping):
                errs.append(invalid(child(p, "data"), data, "must be a JSON object"))
            else:
                size = len(json.dumps(data, separators=(",", ":")).encode())
                if size > DEVICE_STATUS_DATA_MAX_LENGTH:
                    errs.append(
                        FieldError(
                            CauseType.TOO_LONG,
                            child(p, "data"),
                            f"Too long: data is {size} bytes, must have at most {DEVICE_STATUS_DATA_MAX_LENGTH} bytes",
                        )
                    )
        if d.get("networkData") is not None:
            errs.extend(validate_network_data(d["networkData"], child(p, "networkData")))
    return errs


def validate_network_data(nd: Any, path: str) -> list[FieldError]:
    if not isinstance(nd, Mapping):
        return [type_invalid(path, nd, "an object")]
    errs: list[FieldError] = []
    name = nd.get("interfaceName")
    if isinstance(name, str) and len(name) > NETWORK_INTERFACE_NAME_MAX_LENGTH:
        errs.append(too_long(child(path, "interfaceName"), name, NETWORK_INTERFACE_NAME_MAX_LENGTH))
    hw = nd.get("hardwareAddress")
    if isinstance(hw, str) and len(hw) > NETWORK_HARDWARE_ADDRESS_MAX_LENGTH:
        errs.append(too_long(child(path, "hardwareAddress"), hw, NETWORK_HARDWARE_ADDRESS_MAX_LENGTH))
    ips, ierrs = check_list(nd.get("ips"), child(path, "ips"), NETWORK_MAX_IPS, "IPs")
    errs.extend(ierrs)
    seen: set[str] = set()
    for i, ip in enumerate(ips):
        p = index(child(path, "ips"), i)
        try:
            if not isinstance(ip, str) or "/" not in ip:
                raise ValueError(ip)
            ipaddress.ip_interface(ip)
        except ValueError:
            errs.append(invalid(p, ip, "must be a valid CIDR value (e.g. 10.9.8.7/24 or 2001:db8::/64)"))
            continue
        if ip in seen:
            errs.append(duplicate(p, ip))
        seen.add(ip)
    return errs


__all__ = [
    "OPAQUE_PARAMETERS_MAX_LENGTH",
    "validate_claim_spec",
    "validate_claim_status",
    "validate_resource_claim",
    "validate_resource_claim_template",
]
