"""Field checks shared by every resource.k8s.io/v1 kind (names, qualified names, values, quantities, UUIDs).

The API server applies the same small rules in many places (a driver name in a slice, in an opaque config,
in an allocation result); keeping them here means the slice builder, the embedded API server and the claim
validators reject the same input with the same field path and message. Every function returns a list of
``FieldError`` (empty = valid) and never raises on bad input, so a validator can report every problem at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from kubernetes.utils import parse_quantity

from snn_dra.driver.cel.semver import SEMVER_RE as SEMVER_RE
from snn_dra.driver.quantity import QUANTITY_RE as QUANTITY_RE
from snn_dra.driver.validation.errors import CauseType, FieldError

# Limits from resource.k8s.io/v1 (see docs/resource-api.md §2).
DRIVER_NAME_MAX_LENGTH = 63
POOL_NAME_MAX_LENGTH = 253
DEVICE_MAX_DOMAIN_LENGTH = 63
DEVICE_MAX_ID_LENGTH = 32
DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH = 64
DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
LABEL_VALUE_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
ANNOTATIONS_MAX_TOTAL_BYTES = 256 * 1024
OPAQUE_PARAMETERS_MAX_LENGTH = 10 * 1024

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
C_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUALIFIED_NAME_PART_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_LABEL_HINT = "lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. 'my-name')"
_SUBDOMAIN_HINT = (
    "lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
)


# ---- field paths ----------------------------------------------------------------------------------


def child(path: str, name: str) -> str:
    """``spec`` + ``devices`` -> ``spec.devices`` (upstream ``field.Path.Child``)."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    """``spec.devices`` + 3 -> ``spec.devices[3]`` (upstream ``field.Path.Index``)."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """Map entry path, ``attributes`` + ``cores`` -> ``attributes[cores]`` (upstream ``field.Path.Key``)."""
    return f"{path}[{k}]"


# ---- error constructors (messages say the rule and what to do) --------------------------------------


def required(path: str, what: str = "") -> FieldError:
    return FieldError(CauseType.REQUIRED, path, f"Required value{': ' + what if what else ''}")


def invalid(path: str, value: Any, why: str) -> FieldError:
    return FieldError(CauseType.INVALID, path, f"Invalid value: {_show(value)}: {why}")


def too_long(path: str, value: Any, limit: int, unit: str = "bytes") -> FieldError:
    size = len(value) if isinstance(value, str | bytes | list | dict) else "?"
    return FieldError(CauseType.TOO_LONG, path, f"Too long: must have at most {limit} {unit} (has {size}); shorten it")


def too_many(path: str, count: int, limit: int, what: str = "items") -> FieldError:
    return FieldError(
        CauseType.TOO_MANY,
        path,
        f"Too many: {count}: must have at most {limit} {what}; remove {count - limit} or split the object",
    )


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(CauseType.DUPLICATE, path, f"Duplicate value: {_show(value)}: each entry must be unique")


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    allowed = ", ".join(f'"{s}"' for s in supported)
    return FieldError(CauseType.NOT_SUPPORTED, path, f"Unsupported value: {_show(value)}: supported values: {allowed}")


def forbidden(path: str, why: str) -> FieldError:
    return FieldError(CauseType.FORBIDDEN, path, f"Forbidden: {why}")


def type_invalid(path: str, value: Any, expected: str) -> FieldError:
    return FieldError(CauseType.TYPE_INVALID, path, f"Invalid value: {_show(value)}: must be {expected}")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- names ------------------------------------------------------------------------------------------


def dns1123_label_problems(value: str) -> list[str]:
    out: list[str] = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        out.append(f"must be no more than {DNS1123_LABEL_MAX_LENGTH} characters")
    if not DNS1123_LABEL_RE.match(value):
        out.append(f"must be a DNS label: {_LABEL_HINT}")
    return out


def dns1123_subdomain_problems(value: str) -> list[str]:
    out: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        out.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters")
    if not DNS1123_SUBDOMAIN_RE.match(value):
        out.append(f"must be a DNS subdomain: {_SUBDOMAIN_HINT} (e.g. 'example.com')")
    return out


def validate_dns_label(value: Any, path: str, *, what: str = "name") -> list[FieldError]:
    """Device, request, subrequest, counter-set and counter names."""
    if value is None or value == "":
        return [required(path, f"a {what} is required")]
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    return [invalid(path, value, msg) for msg in dns1123_label_problems(value)]


def validate_dns_subdomain(value: Any, path: str, *, what: str = "name") -> list[FieldError]:
    if value is None or value == "":
        return [required(path, f"a {what} is required")]
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    return [invalid(path, value, msg) for msg in dns1123_subdomain_problems(value)]


def validate_driver_name(value: Any, path: str) -> list[FieldError]:
    """A driver name is a DNS subdomain of at most 63 characters, checked lower-cased like upstream."""
    if value is None or value == "":
        return [required(path, "a driver name such as 'snn.dra.dev' is required")]
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    errs: list[FieldError] = []
    if len(value) > DRIVER_NAME_MAX_LENGTH:
        errs.append(too_long(path, value, DRIVER_NAME_MAX_LENGTH))
    errs.extend(invalid(path, value, msg) for msg in dns1123_subdomain_problems(value.lower()))
    return errs


def validate_pool_name(value: Any, path: str) -> list[FieldError]:
    """A pool name is one or more DNS subdomains joined by '/', at most 253 characters in total."""
    if value is None or value == "":
        return [required(path, "a pool name is required")]
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    errs: list[FieldError] = []
    if len(value) > POOL_NAME_MAX_LENGTH:
        errs.append(too_long(path, value, POOL_NAME_MAX_LENGTH))
    for part in value.split("/"):
        for msg in dns1123_subdomain_problems(part):
            errs.append(invalid(path, value, f"each '/'-separated part {msg}"))
    return errs


def validate_c_identifier(value: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(value) > DEVICE_MAX_ID_LENGTH:
        errs.append(too_long(path, value, DEVICE_MAX_ID_LENGTH))
    if not C_IDENTIFIER_RE.match(value):
        errs.append(
            invalid(
                path,
                value,
                "must be a C identifier: letters, digits and '_' only, not starting with a digit "
                "(no '-' or '.'; e.g. 'coreCount' or 'core_count')",
            )
        )
    return errs


def validate_qualified_name(value: Any, path: str) -> list[FieldError]:
    """Attribute/capacity names: ``ID`` or ``domain/ID`` (domain like a driver name, ID a C identifier ≤ 32)."""
    if value is None or value == "":
        return [required(path, "an attribute name is required")]
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    parts = value.split("/")
    if len(parts) == 1:
        return validate_c_identifier(parts[0], path)
    if len(parts) > 2:
        return [invalid(path, value, "must be either '<domain>/<name>' or '<name>' (at most one '/')")]
    errs: list[FieldError] = []
    domain, ident = parts
    if not domain:
        errs.append(required(path, "the domain before '/' must not be empty"))
    else:
        errs.extend(validate_driver_name(domain, path))
    if not ident:
        errs.append(required(path, "the name after '/' must not be empty"))
    else:
        errs.extend(validate_c_identifier(ident, path))
    return errs


def validate_fully_qualified_name(value: Any, path: str) -> list[FieldError]:
    """``matchAttribute`` / ``distinctAttribute``: a qualified name that must carry a domain."""
    errs = validate_qualified_name(value, path)
    if isinstance(value, str) and value and "/" not in value:
        errs.append(required(path, f"must include a domain, e.g. 'snn.dra.dev/{value}'"))
    return errs


def validate_qualified_key(value: Any, path: str, *, what: str = "key") -> list[FieldError]:
    """Label and annotation keys: optional DNS-subdomain prefix (≤ 253) + '/' + name (≤ 63)."""
    if not isinstance(value, str) or not value:
        return [required(path, f"a {what} is required")] if not value else [type_invalid(path, value, "a string")]
    parts = value.split("/")
    if len(parts) > 2:
        return [invalid(path, value, f"a {what} must be 'name' or 'prefix/name' (at most one '/')")]
    errs: list[FieldError] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append(invalid(path, value, "the prefix before '/' must not be empty"))
        else:
            errs.extend(invalid(path, value, f"prefix part {m}") for m in dns1123_subdomain_problems(prefix))
    if not name:
        errs.append(invalid(path, value, "the name part must not be empty"))
    else:
        if len(name) > QUALIFIED_NAME_MAX_LENGTH:
            errs.append(invalid(path, value, f"name part must be no more than {QUALIFIED_NAME_MAX_LENGTH} characters"))
        if not _QUALIFIED_NAME_PART_RE.match(name):
            errs.append(
                invalid(
                    path,
                    value,
                    "name part must consist of letters, digits, '-', '_' or '.', "
                    "starting and ending with a letter or digit (e.g. 'MyName', 'my.name')",
                )
            )
    return errs


def validate_label_value(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    errs: list[FieldError] = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(invalid(path, value, f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters"))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            invalid(
                path,
                value,
                "a label value must be empty or consist of letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit",
            )
        )
    return errs


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [type_invalid(path, labels, "a map of string to string")]
    errs: list[FieldError] = []
    for k, v in labels.items():
        errs.extend(validate_qualified_key(k, path, what="label key"))
        errs.extend(validate_label_value(v, key(path, str(k))))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, Mapping):
        return [type_invalid(path, annotations, "a map of string to string")]
    errs: list[FieldError] = []
    total = 0
    for k, v in annotations.items():
        errs.extend(validate_qualified_key(k, path, what="annotation key"))
        total += len(str(k)) + len(str(v))
    if total > ANNOTATIONS_MAX_TOTAL_BYTES:
        errs.append(
            FieldError(
                CauseType.TOO_LONG,
                path,
                f"Too long: annotations total {total} bytes, must have at most {ANNOTATIONS_MAX_TOTAL_BYTES} bytes",
            )
        )
    return errs


def validate_object_meta(meta: Any, *, namespaced: bool, path: str = "metadata") -> list[FieldError]:
    """Name (DNS subdomain), namespace presence, labels and annotations of a resource.k8s.io object."""
    if not isinstance(meta, Mapping):
        return [required(path, "metadata with a name is required")]
    errs: list[FieldError] = []
    name = meta.get("name")
    if name:
        errs.extend(validate_dns_subdomain(name, child(path, "name")))
    elif not meta.get("generateName"):
        errs.append(required(child(path, "name"), "name or generateName is required"))
    gen = meta.get("generateName")
    if gen and not name and isinstance(gen, str):
        # generateName gets a random suffix; validate a representative full name.
        errs.extend(
            invalid(child(path, "generateName"), gen, m) for m in dns1123_subdomain_problems(gen.rstrip("-") + "-x")
        )
    ns = meta.get("namespace")
    if namespaced:
        if ns:
            errs.extend(validate_dns_label(ns, child(path, "namespace"), what="namespace"))
    elif ns:
        errs.append(forbidden(child(path, "namespace"), "not allowed on a cluster-scoped object; remove it"))
    errs.extend(validate_labels(meta.get("labels"), child(path, "labels")))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    return errs


# ---- values ------------------------------------------------------------------------------------------


def is_semver(value: str) -> bool:
    return SEMVER_RE.match(value) is not None


def validate_uuid(value: Any, path: str) -> list[FieldError]:
    """shareID: an RFC 4122 UUID in its 36-character lower-case form."""
    if not isinstance(value, str) or not value:
        return [required(path, "a UUID is required")]
    if len(value) != 36 or not UUID_RE.match(value):
        return [invalid(path, value, "must be a lower-case RFC 4122 UUID (36 characters, e.g. '4f2c7c0e-…')")]
    return []


def parse_quantity_strict(value: Any) -> Decimal:
    """Parse a Kubernetes quantity, rejecting what the Go parser rejects (spaces, 'NaN', hex...)."""
    if isinstance(value, bool):
        raise ValueError("must be a quantity string such as '1', '500m' or '2Gi'")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str) or not QUANTITY_RE.match(value):
        raise ValueError(
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (e.g. '1', '500m', '2Gi')"
        )
    result: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call]
    return result


def validate_quantity(value: Any, path: str, *, non_negative: bool = False) -> list[FieldError]:
    if value is None or value == "":
        return [required(path, "a quantity such as '1' or '2Gi' is required")]
    try:
        q = parse_quantity_strict(value)
    except ValueError as e:
        return [invalid(path, value, str(e))]
    if non_negative and q < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


_ATTRIBUTE_VALUE_FIELDS = ("int", "bool", "string", "version")
_LIST_ATTRIBUTE_VALUE_FIELDS = ("ints", "bools", "strings", "versions")


def validate_string_value(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [type_invalid(path, value, "a string")]
    if len(value) > DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH:
        return [too_long(path, value, DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH)]
    return []


def validate_version_value(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [type_invalid(path, value, "a semantic version string")]
    errs: list[FieldError] = []
    if len(value) > DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH:
        errs.append(too_long(path, value, DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH))
    if not is_semver(value):
        errs.append(
            invalid(path, value, "must be a semantic version 2.0.0 such as '1.2.3' or '1.2.3-rc.1' (no leading zeros)")
        )
    return errs


def validate_attribute_value(value: Any, path: str, *, allow_lists: bool = False) -> list[FieldError]:
    """A DeviceAttribute: exactly one of int/bool/string/version (and, with list types, ints/bools/strings/versions).

    ``path`` is the attribute's own path (``spec.devices[0].attributes[cores]``); errors on a value name its field.
    """
    if not isinstance(value, Mapping):
        return [type_invalid(path, value, "an object with exactly one of int, bool, string or version")]
    fields = _ATTRIBUTE_VALUE_FIELDS + (_LIST_ATTRIBUTE_VALUE_FIELDS if allow_lists else ())
    present = [f for f in fields if value.get(f) is not None]
    errs: list[FieldError] = []
    if not present:
        return [required(path, f"exactly one value is required: one of {', '.join(fields)}")]
    if len(present) > 1:
        errs.append(invalid(path, dict(value), f"exactly one value must be set, found {', '.join(present)}"))
    for f in present:
        v = value[f]
        p = child(path, f)
        if f == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                errs.append(type_invalid(p, v, "an integer"))
        elif f == "bool":
            if not isinstance(v, bool):
                errs.append(type_invalid(p, v, "a boolean"))
        elif f == "string":
            errs.extend(validate_string_value(v, p))
        elif f == "version":
            errs.extend(validate_version_value(v, p))
        elif not isinstance(v, list):
            errs.append(type_invalid(p, v, "a list"))
        else:
            for i, item in enumerate(v):
                ip = index(p, i)
                if f == "ints" and (isinstance(item, bool) or not isinstance(item, int)):
                    errs.append(type_invalid(ip, item, "an integer"))
                elif f == "bools" and not isinstance(item, bool):
                    errs.append(type_invalid(ip, item, "a boolean"))
                elif f == "strings":
                    errs.extend(validate_string_value(item, ip))
                elif f == "versions":
                    errs.extend(validate_version_value(item, ip))
    return errs


def validate_opaque_parameters(value: Any, path: str, *, check_size: bool) -> list[FieldError]:
    """Opaque driver parameters: a JSON object, ≤ 10 KiB when serialized (size checked on create only)."""
    if value is None:
        return [required(path, "opaque parameters must be a JSON object, e.g. {}")]
    if not isinstance(value, Mapping):
        return [invalid(path, value, "must be a JSON object (with apiVersion and kind for the driver's config type)")]
    if check_size:
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > OPAQUE_PARAMETERS_MAX_LENGTH:
            return [
                FieldError(
                    CauseType.TOO_LONG,
                    path,
                    f"Too long: parameters are {size} bytes, must have at most {OPAQUE_PARAMETERS_MAX_LENGTH} bytes; "
                    "move large data elsewhere (e.g. a ConfigMap) and reference it",
                )
            ]
    return []


def check_list(
    value: Any, path: str, limit: int | None = None, what: str = "items"
) -> tuple[list[Any], list[FieldError]]:
    """Return ``value`` as a list (``[]`` when absent) plus a type or too-many error."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [], [type_invalid(path, value, "a list")]
    if limit is not None and len(value) > limit:
        return value, [too_many(path, len(value), limit, what)]
    return value, []


def as_mapping(value: Any) -> Mapping[str, Any]:
    """Treat a missing or non-object field as empty so validators can keep going after a type error."""
    return value if isinstance(value, Mapping) else {}


# ---- feature gates by profile (docs/resource-api.md §3; default values) -------------------------------------

_GATES_ON_FROM: dict[str, str | None] = {
    "DRAPrioritizedList": "1.34",
    "DRAAdminAccess": "1.34",
    "DRAResourceClaimDeviceStatus": "1.34",
    "DRADeviceTaints": "1.36",
    "DRADeviceTaintRules": "1.37",
    "DRAPartitionableDevices": "1.36",
    "DRAConsumableCapacity": "1.36",
    "DRADeviceBindingConditions": "1.36",
    "DRAExtendedResource": "1.36",
    "DRAListTypeAttributes": None,  # alpha, off by default
    "DRAOptionalNodeOperations": None,  # 1.37 alpha
    "DRAFractionalCapacityRange": None,  # 1.37 beta, on only with a 1.37 compatibility version
}


def _minor(profile: str) -> int:
    return int(profile.split(".")[1])


# Gate overrides of the validation in progress (``--feature-gates``). A context variable rather than a parameter
# threaded through every rule: the kind validators keep their (obj, old, profile) contract, and concurrent
# validations in other threads or tasks each see their own overrides.
_GATE_OVERRIDES: contextvars.ContextVar[Mapping[str, bool]] = contextvars.ContextVar(
    "gate_overrides", default=MappingProxyType({})
)


@contextlib.contextmanager
def gate_overrides(gates: Mapping[str, bool] | None) -> Iterator[None]:
    """Within the block, ``gates`` (name -> on/off) replace the version defaults in :func:`gate_enabled`."""
    token = _GATE_OVERRIDES.set(dict(gates or {}))
    try:
        yield
    finally:
        _GATE_OVERRIDES.reset(token)


def gate_enabled(profile: str, gate: str) -> bool:
    """Whether ``gate`` is on in Kubernetes ``profile`` ("1.34".."1.37"): an override, else the version default."""
    override = _GATE_OVERRIDES.get().get(gate)
    if override is not None:
        return bool(override)
    since = _GATES_ON_FROM.get(gate)
    return since is not None and _minor(profile) >= _minor(since)


def gated(profile: str, gate: str, path: str, present: bool) -> list[FieldError]:
    """A field set while its feature gate is off: the embedded API server rejects it (upstream drops it silently)."""
    if not present or gate_enabled(profile, gate):
        return []
    state = "disabled" if gate in _GATE_OVERRIDES.get() else "off by default"
    return [
        forbidden(
            path,
            f"requires the {gate} feature gate, which is {state} in Kubernetes {profile}; "
            "remove the field, enable the gate or target a newer Kubernetes version",
        )
    ]


# ---- taints and conditions (shared by slices, taint rules, claim status) ------------------------------------

TAINT_EFFECTS = ("NoSchedule", "NoExecute", "None")
_CONDITION_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def taint_effects(profile: str) -> list[str]:
    """Effect ``None`` (report only) exists from 1.36 on."""
    return list(TAINT_EFFECTS) if _minor(profile) >= 36 else ["NoSchedule", "NoExecute"]


def validate_device_taint(taint: Any, path: str, profile: str) -> list[FieldError]:
    """A DeviceTaint: key (label-key syntax), value (label-value syntax), effect."""
    if not isinstance(taint, Mapping):
        return [required(path, "a taint with key and effect is required")]
    errs = validate_qualified_key(taint.get("key"), child(path, "key"), what="taint key")
    if taint.get("value") not in (None, ""):
        errs.extend(validate_label_value(taint["value"], child(path, "value")))
    effect = taint.get("effect")
    allowed = taint_effects(profile)
    if not effect:
        errs.append(required(child(path, "effect"), f"one of {', '.join(allowed)}"))
    elif effect not in allowed:
        errs.append(not_supported(child(path, "effect"), effect, allowed))
    return errs


def same_taint(old: Any, new: Any) -> bool:
    """Equal taints, ``timeAdded`` compared as an instant (clients spell UTC as 'Z' or '+00:00')."""

    def instant(t: Any) -> Any:
        if not isinstance(t, Mapping) or not isinstance(t.get("timeAdded"), str):
            return t
        try:
            return {**t, "timeAdded": datetime.fromisoformat(t["timeAdded"])}
        except ValueError:
            return t

    return bool(instant(old) == instant(new))


def validate_conditions(value: Any, path: str, limit: int) -> list[FieldError]:
    """metav1.Condition list: unique types, status True/False/Unknown, reason syntax, timestamps."""
    conditions, errs = check_list(value, path, limit, "conditions")
    seen: set[str] = set()
    for i, cond in enumerate(conditions):
        p = index(path, i)
        if not isinstance(cond, Mapping):
            errs.append(type_invalid(p, cond, "an object"))
            continue
        ctype = cond.get("type")
        errs.extend(validate_qualified_key(ctype, child(p, "type"), what="condition type"))
        if isinstance(ctype, str):
            if ctype in seen:
                errs.append(duplicate(child(p, "type"), ctype))
            seen.add(ctype)
        status = cond.get("status")
        if status not in ("True", "False", "Unknown"):
            errs.append(not_supported(child(p, "status"), status, ["True", "False", "Unknown"]))
        reason = cond.get("reason")
        if not reason:
            errs.append(required(child(p, "reason"), "a CamelCase reason is required"))
        elif not isinstance(reason, str) or len(reason) > 1024 or not _CONDITION_REASON_RE.match(reason):
            errs.append(
                invalid(
                    child(p, "reason"),
                    reason,
                    "must be at most 1024 characters, start with a letter and contain only letters, digits, "
                    "'_', ',' or ':' (e.g. 'DeviceReady')",
                )
            )
        if isinstance(cond.get("message"), str) and len(cond["message"]) > 32768:
            errs.append(too_long(child(p, "message"), cond["message"], 32768))
        if not cond.get("lastTransitionTime"):
            errs.append(required(child(p, "lastTransitionTime"), "an RFC 3339 timestamp is required"))
        gen = cond.get("observedGeneration")
        if isinstance(gen, int) and gen < 0:
            errs.append(invalid(child(p, "observedGeneration"), gen, "must be greater than or equal to 0"))
    return errs
