"""DeviceClass validation (resource.k8s.io/v1): selectors, opaque config, extended resource name.

A class's spec is mutable; on update only new or changed selector expressions are compiled and only new or
changed opaque parameters are size-checked, as upstream ("stored" values were accepted once already).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from snn_dra.driver.validation.common import (
    as_mapping,
    check_list,
    child,
    gated,
    index,
    invalid,
    type_invalid,
    validate_qualified_key,
)
from snn_dra.driver.validation.errors import FieldError
from snn_dra.driver.validation.selectors import (
    collect_expressions,
    stored_parameters,
    validate_config_entry,
    validate_selectors,
)

DEVICE_CONFIG_MAX_SIZE = 32
_NATIVE_DOMAIN = re.compile(r"(^|\.)kubernetes\.io$")


def validate_device_class(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    errs: list[FieldError] = []  # object metadata: the API server's generic check (embedded store)
    spec = obj.get("spec")
    if spec is None:
        return errs
    if not isinstance(spec, Mapping):
        return [*errs, type_invalid("spec", spec, "an object")]
    old_spec = as_mapping(old.get("spec")) if old is not None else {}
    stored = collect_expressions(old_spec.get("selectors")) if old is not None else set()
    errs.extend(validate_selectors(spec.get("selectors"), "spec.selectors", stored))
    configs, cerrs = check_list(spec.get("config"), "spec.config", DEVICE_CONFIG_MAX_SIZE, "config entries")
    errs.extend(cerrs)
    stored_params = stored_parameters(old_spec.get("config")) if old is not None else []
    for i, cfg in enumerate(configs):
        errs.extend(validate_config_entry(cfg, index("spec.config", i), stored_params))
    ext = spec.get("extendedResourceName")
    if ext is not None:
        path = "spec.extendedResourceName"
        errs.extend(gated(profile, "DRAExtendedResource", path, True))
        errs.extend(validate_extended_resource_name(ext, path))
    return errs


def validate_extended_resource_name(name: Any, path: str) -> list[FieldError]:
    """An extended resource name: ``domain/name`` outside the kubernetes.io namespace, usable as ``requests.<name>``."""
    if not isinstance(name, str) or not name:
        return [type_invalid(path, name, "a non-empty string such as 'example.com/neuro-core'")]
    errs = validate_qualified_key(name, path, what="extended resource name")
    if "/" not in name:
        errs.append(invalid(path, name, "must be a fully qualified name with a domain, e.g. 'snn.dra.dev/cores'"))
    elif _NATIVE_DOMAIN.search(name.split("/")[0]):
        errs.append(
            invalid(path, name, "must not use the kubernetes.io domain, which is reserved for native resources")
        )
    if name.startswith("requests."):
        errs.append(invalid(path, name, "must not start with 'requests.'"))
    else:
        errs.extend(
            invalid(path, name, f"'requests.{name}' must be a valid quota key: {e.message}")
            for e in validate_qualified_key("requests." + name, child(path, ""), what="quota key")
        )
    return errs
