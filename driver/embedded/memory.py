"""Hand freed heap memory back to the operating system after a large request (glibc ``malloc_trim``).

Decoding and validating a body of a few MiB builds tens of MiB of short-lived Python objects. CPython frees them,
but glibc keeps the freed pages in its arenas (one per worker thread), so the server's RSS would stay at the
high-water mark of its largest request forever. ``malloc_trim(0)`` returns every whole free page; it is cheap
next to the request that made the garbage. On a C library without it (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

LARGE_BODY_BYTES = 256 * 1024
"""Bodies from this size on are followed by a trim at once."""
TRIM_INTERVAL = 2.0
"""Otherwise the server trims at most this often (seconds), and only after it served requests."""


def _load_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return free heap pages to the OS; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
