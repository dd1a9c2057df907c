"""DeviceTaintRule validation (basic): device selector fields and the taint itself.

DeviceTaintRule is served as resource.k8s.io/v1 from 1.37 (v1beta2/v1alpha3 earlier, same spec shape here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snn_dra.driver.validation.common import (
    as_mapping,
    required,
    same_taint,
    type_invalid,
    validate_conditions,
    validate_device_taint,
    validate_dns_label,
    validate_driver_name,
    validate_pool_name,
)
from snn_dra.driver.validation.errors import FieldError

DEVICE_TAINT_RULE_STATUS_MAX_CONDITIONS = 8


def validate_device_taint_rule(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    errs: list[FieldError] = []  # object metadata: the API server's generic check (embedded store)
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return [*errs, required("spec", "spec.taint is required")]
    selector = spec.get("deviceSelector")
    if selector is not None:
        if not isinstance(selector, Mapping):
            errs.append(type_invalid("spec.deviceSelector", selector, "an object"))
        else:
            if selector.get("driver"):
                errs.extend(validate_driver_name(selector["driver"], "spec.deviceSelector.driver"))
            if selector.get("pool"):
                errs.extend(validate_pool_name(selector["pool"], "spec.deviceSelector.pool"))
            if selector.get("device"):
                errs.extend(validate_dns_label(selector["device"], "spec.deviceSelector.device", what="device name"))
    old_taint = as_mapping(old.get("spec")).get("taint") if old is not None else None
    if spec.get("taint") is None:
        errs.append(required("spec.taint", "a taint with key and effect is required"))
    elif old_taint is None or not same_taint(old_taint, spec["taint"]):  # a stored taint is not checked again
        errs.extend(validate_device_taint(spec["taint"], "spec.taint", profile))
    status = as_mapping(obj.get("status"))
    errs.extend(
        validate_conditions(status.get("conditions"), "status.conditions", DEVICE_TAINT_RULE_STATUS_MAX_CONDITIONS)
    )
    return errs
