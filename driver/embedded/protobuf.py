"""Just enough of the Kubernetes protobuf envelope to accept kubectl's typed-client writes.

kubectl's generators (``kubectl create namespace``) send core objects as ``application/vnd.kubernetes.protobuf``.
Only objects whose content is their ObjectMeta (Namespace) are decoded; anything else gets a 415 that says to
send JSON (``kubectl apply -f`` does).
"""

from __future__ import annotations

from typing import Any

from snn_dra.driver.embedded.errors import UnsupportedMediaType

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
            out.append((num, val))
        elif wire == 2:
            n, i = _varint(buf, i)
            out.append((num, buf[i:i + n]))
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _text(v: int | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _string_map(entries: list[int | bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, bytes):
            kv = dict(_fields(entry))
            out[_text(kv.get(1, b""))] = _text(kv.get(2, b""))
    return out


def _object_meta(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    labels: list[int | bytes] = []
    annotations: list[int | bytes] = []
    for num, val in _fields(buf):
        if num == 1 and val:
            meta["name"] = _text(val)
        elif num == 2 and val:
            meta["generateName"] = _text(val)
        elif num == 3 and val:
            meta["namespace"] = _text(val)
        elif num == 11:
            labels.append(val)
        elif num == 12:
            annotations.append(val)
    if labels:
        meta["labels"] = _string_map(labels)
    if annotations:
        meta["annotations"] = _string_map(annotations)
    return meta


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded Namespace (the one object kubectl generators send this way that we serve)."""
    unsupported = UnsupportedMediaType(
        "the embedded API server decodes protobuf only for Namespace objects; send this object as JSON "
        "(for example with kubectl apply -f, or kubectl create -f)")
    if not body.startswith(_MAGIC):
        raise unsupported
    try:
        envelope = dict(_fields(body[len(_MAGIC):]))
        type_meta = dict(_fields(envelope.get(1, b"")))  # type: ignore[arg-type]
        api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
        if (api_version, kind) != ("v1", "Namespace"):
            raise unsupported
        raw = envelope.get(2, b"")
        obj_fields = _fields(raw if isinstance(raw, bytes) else b"")
    except ValueError as e:
        raise UnsupportedMediaType(f"cannot decode the protobuf body: {e}; send JSON instead") from e
    meta_raw = next((v for n, v in obj_fields if n == 1 and isinstance(v, bytes)), b"")
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _object_meta(meta_raw)}
