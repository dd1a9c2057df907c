"""The Kubernetes CEL ``regex`` library (``find``, ``findAll``) with RE2 semantics, as cel-go uses.

Patterns go through google-re2, so a pattern RE2 rejects (look-around, back-references) fails here as it does
upstream, instead of silently working with Python's ``re``. Compiled patterns are cached by text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from snn_dra.driver.cel.lists import CelLibraryError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


@lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        detail = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise CelLibraryError(f"error parsing regexp: {detail}: `{pattern}`") from None


def find(text: str, pattern: str) -> str:
    """The leftmost match of ``pattern`` in ``text``, or ``""`` when there is none."""
    m = _compile(pattern).search(text)
    return str(m.group(0)) if m else ""


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """All non-overlapping matches; ``limit`` < 0 means all, 0 none (Go ``FindAllString``)."""
    if limit == 0:
        return []
    out: list[str] = []
    prev_end = -1
    for m in _compile(pattern).finditer(text):
        if m.start() == m.end() == prev_end:
            continue  # Go ignores an empty match that abuts the preceding match
        prev_end = m.end()
        out.append(str(m.group(0)))
        if len(out) == limit:
            break
    return out
