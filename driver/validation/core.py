"""The upstream rules for the core/v1 kinds the embedded API server stores (Pod, Node, Namespace, Event).

The schema (kubernetes-validate, strict) already rejects wrong types, unknown fields and missing required fields;
these are the semantic rules of ``k8s.io/kubernetes/pkg/apis/core/validation`` that the embedded cluster's loops
rely on (container and pod-claim names, claim references, taints, the event's namespace), so that a Pod which would
be refused by a real cluster is refused here too, instead of being stored and tripping up the scheduler or the
kubelet emulation later. Object metadata is checked by the API server's generic metadata rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snn_dra.driver.validation.common import (
    as_mapping,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    not_supported,
    required,
    validate_dns_label,
    validate_dns_subdomain,
    validate_qualified_key,
)
from snn_dra.driver.validation.errors import FieldError

TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]
"""Node taint effects (core/v1 ``TaintEffect``)."""


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _indexed(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, Mapping)] if isinstance(value, list) else []


# ---- Pod ------------------------------------------------------------------------------------------------------


def _pod_claims(spec: Mapping[str, Any], path: str) -> tuple[list[FieldError], set[str]]:
    """``spec.resourceClaims``: unique DNS-label names, exactly one of claim name / template name."""
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, entry in _indexed(spec.get("resourceClaims")):
        p = index(path, i)
        name = entry.get("name")
        if not name:
            errs.append(required(child(p, "name")))
        else:
            errs += validate_dns_label(name, child(p, "name"))
            if str(name) in names:
                errs.append(duplicate(child(p, "name"), name))
            names.add(str(name))
        claim, template = entry.get("resourceClaimName"), entry.get("resourceClaimTemplateName")
        if bool(claim) == bool(template):
            errs.append(invalid(p, dict(entry), "must specify one of: `resourceClaimName`, "
                                                "`resourceClaimTemplateName`"))
        elif claim:
            errs += validate_dns_subdomain(claim, child(p, "resourceClaimName"))
        else:
            errs += validate_dns_subdomain(template, child(p, "resourceClaimTemplateName"))
    return errs, names


def _containers(spec: Mapping[str, Any], field: str, claim_names: set[str], seen: set[str],
                *, need_one: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    path = f"spec.{field}"
    containers = spec.get(field)
    if need_one and not containers:
        return [required(path, "a pod needs at least one container")]
    for i, c in _indexed(containers):
        p = index(path, i)
        name = c.get("name")
        if not name:
            errs.append(required(child(p, "name")))
        else:
            errs += validate_dns_label(name, child(p, "name"))
            if str(name) in seen:
                errs.append(duplicate(child(p, "name"), name))
            seen.add(str(name))
        if not c.get("image"):
            errs.append(required(child(p, "image"), "every container needs an image"))
        refs = as_mapping(c.get("resources")).get("claims")
        used: set[tuple[str, str]] = set()
        for j, ref in _indexed(refs):
            rp = index(child(child(p, "resources"), "claims"), j)
            ref_name = str(ref.get("name") or "")
            if not ref_name:
                errs.append(required(child(rp, "name")))
            elif ref_name not in claim_names:
                errs.append(not_supported(child(rp, "name"), ref_name, sorted(claim_names)))
            pair = (ref_name, str(ref.get("request") or ""))
            if pair in used:
                errs.append(duplicate(rp, dict(ref)))
            used.add(pair)
    return errs


def validate_pod(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return [required("spec")] if spec is None else []  # a wrong type is already a schema error
    errs, claim_names = _pod_claims(spec, "spec.resourceClaims")
    seen: set[str] = set()
    errs += _containers(spec, "initContainers", claim_names, seen, need_one=False)
    errs += _containers(spec, "containers", claim_names, seen, need_one=True)
    node = spec.get("nodeName")
    if node:
        errs += validate_dns_subdomain(node, "spec.nodeName")
    if old is not None:
        old_node = as_mapping(old.get("spec")).get("nodeName")
        if old_node and node != old_node:
            errs.append(forbidden("spec.nodeName", f"a bound pod cannot move to another node (bound to {old_node!r})"))
        old_claims = as_mapping(old.get("spec")).get("resourceClaims")
        if (old_claims or None) != (spec.get("resourceClaims") or None):
            errs.append(forbidden("spec.resourceClaims", "pod updates may not change the resource claims"))
    for i, entry in _indexed(as_mapping(obj.get("status")).get("resourceClaimStatuses")):
        p = index("status.resourceClaimStatuses", i)
        if str(entry.get("name")) not in claim_names:
            errs.append(not_supported(child(p, "name"), entry.get("name"), sorted(claim_names)))
        if entry.get("resourceClaimName"):
            errs += validate_dns_subdomain(entry["resourceClaimName"], child(p, "resourceClaimName"))
    return errs


# ---- Node, Namespace, Event -----------------------------------------------------------------------------------


def validate_node(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in _indexed(as_mapping(obj.get("spec")).get("taints")):
        p = index("spec.taints", i)
        k = taint.get("key")
        if not k:
            errs.append(required(child(p, "key")))
        else:
            errs += validate_qualified_key(k, child(p, "key"))
        effect = taint.get("effect")
        if not effect:
            errs.append(required(child(p, "effect")))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(p, "effect"), effect, TAINT_EFFECTS))
        pair = (str(k), str(effect))
        if pair in seen:
            errs.append(duplicate(p, f"{k}:{effect}"))
        seen.add(pair)
    return errs


def validate_namespace(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    errs: list[FieldError] = []
    finalizers = as_mapping(obj.get("spec")).get("finalizers")
    for i, f in enumerate(finalizers if isinstance(finalizers, list) else []):
        if f != "kubernetes":
            errs += validate_qualified_key(f, index("spec.finalizers", i), what="finalizer")
    return errs


def validate_event(obj: Mapping[str, Any], old: Mapping[str, Any] | None, profile: str) -> list[FieldError]:
    errs: list[FieldError] = []
    involved = obj.get("involvedObject")
    if not isinstance(involved, Mapping):
        return errs  # missing or mistyped: a schema error already
    ns = as_mapping(obj.get("metadata")).get("namespace") or ""
    inv_ns = involved.get("namespace") or ""
    if inv_ns and inv_ns != ns:
        errs.append(invalid("involvedObject.namespace", inv_ns, "does not match event.namespace"))
    if not involved.get("kind"):
        errs.append(required("involvedObject.kind"))
    return errs
