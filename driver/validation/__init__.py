"""The upstream resource.k8s.io/v1 validation rules, shared by the slice builder and the embedded API server.

``validate_object`` runs the structural schema check of the profile's Kubernetes version (kubernetes-validate,
strict) and then the kind's semantic rules, returning every problem as a FieldError with an upstream-style path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snn_dra.driver.validation.common import gate_overrides
from snn_dra.driver.validation.errors import CauseType, FieldError, ObjectInvalidError
from snn_dra.driver.validation.structural import PROFILES, validate_structure

Validator = Callable[[Mapping[str, Any], "Mapping[str, Any] | None", str], list[FieldError]]


def _validators() -> dict[str, Validator]:
    # Imported lazily: the kind modules import common.py from this package, which must not import them back.
    from snn_dra.driver.validation.claims import validate_resource_claim, validate_resource_claim_template
    from snn_dra.driver.validation.classes import validate_device_class
    from snn_dra.driver.validation.resourceslice import validate_resource_slice
    from snn_dra.driver.validation.taintrules import validate_device_taint_rule

    table: dict[str, Validator] = {
        "DeviceClass": validate_device_class,
        "ResourceClaim": validate_resource_claim,
        "ResourceClaimTemplate": validate_resource_claim_template,
        "DeviceTaintRule": validate_device_taint_rule,
        "ResourceSlice": validate_resource_slice,
    }
    return table


def _core_validators() -> dict[str, Validator]:
    from snn_dra.driver.validation.core import validate_event, validate_namespace, validate_node, validate_pod

    return {"Pod": validate_pod, "Node": validate_node, "Namespace": validate_namespace, "Event": validate_event}


def validate_object(
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    profile: str,
    gates: Mapping[str, bool] | None = None,
) -> list[FieldError]:
    """All FieldErrors of a resource.k8s.io or core/v1 object (create: ``old`` None; update: the stored object).

    Core/v1 covers the kinds the embedded API server stores: Pod, Node, Namespace and Event.

    ``profile`` is the Kubernetes minor version the embedded cluster emulates ("1.34".."1.37"); it selects the
    schema, the limits that changed between versions and the feature gates that are on by default. ``gates``
    (name -> on/off, like ``--feature-gates``) override those defaults for every gate-dependent rule.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown Kubernetes profile {profile!r}; use one of {', '.join(PROFILES)}")
    with gate_overrides(gates):
        return _validate(obj, old, profile)


def _validate(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    errors = validate_structure(obj, profile)
    if any(e.field == "apiVersion" for e in errors):
        return errors
    kind = str(obj.get("kind", ""))
    validator = _core_validators().get(kind) if obj.get("apiVersion") == "v1" else _validators().get(kind)
    if obj.get("apiVersion") not in ("v1", "resource.k8s.io/v1") and kind != "DeviceTaintRule":
        # Older served versions (v1beta1/v1beta2) have other shapes; only their schema is checked here.
        return errors
    if validator is None:
        errors.append(
            FieldError(
                CauseType.NOT_SUPPORTED, "kind", f"Unsupported value: {kind!r}: no validation rules for this kind"
            )
        )
        return errors
    # One report per field: a schema error (wrong type, unknown field) already says what is wrong there.
    schema_fields = {e.field for e in errors}
    try:
        found = validator(obj, old, profile)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        # The rules read the schema's shapes; on an object the schema refused, its errors are the answer.
        if any(not e.message.startswith("unknown field") for e in errors):
            return errors
        raise
    errors.extend(e for e in found if e.field not in schema_fields)
    return errors


__all__ = ["CauseType", "FieldError", "ObjectInvalidError", "validate_object"]
