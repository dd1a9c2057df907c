"""Kubernetes protobuf bodies (``application/vnd.kubernetes.protobuf``): what client-go's typed clients speak.

An object travels as ``k8s\\0`` + ``runtime.Unknown{typeMeta, raw, contentEncoding, contentType}`` with ``raw`` the
versioned message (k8s.io.api.resource.v1.ResourceSlice); a watch answers length-delimited frames (4-byte big-endian
length) of ``metav1.WatchEvent{type, object: RawExtension{raw: <k8s\\0 envelope>}}`` without an envelope of their own.

The store keeps JSON, so this converts JSON <-> message generically over the descriptors of the upstream
generated.proto files (``snn_dra.api.k8s``). The proto field names are the JSON names (a few start upper case:
``Expression``); the exceptions are the Go-embedded structs whose JSON is inlined into the parent (``_INLINE``) and
the types with their own JSON form (Quantity, Time, MicroTime, Duration, IntOrString, RawExtension, FieldsV1).
Go writes every non-pointer field, so a zero scalar on the wire is kept in JSON only where Go's JSON would keep it
(pointer or no ``omitempty``: ``api/k8s/go_zero_fields.json``, derived from the Go struct tags).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

# Importing the generated modules registers their messages in the default descriptor pool.
from snn_dra.api.k8s.api.admissionregistration.v1 import generated_pb2 as _admissionregistration_v1  # noqa: F401
from snn_dra.api.k8s.api.apps.v1 import generated_pb2 as _apps_v1  # noqa: F401
from snn_dra.api.k8s.api.coordination.v1 import generated_pb2 as _coordination_v1  # noqa: F401
from snn_dra.api.k8s.api.core.v1 import generated_pb2 as _core_v1  # noqa: F401
from snn_dra.api.k8s.api.events.v1 import generated_pb2 as _events_v1  # noqa: F401
from snn_dra.api.k8s.api.policy.v1 import generated_pb2 as _policy_v1  # noqa: F401
from snn_dra.api.k8s.api.rbac.v1 import generated_pb2 as _rbac_v1  # noqa: F401
from snn_dra.api.k8s.api.resource.v1 import generated_pb2 as _resource_v1  # noqa: F401
from snn_dra.api.k8s.api.resource.v1beta1 import generated_pb2 as _resource_v1beta1  # noqa: F401
from snn_dra.api.k8s.api.resource.v1beta2 import generated_pb2 as _resource_v1beta2  # noqa: F401
from snn_dra.api.k8s.api.scheduling.v1 import generated_pb2 as _scheduling_v1  # noqa: F401
from snn_dra.api.k8s.apimachinery.pkg.apis.meta.v1 import generated_pb2 as _meta_v1
from snn_dra.api.k8s.apimachinery.pkg.runtime import generated_pb2 as _runtime
from snn_dra.driver.embedded.errors import BadRequest
from snn_dra.driver.embedded.resources import ResourceInfo

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
WATCH_MEDIA_TYPE = MEDIA_TYPE + ";stream=watch"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_TIME, _MICRO_TIME = f"{_META}.Time", f"{_META}.MicroTime"
_DURATION, _FIELDS_V1 = f"{_META}.Duration", f"{_META}.FieldsV1"

# API group -> proto package prefix (the version is appended); kinds not found there are looked up in meta/v1.
_GROUP_PACKAGES = {
    "": "k8s.io.api.core",
    "resource.k8s.io": "k8s.io.api.resource",
    "apps": "k8s.io.api.apps",
    "rbac.authorization.k8s.io": "k8s.io.api.rbac",
    "admissionregistration.k8s.io": "k8s.io.api.admissionregistration",
    "scheduling.k8s.io": "k8s.io.api.scheduling",
    "coordination.k8s.io": "k8s.io.api.coordination",
    "events.k8s.io": "k8s.io.api.events",
    "policy": "k8s.io.api.policy",
}

# Go-embedded structs (``json:",inline"``): their fields appear in the parent's JSON object. (proto field, message)
# pairs from the struct tags of k8s.io/api v0.37.2 (the same in v0.36.3); runtime.Unknown's TypeMeta is the
# envelope's, never an object's.
_INLINE = frozenset({
    ("deviceConfiguration", "DeviceConfiguration"),
    ("handler", "ProbeHandler"),
    ("localObjectReference", "LocalObjectReference"),
    ("persistentVolumeSource", "PersistentVolumeSource"),
    ("rule", "Rule"),
    ("ruleWithOperations", "RuleWithOperations"),
    ("volumeSource", "VolumeSource"),
})

_INT_TYPES = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64,
})


meta_pb2: Any = _meta_v1  # generated without stubs: messages are reached by name
runtime_pb2: Any = _runtime


_TYPE_NAMES = {FieldDescriptor.TYPE_STRING: "a string", FieldDescriptor.TYPE_BOOL: "a boolean (true/false)",
               FieldDescriptor.TYPE_BYTES: "base64 bytes", FieldDescriptor.TYPE_DOUBLE: "a number",
               FieldDescriptor.TYPE_FLOAT: "a number", **dict.fromkeys(_INT_TYPES, "an integer")}
_SPECIAL = frozenset({_QUANTITY, _TIME, _MICRO_TIME, _DURATION, _INT_OR_STRING, _RAW_EXTENSION, _FIELDS_V1})


class ConversionError(ValueError):
    """A JSON value that does not fit the protobuf field it maps to (the message names the field path)."""


@cache
def _keep_zero() -> dict[str, frozenset[str]]:
    text = resources.files("snn_dra.api.k8s").joinpath("go_zero_fields.json").read_text()
    return {k: frozenset(v) for k, v in json.loads(text).items()}


def _json_name(field: Any) -> str:
    name: str = field.name
    return name[:1].lower() + name[1:]


def _is_inline(field: Any) -> bool:
    return field.message_type is not None and (field.name, field.message_type.name) in _INLINE


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def message_class(api_version: str, kind: str) -> type[Message]:
    """The generated message class of a kind (``BadRequest`` naming it when no proto defines it)."""
    group, _, version = api_version.rpartition("/")
    pool = descriptor_pool.Default()
    names = [f"{_GROUP_PACKAGES[group]}.{version}.{kind}"] if group in _GROUP_PACKAGES else []
    names.append(f"{_META}.{kind}")
    for name in names:
        try:
            return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        except KeyError:
            continue
    raise BadRequest(f"no kind {kind!r} is registered for version {api_version!r} in protobuf; "
                     f"send this object as JSON (Content-Type: application/json)")


# -- time and duration -----------------------------------------------------------------------------------------

_FRACTION = re.compile(r"\.(\d+)")


def _parse_time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise ConversionError(f"{path}: a time must be an RFC 3339 string, not {value!r}")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("z", "Z"), count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConversionError(f"{path}: {value!r} is not an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _parse_duration(value: Any, path: str) -> int:
    """Go's time.ParseDuration ("1h2m3.5s") in nanoseconds."""
    if not isinstance(value, str) or not value:
        raise ConversionError(f"{path}: a duration must be a Go duration string such as '1m30s', not {value!r}")
    sign, text = (-1, value[1:]) if value[0] == "-" else (1, value.lstrip("+"))
    if text == "0":
        return 0
    pos, total = 0, 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ConversionError(f"{path}: {value!r} is not a Go duration (for example '1m30s', '500ms')")
    return sign * total


def _format_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + out + _trim(rest, 10**9) + "s"


def _trim(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


# -- JSON -> message -------------------------------------------------------------------------------------------

def _scalar(field: Any, value: Any, here: Any) -> Any:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        if isinstance(value, str):
            return value
    elif t == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
    elif t in _INT_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif t == FieldDescriptor.TYPE_BYTES and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ConversionError(f"{_where(here)}: {value!r} is not base64 (a byte field)") from None
    kind = _TYPE_NAMES.get(t, f"protobuf type {t}")
    raise ConversionError(f"{_where(here)}: {value!r} does not fit the field, which holds {kind}")


def _set_special(msg: Message, value: Any, path: str) -> bool:
    """Fill ``msg`` from the JSON form of the types that have their own; False for ordinary messages."""
    name = msg.DESCRIPTOR.full_name
    if name == _QUANTITY:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConversionError(f"{path}: a quantity must be a string such as '4Gi' or a number, not {value!r}")
        msg.string = value if isinstance(value, str) else json.dumps(value)  # type: ignore[attr-defined]
    elif name in (_TIME, _MICRO_TIME):
        when = _parse_time(value, path)
        msg.seconds = int(when.timestamp() // 1)  # type: ignore[attr-defined]
        if name == _MICRO_TIME:
            msg.nanos = when.microsecond * 1000  # type: ignore[attr-defined]
    elif name == _DURATION:
        msg.duration = _parse_duration(value, path)  # type: ignore[attr-defined]
    elif name == _INT_OR_STRING:
        if isinstance(value, str):
            msg.type, msg.strVal = 1, value  # type: ignore[attr-defined]
        elif isinstance(value, int) and not isinstance(value, bool):
            msg.type, msg.intVal = 0, value  # type: ignore[attr-defined]
        else:
            raise ConversionError(f"{path}: must be an integer or a string, not {value!r}")
    elif name in (_RAW_EXTENSION, _FIELDS_V1):
        raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        if name == _RAW_EXTENSION:
            msg.raw = raw  # type: ignore[attr-defined]
        else:
            msg.Raw = raw  # type: ignore[attr-defined]
    else:
        return False
    return True


_INLINE_KIND, _MAP, _LIST, _MESSAGE, _SCALAR = range(5)


@cache
def _plan(desc: Any) -> tuple[tuple[str, str, int, Any, bool], ...]:
    """Per message type, once: (proto name, JSON name, shape, scalar field or map value field, holds messages)."""
    out = []
    for field in desc.fields:
        if _is_inline(field):
            out.append((field.name, "", _INLINE_KIND, field, True))
        elif _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out.append((field.name, _json_name(field), _MAP, value_field, value_field.message_type is not None))
        elif field.is_repeated:
            out.append((field.name, _json_name(field), _LIST, field, field.message_type is not None))
        else:
            shape = _MESSAGE if field.message_type is not None else _SCALAR
            out.append((field.name, _json_name(field), shape, field, shape == _MESSAGE))
    return tuple(out)


def _where(path: Any) -> str:
    """Render a lazily built field path ((parent, key) links): only errors need it as text."""
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key[0] if isinstance(key, tuple) else key}]" if isinstance(key, (int, tuple)) else f".{key}")
    text = "".join(reversed(parts)).lstrip(".")
    return text or "the object"


def _fill(msg: Message, value: Any, path: Any) -> None:
    if value is None:
        msg.SetInParent()
        return
    desc = msg.DESCRIPTOR
    if desc.full_name in _SPECIAL:
        _set_special(msg, value, _where(path))
        return
    if not isinstance(value, Mapping):
        raise ConversionError(f"{_where(path)}: must be an object, not {value!r}")
    for name, key, shape, field, holds_messages in _plan(desc):
        if shape == _INLINE_KIND:
            sub = getattr(msg, name)
            _fill(sub, value, path)
            sub.SetInParent()
            continue
        item = value.get(key)
        if item is None:
            continue
        here = (path, key)
        if shape == _SCALAR:
            setattr(msg, name, _scalar(field, item, here))
            continue
        target = getattr(msg, name)
        if shape == _MESSAGE:
            _fill(target, item, here)
            target.SetInParent()
        elif shape == _MAP:
            if not isinstance(item, Mapping):
                raise ConversionError(f"{_where(here)}: must be an object (a map), not {item!r}")
            for k, v in item.items():
                if holds_messages:
                    _fill(target[k], v, (here, (k,)))
                elif v is not None:
                    target[k] = _scalar(field, v, (here, (k,)))
        else:
            if not isinstance(item, list):
                raise ConversionError(f"{_where(here)}: must be a list, not {item!r}")
            for i, v in enumerate(item):
                if holds_messages:
                    _fill(target.add(), v, (here, i))
                else:
                    target.append(_scalar(field, v, (here, i)))


def to_message(obj: Mapping[str, Any], cls: type[Message] | None = None) -> Message:
    """The message of a JSON object (its ``apiVersion``/``kind`` pick the class unless given)."""
    if cls is None:
        cls = message_class(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    msg = cls()
    _fill(msg, obj, None)
    return msg


# -- message -> JSON -------------------------------------------------------------------------------------------

def _get_special(msg: Message) -> Any:
    """The JSON form of a type that has its own (``_SPECIAL``)."""
    name = msg.DESCRIPTOR.full_name
    m: Any = msg
    if name == _QUANTITY:
        return m.string
    if name in (_TIME, _MICRO_TIME):
        if not m.HasField("seconds") and not m.HasField("nanos"):
            return None  # Go's zero time: null in JSON
        when = datetime.fromtimestamp(m.seconds, UTC)
        if name == _TIME:
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{m.nanos // 1000:06d}Z"
    if name == _DURATION:
        return _format_duration(m.duration)
    if name == _INT_OR_STRING:
        return m.strVal if m.type == 1 else m.intVal
    if name in (_RAW_EXTENSION, _FIELDS_V1):
        raw = m.raw if name == _RAW_EXTENSION else m.Raw
        return json.loads(raw) if raw else None
    raise AssertionError(name)


def _scalar_json(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value


@cache
def _shapes(desc: Any) -> dict[str, tuple[str, int, Any, bool, bool]]:
    """Per message type, once: proto name -> (JSON name, shape, scalar field, holds messages, keeps its zero)."""
    keep_zero = _keep_zero().get(desc.full_name, frozenset())
    return {name: (key, shape, field, holds, name in keep_zero) for name, key, shape, field, holds in _plan(desc)}


def _to_json(msg: Message) -> Any:
    desc: Any = msg.DESCRIPTOR
    if desc.full_name in _SPECIAL:
        return _get_special(msg)
    shapes = _shapes(desc)
    out: dict[str, Any] = {}
    inlined: dict[str, Any] = {}
    set_fields: Any = msg.ListFields()
    for field, v in set_fields:
        key, shape, scalar, holds_messages, keep_zero = shapes[field.name]
        if shape == _SCALAR:
            if v or keep_zero:
                out[key] = base64.b64encode(v).decode() if scalar.type == FieldDescriptor.TYPE_BYTES else v
        elif shape == _MESSAGE:
            converted = _to_json(v)
            if converted is not None:
                out[key] = converted
        elif shape == _INLINE_KIND:
            inlined.update(_to_json(v))
        elif shape == _MAP:
            out[key] = {k: _to_json(x) for k, x in v.items()} if holds_messages else {
                k: _scalar_json(scalar, x) for k, x in v.items()}
        else:
            out[key] = [_to_json(x) for x in v] if holds_messages else [_scalar_json(scalar, x) for x in v]
    return {**inlined, **out} if inlined else out


def from_message(msg: Message, api_version: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """The JSON object of a message; ``apiVersion``/``kind`` (not part of the message) lead when given."""
    body = _to_json(msg)
    head = {"apiVersion": api_version, "kind": kind} if api_version and kind else {}
    return {**head, **body}


# -- the envelope ----------------------------------------------------------------------------------------------

def encode(obj: Mapping[str, Any]) -> bytes:
    """``k8s\\0`` + runtime.Unknown around the message of a JSON object that names its apiVersion and kind."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    msg = to_message(obj, message_class(api_version, kind))
    unknown = runtime_pb2.Unknown(typeMeta=runtime_pb2.TypeMeta(apiVersion=api_version, kind=kind),
                                  raw=msg.SerializeToString(), contentEncoding="", contentType="")
    return MAGIC + bytes(unknown.SerializeToString())


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of a ``k8s\\0`` envelope (``BadRequest`` for anything that is not one)."""
    if not body.startswith(MAGIC):
        raise BadRequest("the protobuf body does not start with the Kubernetes magic bytes 'k8s\\x00'; "
                         "send the envelope client-go's protobuf serializer writes, or JSON")
    try:
        unknown = runtime_pb2.Unknown.FromString(body[len(MAGIC):])
    except DecodeError as e:
        raise BadRequest(f"the protobuf envelope (runtime.Unknown) cannot be decoded: {e}") from e
    if unknown.contentEncoding:
        raise BadRequest(f"protobuf content encoding {unknown.contentEncoding!r} is not supported; send it plain")
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    cls = message_class(api_version, kind)
    try:
        msg = cls.FromString(unknown.raw)
    except DecodeError as e:
        raise BadRequest(f"the protobuf {kind} in the envelope cannot be decoded: {e}") from e
    return from_message(msg, api_version, kind)


def watch_frame(event_type: str, obj: Mapping[str, Any], info: ResourceInfo) -> bytes:
    """One watch event as the protobuf stream serializer frames it: length, then a bare metav1.WatchEvent.

    Bookmarks carry only metadata: their kind is the watched resource's (ERROR events carry a Status)."""
    if not obj.get("kind"):
        obj = {"apiVersion": info.api_version, "kind": info.kind, **obj}
    event = meta_pb2.WatchEvent(type=event_type, object=runtime_pb2.RawExtension(raw=encode(obj)))
    data = bytes(event.SerializeToString())
    return struct.pack(">I", len(data)) + data


# -- negotiation -----------------------------------------------------------------------------------------------

def wants_protobuf(accept: str) -> bool:
    """True when the first media type the client accepts is protobuf (client-go's typed default)."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == MEDIA_TYPE


def reencode(resp: web.Response) -> web.Response:
    """A JSON answer (object, list or Status) again in protobuf; unchanged when its kind has no message."""
    if resp.content_type != "application/json" or not isinstance(resp.body, bytes):
        return resp
    try:
        data = encode(json.loads(resp.body))
    except (ValueError, BadRequest, KeyError, AttributeError):
        return resp
    out = web.Response(body=data, status=resp.status, content_type=MEDIA_TYPE)
    for warning in resp.headers.getall("Warning", []):
        out.headers.add("Warning", warning)
    return out


def body_media_type(content_type: str) -> str:
    """How to read a body that is not a full object (DeleteOptions): protobuf if sent so, else JSON."""
    return MEDIA_TYPE if content_type == MEDIA_TYPE else "application/json"
