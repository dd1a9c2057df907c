"""Admin access needs the namespace's consent: the label ``resource.kubernetes.io/admin-access: "true"``.

``adminAccess: true`` lets a claim reach devices that are already in use (for monitoring or maintenance), so
upstream's API server lets only namespaces an administrator labelled ask for it. It checks when a claim or
template is created (the spec is immutable after that) and when a claim's status first records an
allocation with admin access. The refusal is a ``Forbidden`` field error inside the usual 422 Invalid, at
``spec.devices.requests[i].adminAccess`` (for templates too) or ``status.allocation.devices.results[i].adminAccess``.

The namespace is looked up only when admin access is asked for, through ``labels_of`` (None: no such namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from snn_dra.driver.validation.common import as_mapping
from snn_dra.driver.validation.errors import CauseType, FieldError

ADMIN_ACCESS_LABEL: Final = "resource.kubernetes.io/admin-access"

LabelsOf = Callable[[str], "Mapping[str, str] | None"]


def admin_access_errors(
    kind: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None, labels_of: LabelsOf
) -> list[FieldError]:
    """The refusal for a ResourceClaim or ResourceClaimTemplate write whose namespace does not allow admin access."""
    if kind == "ResourceClaim":
        path = _spec_request(as_mapping(obj.get("spec"))) if old is None else _status_result(obj, old)
    elif kind == "ResourceClaimTemplate" and old is None:
        path = _spec_request(as_mapping(as_mapping(obj.get("spec")).get("spec")))
    else:
        return []
    if path is None:
        return []
    namespace = str(as_mapping(obj.get("metadata")).get("namespace") or "")
    labels = labels_of(namespace)
    if labels is None:
        return [
            FieldError(
                CauseType.INTERNAL,
                path,
                f"Internal error: could not retrieve namespace {namespace!r} to verify admin access",
            )
        ]
    if labels.get(ADMIN_ACCESS_LABEL) == "true":
        return []
    return [
        FieldError(
            CauseType.FORBIDDEN,
            path,
            f"Forbidden: admin access to devices requires the `{ADMIN_ACCESS_LABEL}: true` label on the "
            f"containing namespace; ask a cluster administrator to run "
            f"`kubectl label namespace {namespace} {ADMIN_ACCESS_LABEL}=true`, or drop adminAccess",
        )
    ]


def _entries(value: Any) -> list[Any]:
    """A list field's entries; anything else has none here (admission runs before the schema check that reports a
    wrong type with a 422, so it must not fail on one itself)."""
    return value if isinstance(value, list) else []


def _spec_request(spec: Mapping[str, Any]) -> str | None:
    """Path of the first request asking for admin access (only ``exactly`` requests can)."""
    for i, req in enumerate(_entries(as_mapping(spec.get("devices")).get("requests"))):
        exact = as_mapping(req).get("exactly")
        if as_mapping(exact).get("adminAccess") is True:
            return f"spec.devices.requests[{i}].adminAccess"
    return None


def _admin_result(status: Any, prefix: str) -> str | None:
    allocation = as_mapping(as_mapping(status).get("allocation"))
    for i, res in enumerate(_entries(as_mapping(allocation.get("devices")).get("results"))):
        if as_mapping(res).get("adminAccess") is True:
            return f"{prefix}[{i}].adminAccess"
    return None


def _status_result(obj: Mapping[str, Any], old: Mapping[str, Any]) -> str | None:
    """A newly recorded allocation with admin access (an allocation granted before is immutable: not re-checked)."""
    results = "status.allocation.devices.results"
    if _admin_result(old.get("status"), results) is not None:
        return None
    return _admin_result(obj.get("status"), results)
