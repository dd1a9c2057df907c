"""Kubernetes ``resource.Quantity`` semantics for the CEL ``quantity`` library, in pure Python.

Kept apart from the engine adapter so any CEL engine (or the allocator's capacity arithmetic) computes the same
answers. Values are exact ``Decimal``s; parsing is cached because selectors compare the same few literals and
capacities over and over.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

# The Go grammar: signed decimal, then a binary-SI suffix, a decimal-SI suffix, or a decimal exponent.
QUANTITY_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

QUANTITY_SYNTAX_HINT = (
    "a quantity such as '1', '500m', '2Gi' or '1e3' (regular expression '" + QUANTITY_RE.pattern + "')"
)


class QuantityError(ValueError):
    """A string is not a quantity or an operation has no defined result (e.g. asInteger on 0.5)."""


@lru_cache(maxsize=4096)
def parse(text: str) -> Decimal:
    """Exact value of a quantity string; raises QuantityError naming the accepted syntax."""
    m = QUANTITY_RE.match(text)
    if m is None:
        raise QuantityError(f"{text!r} is not {QUANTITY_SYNTAX_HINT}")
    suffix = m.group(2) or ""
    number = text[: len(text) - len(suffix)]
    try:
        value = Decimal(number)
    except InvalidOperation as e:  # pragma: no cover - the regex already excludes these
        raise QuantityError(f"{text!r} is not {QUANTITY_SYNTAX_HINT}") from e
    if suffix in _BINARY:
        return value * (Decimal(2) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return value.scaleb(_DECIMAL[suffix])
    return value.scaleb(int(suffix[1:]))


def is_quantity(text: str) -> bool:
    try:
        parse(text)
    except QuantityError:
        return False
    return True


def format_decimal(value: Decimal) -> str:
    """A plain decimal string that :func:`parse` reads back exactly (no exponent, no trailing zeros)."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


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
