"""Kubernetes ``resource.Quantity``: the grammar, the value the API server keeps, and the text it stores.

One home for quantity semantics, shared by the CEL ``quantity`` library, validation, the slice builder, the
publisher's comparison and the embedded API server. Why it matters: the API server re-emits every quantity in
its canonical form, so a client that writes ``"100000"`` reads back ``"100k"``; a controller comparing text would
see a change forever. Facts (from apimachinery ``pkg/api/resource``, checked against v0.36.3):

* **Format** comes from the suffix: none or ``n u m k M G T P E`` is DecimalSI, ``Ki Mi Gi Ti Pi Ei`` is BinarySI,
  ``e<int>``/``E<int>`` is DecimalExponent. JSON numbers and surrounding blanks are accepted on decode.
* **Value**: exact down to nano; a finer non-zero value is rounded away from zero to the next nano ("0.1n" ->
  "1n"). A BinarySI magnitude is capped at 2^63-1; a BinarySI value strictly between -1 and 1 becomes DecimalSI.
* **Canonical text**: zero is "0". Decimal forms print an integer mantissa without trailing zeros, times a power of
  ten lowered to a multiple of three, with that power's suffix ("0.5" -> "500m", "1.5e3" -> "1500", "100e3"
  stays). BinarySI prints as DecimalSI when the value is within (-1024, 1024) or not whole; otherwise an integer
  mantissa times the largest power of 1024 ("1.5Gi" -> "1536Mi", "1024Ki" -> "1Mi").
* **Kept as written**: when the parser's int64 fast path applies (at most 18 digits, no finer than nano, no
  binary fraction) and the text looks canonical, the server keeps the input string verbatim, quirks included:
  decimal forms whose power is a multiple of three, whose digits neither start with 0 nor end in 000 ("+1k",
  "0100", "1E3" stay); binary forms whose number is not a multiple of 8 ("1025Ki", "01Ki" stay).
* DecimalSI has no suffix beyond E (10^18). Upstream 1.36 then prints the bare mantissa, losing the power
  ("1000E" -> "1"); later releases print the decimal exponent ("1e21"), which is what this module does, since the
  value must survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Any, Final, Literal

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

# The accepted grammar: signed decimal, then a binary-SI suffix, a decimal-SI suffix, or a decimal exponent.
QUANTITY_RE: Final = re.compile(r"^[+-]?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
QUANTITY_SYNTAX_HINT: Final = (
    "a quantity such as '1', '500m', '2Gi' or '1e3' (regular expression '" + QUANTITY_RE.pattern + "')"
)
_PARTS: Final = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(.*)$")
_BINARY: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX: Final = {e: s for s, e in _DECIMAL.items()}
_BINARY_SUFFIX: Final = {e // 10: s for s, e in _BINARY.items()}
_NANO: Final = Decimal("1e-9")
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_DECIMAL_FAST_DIGITS: Final = 18
"""The parser's int64 fast path takes decimal forms of at most this many significant digits."""
_BINARY_FAST_DIGITS: Final = 15
"""For binary forms: this many, less the digits of the number, about 3 per 10 bits of suffix, and one."""
_MAX_EXPONENT: Final = 10_000


class QuantityError(ValueError):
    """A string is not a quantity or an operation has no defined result (e.g. asInteger on 0.5)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the API server keeps of a quantity: its value, its format and, if it reuses it, the input text."""

    value: Decimal
    format: Format
    kept_text: str | None


def _suffix(text: str) -> tuple[int, int, Format]:
    """(base, exponent, format) of a suffix."""
    if text in _DECIMAL:
        return 10, _DECIMAL[text], "DecimalSI"
    if text in _BINARY:
        return 2, _BINARY[text], "BinarySI"
    exp = int(text[1:])
    if abs(exp) > _MAX_EXPONENT:
        raise QuantityError(f"quantity exponent {text!r} is out of range (at most {_MAX_EXPONENT} either way)")
    return 10, exp, "DecimalExponent"


def _kept_text(text: str, num: str, denom: str, exp: int, fmt: Format) -> str | None:
    """The input itself when the parser's int64 fast path takes it and it already looks canonical."""
    if fmt == "BinarySI":
        if exp < 0 or denom:
            return None
        digits = _BINARY_FAST_DIGITS - len(num) - exp * 3 // 10 - 1
        scale = 0
        multiplier = 1 << exp
    else:
        digits = _DECIMAL_FAST_DIGITS - len(num) - len(denom)
        scale = exp - len(denom)
        multiplier = 1
    if digits < 0 or scale < -9:
        return None
    shifted = num + denom
    if int(shifted) * multiplier > INT64_MAX:  # the magnitude must fit an int64 before the sign is applied
        return None
    if fmt == "BinarySI":
        return text if exp % 10 == 0 and int(shifted) & 7 else None
    return text if scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0" else None


@lru_cache(maxsize=8192)
def parse_as_server(text: str) -> Parsed:
    """The quantity as the API server decodes it (value rounded to nano, BinarySI capped, text kept or not)."""
    text = text.strip()
    if not QUANTITY_RE.match(text):
        raise QuantityError(f"{text!r} is not {QUANTITY_SYNTAX_HINT}")
    m = _PARTS.match(text)
    assert m is not None  # the grammar above is stricter than _PARTS
    sign, num, denom, suffix = m.group(1), m.group(2).lstrip("0") or "0", m.group(3) or "", m.group(4)
    base, exp, fmt = _suffix(suffix)
    if text == "0":
        return Parsed(Decimal(0), "DecimalSI", "0")
    kept = _kept_text(text, num, denom, exp, fmt)
    with localcontext() as ctx:
        ctx.prec = 4096
        value = Decimal(f"{num}.{denom or '0'}")
        value = value.scaleb(exp) if base == 10 else value * (Decimal(2) ** exp)
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -9 and value:
            value = value.quantize(_NANO, rounding=ROUND_UP)  # away from zero: the magnitude is still unsigned
        if fmt == "BinarySI" and value > INT64_MAX:
            value = Decimal(INT64_MAX)
        if fmt == "BinarySI" and 0 < value < 1:
            fmt = "DecimalSI"
        if sign == "-":
            value = -value
    return Parsed(value, fmt, kept)


def _decimal_mantissa(value: Decimal) -> tuple[int, int]:
    """(mantissa, exponent): value = mantissa * 10^exponent, exponent a multiple of 3, as large as exactness allows."""
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    extra = exponent % 3
    mantissa, exponent = mantissa * 10**extra, exponent - extra
    return (-mantissa if sign else mantissa), exponent


def format_value(value: Decimal | int, fmt: Format) -> str:
    """The canonical text of ``value`` in ``fmt`` (what the server prints when it does not keep the input)."""
    value = Decimal(value)
    if value == 0:
        return "0"
    if fmt == "BinarySI" and (-1024 < value < 1024 or value != value.to_integral_value()):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        n, power = int(value), 0
        while abs(n) >= 1024 and n % 1024 == 0 and power < max(_BINARY_SUFFIX):
            n //= 1024
            power += 1
        return f"{n}{_BINARY_SUFFIX.get(power, '')}"
    with localcontext() as ctx:
        ctx.prec = 4096
        mantissa, exponent = _decimal_mantissa(value)
    if exponent == 0:
        return str(mantissa)
    if fmt == "DecimalSI" and exponent in _DECIMAL_SUFFIX:
        return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{mantissa}e{exponent}"


@lru_cache(maxsize=8192)
def canonical(text: str) -> str:
    """The text the API server stores and returns for ``text`` (raises QuantityError if it is no quantity)."""
    parsed = parse_as_server(text)
    if parsed.kept_text is not None:
        return parsed.kept_text
    return format_value(parsed.value, parsed.format)


def json_text(raw: Any) -> str | None:
    """The quantity text of a decoded JSON value (a string, or a number as Go reads it), else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return repr(raw).replace("e+", "e")
    if isinstance(raw, Decimal):
        return str(raw)
    return None


def server_value(raw: Any) -> Decimal | None:
    """The value the server keeps for a JSON quantity, or None when it is not one (validation reports that)."""
    text = json_text(raw)
    if text is None:
        return None
    try:
        return parse_as_server(text).value
    except QuantityError:
        return None


def integer(value: int, binary: bool = False) -> str:
    """A whole number written so the server keeps it as is: ``1000`` -> "1k", bytes ``131072`` -> "128Ki".

    A binary amount that is not a whole number of KiB is written in decimal form, because text without a
    binary suffix is read as DecimalSI ("100000" would come back as "100k").
    """
    if binary and value % 1024 == 0 and abs(value) <= INT64_MAX:  # the server caps binary amounts there
        return format_value(value, "BinarySI")
    return format_value(value, "DecimalSI")


# ---- exact arithmetic (the CEL quantity library) --------------------------------------------------------------


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
    base, exp, _ = _suffix(suffix)
    return value.scaleb(exp) if base == 10 else value * (Decimal(2) ** exp)


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
    return format(value.normalize(), "f")
