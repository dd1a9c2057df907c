"""Structural (schema) validation with the published OpenAPI-derived JSON schemas for each Kubernetes version.

kubernetes-validate ships strict schemas (unknown fields rejected) per minor version; we build one validator per
(version, kind, apiVersion) and keep it, because loading the 1.8 MB definitions file costs far more than validating.
Every schema violation is reported (not just the first), with an upstream-style field path.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import referencing
from kubernetes_validate import utils as kv_utils

from snn_dra.driver.validation.errors import CauseType, FieldError

PROFILES = ("1.34", "1.35", "1.36", "1.37")
_lock = threading.Lock()
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Only the integer widths are checked: JSON numbers have no size limit, but the API server decodes these fields
# into Go int32/int64, so a larger number is refused there (and would break typed clients if it were stored).
_FORMATS = jsonschema.FormatChecker(formats=())


def _fits(width: str) -> Any:
    low, high = _INT_RANGES[width]

    def check(value: object) -> bool:
        return not isinstance(value, int) or isinstance(value, bool) or low <= value <= high

    return check


for _width in _INT_RANGES:
    _FORMATS.checks(_width)(_fits(_width))


def schema_version(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown Kubernetes profile {profile!r}; use one of {', '.join(PROFILES)}")
    return f"{profile}.0"


@lru_cache(maxsize=8)
def _definitions(version: str) -> Any:
    return kv_utils.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version)


@lru_cache(maxsize=64)
def _validator(version: str, kind: str, api_version: str) -> Any | None:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv_utils.schema_contents(
            f"kubernetes-json-schema/v{version}-local-strict/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        return None
    registry: referencing.Registry[Any] = referencing.Registry()
    registry = referencing.Resource.from_contents(schema) @ registry
    registry = referencing.Resource.from_contents(_definitions(version)) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry, format_checker=_FORMATS)


def format_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else str(p)
    return out


def validate_structure(obj: Mapping[str, Any], profile: str) -> list[FieldError]:
    """Schema errors of ``obj`` for Kubernetes ``profile``; an unserved kind/apiVersion is one error on apiVersion."""
    version = schema_version(profile)
    kind = str(obj.get("kind", ""))
    api_version = str(obj.get("apiVersion", ""))
    if not kind or not api_version:
        missing = "kind" if not kind else "apiVersion"
        return [FieldError(CauseType.REQUIRED, missing, f"Required value: {missing} must be set")]
    with _lock:
        validator = _validator(version, kind, api_version)
    if validator is None:
        return [
            FieldError(
                CauseType.NOT_SUPPORTED,
                "apiVersion",
                f"Unsupported value: {api_version} {kind} is not served by Kubernetes {profile}; "
                "use an apiVersion this version serves (resource.k8s.io/v1 for DRA objects since 1.34)",
            )
        ]
    errors: list[FieldError] = []
    for err in sorted(validator.iter_errors(dict(obj)), key=lambda e: list(map(str, e.absolute_path))):
        errors.extend(_to_field_errors(err))
    return errors


def _to_field_errors(err: Any) -> list[FieldError]:
    path = format_path(err.absolute_path)
    if err.context:
        best = jsonschema.exceptions.best_match(err.context)
        if best is not None and best is not err:
            return _to_field_errors(best)
    validator = err.validator
    if validator == "additionalProperties" and isinstance(err.instance, Mapping):
        known = set(err.schema.get("properties", {}))
        extras = [k for k in err.instance if k not in known] or ["?"]
        return [
            FieldError(
                CauseType.INVALID,
                f"{path}.{k}" if path else k,
                f'unknown field "{k}": not part of the schema; check the spelling (fields are camelCase)',
            )
            for k in extras
        ]
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        name = missing[0] if missing else "?"
        return [FieldError(CauseType.REQUIRED, f"{path}.{name}" if path else name, "Required value")]
    if validator == "type":
        expected = err.validator_value
        want = " or ".join(t for t in expected if t != "null") if isinstance(expected, list) else str(expected)
        return [
            FieldError(
                CauseType.TYPE_INVALID,
                path or "<root>",
                f"Invalid value: {_short(err.instance)}: must be of type {want}",
            )
        ]
    if validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in err.validator_value if v is not None)
        return [
            FieldError(
                CauseType.NOT_SUPPORTED,
                path or "<root>",
                f"Unsupported value: {_short(err.instance)}: supported values: {allowed}",
            )
        ]
    if validator == "format" and err.validator_value in _INT_RANGES:
        low, high = _INT_RANGES[err.validator_value]
        return [
            FieldError(
                CauseType.INVALID,
                path or "<root>",
                f"Invalid value: {_short(err.instance)}: must fit in a signed {err.validator_value[3:]}-bit "
                f"integer ({low} to {high})",
            )
        ]
    return [FieldError(CauseType.INVALID, path or "<root>", f"Invalid value: {err.message}")]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
