"""Framing for the split-learning link: a JSON header plus numpy arrays, over one TCP connection.

A frame is ``u32 header length | header JSON | for each array: u64 length | .npy bytes``; the header
lists the array names. Arrays travel in numpy's own ``.npy`` format with ``allow_pickle=False``, so a
peer can send data but never code. Spikes go as packed bits (one bit per neuron and timestep): the
link carries events, as a neuromorphic interconnect would, and the byte count printed per step is real.
"""

from __future__ import annotations

import io
import json
import socket
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt

MAX_HEADER: Final = 1 << 20
MAX_ARRAY: Final = 1 << 30


class WireError(ConnectionError):
    """The peer closed the link or sent something that is not a frame."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise WireError("the peer closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, header: dict[str, Any], **arrays: npt.NDArray[Any]) -> int:
    """Send one frame; returns the bytes written."""
    header = {**header, "arrays": list(arrays)}
    head = json.dumps(header).encode()
    parts = [struct.pack(">I", len(head)), head]
    for array in arrays.values():
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        data = buf.getvalue()
        parts += [struct.pack(">Q", len(data)), data]
    payload = b"".join(parts)
    sock.sendall(payload)
    return len(payload)


def receive(sock: socket.socket) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    if size > MAX_HEADER:
        raise WireError(f"frame header of {size} bytes exceeds {MAX_HEADER}")
    try:
        header = json.loads(_recv_exact(sock, size))
    except ValueError as e:
        raise WireError(f"frame header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise WireError("frame header is not a JSON object")
    arrays = {}
    for name in header.get("arrays") or ():
        (length,) = struct.unpack(">Q", _recv_exact(sock, 8))
        if length > MAX_ARRAY:
            raise WireError(f"array {name} of {length} bytes exceeds {MAX_ARRAY}")
        try:
            arrays[str(name)] = np.load(io.BytesIO(_recv_exact(sock, length)), allow_pickle=False)
        except ValueError as e:
            raise WireError(f"array {name} is not a .npy array: {e}") from None
    return header, arrays


def pack_spikes(spikes: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    return np.packbits(spikes.astype(np.uint8), axis=-1)


def unpack_spikes(packed: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.float64]:
    return np.unpackbits(packed, axis=-1, count=width).astype(np.float64)
