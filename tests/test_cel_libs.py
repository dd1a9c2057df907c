"""Pure-Python quantity and semver semantics shared by CEL and API validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from snn_dra.driver.cel import quantity as q
from snn_dra.driver.cel import semver as sv


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("2Gi", Decimal(2 * 1024**3)),
        ("500m", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        ("1.5k", Decimal(1500)),
        ("-4", Decimal(-4)),
        (".5", Decimal("0.5")),
        ("3n", Decimal("3e-9")),
    ],
)
def test_quantity_parse(text: str, value: Decimal) -> None:
    assert q.parse(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "NaN", "1.2.3", "0x10", "1ki", "1Gib", "Inf"])
def test_quantity_rejects(text: str) -> None:
    assert not q.is_quantity(text)
    with pytest.raises(q.QuantityError, match="quantity such as"):
        q.parse(text)


def test_quantity_arithmetic_round_trips() -> None:
    assert q.add("1.5", 1) == "2.5"
    assert q.sub("1Ki", "24") == "1000"
    assert q.compare(q.add("100m", "900m"), "1") == 0
    assert q.is_integer("2k") and not q.is_integer("1500m") and not q.is_integer("10E")
    assert q.as_integer("1Ki") == 1024
    with pytest.raises(q.QuantityError):
        q.as_integer("10E")  # beyond int64


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0.0", "1.0.1", -1),
        ("1.10.0", "1.9.0", 1),
        ("1.0.0-alpha", "1.0.0", -1),
        ("1.0.0-alpha", "1.0.0-alpha.1", -1),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1),
        ("1.0.0-rc.1", "1.0.0-beta", 1),
        ("1.0.0+a", "1.0.0+b", 0),
    ],
)
def test_semver_precedence(a: str, b: str, order: int) -> None:
    assert sv.compare(sv.parse(a), sv.parse(b)) == order


@pytest.mark.parametrize("text", ["1.2", "01.2.3", "1.2.3-01", "v1.2.3", "1.2.3-", "1.2.3+", ""])
def test_semver_strict_rejects(text: str) -> None:
    assert not sv.is_semver(text)


def test_semver_normalize() -> None:
    v = sv.parse("v01.2", normalize=True)
    assert (v.major, v.minor, v.patch) == (1, 2, 0)
