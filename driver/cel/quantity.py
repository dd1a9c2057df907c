"""Kubernetes ``resource.Quantity`` semantics for the CEL ``quantity`` library, in pure Python.

Kept apart from the engine adapter so any CEL engine (or the allocator's capacity arithmetic) computes the same
answers. Values are exact ``Decimal``s; the grammar and parsing live in :mod:`snn_dra.driver.quantity`, the one
home of quantity semantics, and are re-exported here for the CEL layer.
"""

from __future__ import annotations

from decimal import Decimal

from snn_dra.driver.quantity import INT64_MAX, INT64_MIN
from snn_dra.driver.quantity import QUANTITY_RE as QUANTITY_RE
from snn_dra.driver.quantity import QUANTITY_SYNTAX_HINT as QUANTITY_SYNTAX_HINT
from snn_dra.driver.quantity import QuantityError as QuantityError
from snn_dra.driver.quantity import format_decimal as format_decimal
from snn_dra.driver.quantity import is_quantity as is_quantity
from snn_dra.driver.quantity import parse as parse


def compare(a: str, b: str) -> int:
    x, y = parse(a), parse(b)
    return (x > y) - (x < y)


def sign(a: str) -> int:
    x = parse(a)
    return (x > 0) - (x < 0)


def add(a: str, b: str | int) -> str:
    other = Decimal(b) if isinstance(b, int) else parse(b)
    return format_decimal(parse(a) + other)


def sub(a: str, b: str | int) -> str:
    other = Decimal(b) if isinstance(b, int) else parse(b)
    return format_decimal(parse(a) - other)


def is_integer(a: str) -> bool:
    """True when the value is a whole number that fits an int64 (Go ``Quantity.AsInt64`` succeeds)."""
    x = parse(a)
    return x == x.to_integral_value() and INT64_MIN <= x <= INT64_MAX


def as_integer(a: str) -> int:
    if not is_integer(a):
        raise QuantityError(f"cannot convert quantity {a!r} to an integer: not a whole number in the int64 range")
    return int(parse(a))


def as_approximate_float(a: str) -> float:
    return float(parse(a))
