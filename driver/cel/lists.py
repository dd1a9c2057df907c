"""Semantics of the Kubernetes CEL ``lists`` library and of ``ext.Sets``, in pure Python (engine-independent).

The engine hands lists over as Python lists of plain values. CEL equality differs from Python's: ``true`` is not
``1``, while ``1 == 1.0`` holds (heterogeneous numeric equality); ordering is defined only within one type
(``int``/``uint``/``double`` compare across each other). Errors are raised as :class:`CelLibraryError`, which the
engine turns into a CEL error value (a runtime error of the selector, never "no match").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Upstream's runtime cost limit for a selector (CELSelectorExpressionMaxCost). A callback whose own work would
# exceed it fails as upstream's evaluation is cancelled, instead of running (or allocating) without bound.
MAX_CALL_COST = 1_000_000
COST_EXCEEDED = "operation cancelled: actual cost limit exceeded"


class CelLibraryError(ValueError):
    """A library function failed at evaluation (empty list for min/max, mixed types, overflow)."""


def charge(cost: int) -> None:
    """Refuse a call whose work alone exceeds the runtime cost limit (an approximation: per call, not summed)."""
    if cost > MAX_CALL_COST:
        raise CelLibraryError(COST_EXCEEDED)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def cel_equal(a: Any, b: Any) -> bool:
    """CEL equality: numbers compare by value across int/double, other types only with their own type."""
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(cel_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _comparable(items: Sequence[Any], fn: str) -> None:
    kinds = {_kind(v) for v in items}
    if len(kinds) > 1 or kinds - {"bool", "number", "str", "bytes"}:
        shown = ", ".join(sorted(kinds))
        raise CelLibraryError(f"no such overload: {fn} needs a list of one comparable type (got {shown})")


def is_sorted(items: Sequence[Any]) -> bool:
    _comparable(items, "isSorted")
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def sum_of(items: Sequence[Any]) -> Any:
    if not items:
        return 0
    if any(isinstance(v, bool) for v in items) or not all(isinstance(v, (int, float)) for v in items):
        raise CelLibraryError("no such overload: sum needs a list of int, uint or double")
    if all(isinstance(v, int) for v in items):
        total = sum(items)
        if not INT64_MIN <= total <= INT64_MAX:
            raise CelLibraryError("integer overflow")
        return total
    if any(isinstance(v, int) for v in items):
        raise CelLibraryError("no such overload: sum needs a list of one numeric type")
    return float(sum(items))


def min_of(items: Sequence[Any]) -> Any:
    if not items:
        raise CelLibraryError("min called on empty list")
    _comparable(items, "min")
    return min(items)


def max_of(items: Sequence[Any]) -> Any:
    if not items:
        raise CelLibraryError("max called on empty list")
    _comparable(items, "max")
    return max(items)


def index_of(items: Sequence[Any], value: Any) -> int:
    return next((i for i, v in enumerate(items) if cel_equal(v, value)), -1)


def last_index_of(items: Sequence[Any], value: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if cel_equal(items[i], value)), -1)


def sets_contains(items: Sequence[Any], sub: Sequence[Any]) -> bool:
    """Every element of ``sub`` is in ``items`` (an empty ``sub`` is contained in anything)."""
    charge(len(items) * len(sub))
    return all(any(cel_equal(x, y) for x in items) for y in sub)


def sets_equivalent(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Same elements, duplicates and order ignored."""
    return sets_contains(a, b) and sets_contains(b, a)


def sets_intersects(a: Sequence[Any], b: Sequence[Any]) -> bool:
    charge(len(a) * len(b))
    return any(cel_equal(x, y) for x in a for y in b)


# ---- cel-go ext.Lists (version 2 functions; Kubernetes enables version 3 since 1.34) ------------------------


def lists_range(n: int) -> list[int]:
    charge(n)
    return list(range(n))


def distinct(items: Sequence[Any]) -> list[Any]:
    """Elements in order of first appearance, duplicates (by CEL equality) dropped."""
    charge(len(items) * len(items))
    out: list[Any] = []
    for v in items:
        if not any(cel_equal(v, seen) for seen in out):
            out.append(v)
    return out


def flatten(items: Sequence[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise CelLibraryError("level must be non-negative")
    out: list[Any] = []
    for v in items:
        if isinstance(v, list) and depth > 0:
            out.extend(flatten(v, depth - 1))
        else:
            out.append(v)
    return out


def reverse(items: Sequence[Any]) -> list[Any]:
    return list(reversed(items))


def slice_of(items: Sequence[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise CelLibraryError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise CelLibraryError(f"cannot slice({start}, {end}), start index must be less than or equal to end index")
    if end > len(items):
        raise CelLibraryError(f"cannot slice({start}, {end}), list is length {len(items)}")
    return list(items[start:end])


def sort(items: Sequence[Any]) -> list[Any]:
    if len({_kind(v) for v in items}) > 1:
        raise CelLibraryError("list elements must have the same type")
    _comparable(items, "sort")
    return sorted(items)
