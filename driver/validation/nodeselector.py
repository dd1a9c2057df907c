"""core/v1 NodeSelector validation, as the API server applies it to ResourceSlices and claim allocations.

A slice's ``spec.nodeSelector``, a device's ``nodeSelector`` and a claim's ``status.allocation.nodeSelector``
are matched against Node labels by the scheduler; the API server therefore refuses a selector that could
never match as written: an unknown operator, values that the operator forbids or needs, a key that is not a
label key, or a value that is not a valid label value (the strict form: DRA objects never get the Pod
affinity leniency for old invalid values). ``matchFields`` only knows ``metadata.name`` with one node name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from snn_dra.driver.validation.common import (
    child,
    forbidden,
    index,
    invalid,
    required,
    type_invalid,
    validate_dns_subdomain,
    validate_label_value,
    validate_qualified_key,
)
from snn_dra.driver.validation.errors import FieldError

OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_FIELD_OPERATORS: Final = ("In", "NotIn")
_NODE_NAME_FIELD: Final = "metadata.name"


def validate_node_selector(selector: Any, path: str) -> list[FieldError]:
    """At least one term; every requirement of every term valid (upstream ``ValidateNodeSelector``)."""
    if not isinstance(selector, Mapping):
        return [type_invalid(path, selector, "a NodeSelector object with nodeSelectorTerms")]
    tpath = child(path, "nodeSelectorTerms")
    terms = selector.get("nodeSelectorTerms")
    if not isinstance(terms, list) or not terms:
        return [required(tpath, "must have at least one node selector term")]
    errs: list[FieldError] = []
    for i, term in enumerate(terms):
        p = index(tpath, i)
        if not isinstance(term, Mapping):
            errs.append(type_invalid(p, term, "an object with matchExpressions and/or matchFields"))
            continue
        for j, req in enumerate(term.get("matchExpressions") or ()):
            errs.extend(_label_requirement(req, index(child(p, "matchExpressions"), j)))
        for j, req in enumerate(term.get("matchFields") or ()):
            errs.extend(_field_requirement(req, index(child(p, "matchFields"), j)))
    return errs


def _values(req: Mapping[str, Any]) -> list[Any]:
    values = req.get("values")
    return values if isinstance(values, list) else []


def _label_requirement(req: Any, path: str) -> list[FieldError]:
    if not isinstance(req, Mapping):
        return [type_invalid(path, req, "an object with key, operator and values")]
    errs: list[FieldError] = []
    op, values = req.get("operator"), _values(req)
    vpath = child(path, "values")
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(vpath, "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(vpath, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(required(vpath, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(
            invalid(child(path, "operator"), op, f"not a valid selector operator; use one of {', '.join(OPERATORS)}")
        )
    errs.extend(validate_qualified_key(req.get("key"), child(path, "key"), what="label key"))
    for i, value in enumerate(values):
        errs.extend(validate_label_value(value, index(vpath, i)))
    return errs


def _field_requirement(req: Any, path: str) -> list[FieldError]:
    if not isinstance(req, Mapping):
        return [type_invalid(path, req, "an object with key, operator and values")]
    errs: list[FieldError] = []
    op, values = req.get("operator"), _values(req)
    vpath = child(path, "values")
    if op in _FIELD_OPERATORS:
        if len(values) != 1:
            errs.append(
                required(vpath, "must be only one value when `operator` is 'In' or 'NotIn' for node field selector")
            )
    else:
        errs.append(invalid(child(path, "operator"), op, "not a valid selector operator; use 'In' or 'NotIn'"))
    if req.get("key") != _NODE_NAME_FIELD:
        errs.append(
            invalid(child(path, "key"), req.get("key"), f"not a valid field selector key; use '{_NODE_NAME_FIELD}'")
        )
    else:
        for i, value in enumerate(values):
            errs.extend(validate_dns_subdomain(value, index(vpath, i), what="node name"))
    return errs
