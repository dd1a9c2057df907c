"""ObjectMeta checks every kind gets from the real API server (names, generateName, labels, annotations).

Messages follow the upstream wording (``Invalid value: "x": ...``) so kubectl output matches a cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from snn_dra.driver.validation.errors import CauseType, FieldError

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(f"^{_DNS1123_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_QNAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TOTAL_ANNOTATION_SIZE = 256 * 1024

_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
              "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
              "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
              "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
              "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
              "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def _invalid(field: str, value: Any, msg: str) -> FieldError:
    return FieldError(CauseType.INVALID, field, f"Invalid value: {json.dumps(value)}: {msg}")


def name_errors(name: str, rule: str, field: str) -> list[str]:
    """Problems of ``name`` under ``rule`` (subdomain | label | path), as upstream message bodies."""
    if rule == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            return ["may not contain '/' or '%' and may not be '.' or '..'"]
        return []
    if rule == "label":
        out = [] if _LABEL_RE.match(name) else [_LABEL_MSG]
        if len(name) > 63:
            out.append("must be no more than 63 characters")
        return out
    out = [] if _SUBDOMAIN_RE.match(name) else [_SUBDOMAIN_MSG]
    if len(name) > 253:
        out.append("must be no more than 253 characters")
    return out


def qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    out: list[str] = []
    if key.count("/") > 1:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character with an optional DNS subdomain prefix and '/' (e.g. "
                "'example.com/MyName')"]
    if "/" in key:
        if not prefix:
            out.append("prefix part must be non-empty")
        elif not _SUBDOMAIN_RE.match(prefix) or len(prefix) > 253:
            out.append("prefix part " + _SUBDOMAIN_MSG)
    if not name:
        out.append("name part must be non-empty")
    else:
        if len(name) > 63:
            out.append("name part must be no more than 63 characters")
        if not _QNAME_RE.match(name):
            out.append(_QNAME_MSG)
    return out


def validate_metadata(meta: Mapping[str, Any], rule: str, namespaced: bool, creating: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    name = meta.get("name") or ""
    gen = meta.get("generateName") or ""
    if not isinstance(name, str) or not isinstance(gen, str):
        return [FieldError(CauseType.TYPE_INVALID, "metadata.name", "Invalid value: name must be a string")]
    if not name:
        if not (creating and gen):
            errs.append(FieldError(CauseType.REQUIRED, "metadata.name",
                                   "Required value: name or generateName is required"))
    else:
        for msg in name_errors(name, rule, "metadata.name"):
            errs.append(_invalid("metadata.name", name, msg))
    if gen and not name:
        # generateName gets a 5-character suffix; validate the prefix as upstream does (trailing '-' allowed).
        stem = gen[:-1] if gen.endswith("-") and rule != "path" else gen
        for msg in name_errors(stem + "a" if stem else "a", rule, "metadata.generateName"):
            errs.append(_invalid("metadata.generateName", gen, msg))
    ns = meta.get("namespace") or ""
    if not namespaced and ns:
        errs.append(FieldError(CauseType.FORBIDDEN, "metadata.namespace",
                               "Forbidden: not allowed on this type"))
    labels = meta.get("labels")
    labels = {} if labels is None else labels
    if not isinstance(labels, Mapping):
        errs.append(FieldError(CauseType.TYPE_INVALID, "metadata.labels", "Invalid value: must be a map of strings"))
        labels = {}
    for k, v in labels.items():
        for msg in qualified_name_errors(str(k)):
            errs.append(_invalid("metadata.labels", k, msg))
        if not isinstance(v, str):
            errs.append(_invalid(f"metadata.labels[{k}]", v, "label values must be strings"))
            continue
        if len(v) > 63:
            errs.append(_invalid("metadata.labels", v, "must be no more than 63 characters"))
        if not _LABEL_VALUE_RE.match(v):
            errs.append(_invalid("metadata.labels", v, _VALUE_MSG))
    annotations = meta.get("annotations")
    annotations = {} if annotations is None else annotations
    if not isinstance(annotations, Mapping):
        errs.append(FieldError(CauseType.TYPE_INVALID, "metadata.annotations",
                               "Invalid value: must be a map of strings"))
        annotations = {}
    total = 0
    for k, v in annotations.items():
        for msg in qualified_name_errors(str(k).lower()):
            errs.append(_invalid("metadata.annotations", k, msg))
        if not isinstance(v, str):
            errs.append(_invalid(f"metadata.annotations[{k}]", v, "annotation values must be strings"))
            continue
        total += len(k) + len(v)
    if total > _TOTAL_ANNOTATION_SIZE:
        errs.append(FieldError(CauseType.TOO_LONG, "metadata.annotations",
                               f"Too long: may not be more than {_TOTAL_ANNOTATION_SIZE} bytes"))
    finalizers = meta.get("finalizers")
    if finalizers is not None and not isinstance(finalizers, list):
        errs.append(FieldError(CauseType.TYPE_INVALID, "metadata.finalizers", "Invalid value: must be a list of "
                                                                               "strings"))
        finalizers = []
    for i, f in enumerate(finalizers or []):
        if not isinstance(f, str) or qualified_name_errors(f):
            errs.append(_invalid(f"metadata.finalizers[{i}]", f, "name is neither a standard finalizer name nor "
                                 "is it fully qualified"))
    return errs
