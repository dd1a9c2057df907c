"""Quantities, shared counters and consumable capacity: the arithmetic of the allocator.

Amounts are exact integers in nano units (a Quantity has at most nine decimal places; finer values round up,
as the API server does), because capacities and counters are summed over many allocations and compared:
a float would let ``3 x 100m`` overshoot ``300m``, and ``Fraction`` arithmetic was the allocator's hot spot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

_QUANTITY_RE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
NANO = 10**9
"""Amounts are integers in units of 10^-9 (``NANO`` = one)."""
Amount = int


class QuantityError(ValueError):
    """A string that is not a Kubernetes Quantity (the API server would have refused it)."""


@lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Amount:
    """Parse a Kubernetes Quantity (``128``, ``1.5Gi``, ``250m``, ``1e3``) into nano units."""
    m = _QUANTITY_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise QuantityError(f"{text!r} is not a quantity (expected e.g. 128, 250m, 1.5Gi)")
    number, suffix = Fraction(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        value = number * _BINARY[suffix]
    elif suffix in _DECIMAL:
        value = number * _DECIMAL[suffix]
    else:
        value = number * Fraction(10) ** int(suffix[1:])
    return math.ceil(value * NANO)


def quantity_value(value: Any) -> Amount:
    """A Quantity as written in JSON (normally a string, sometimes a bare number), in nano units."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return value * NANO
    return parse_quantity(str(value))


def format_quantity(value: Amount) -> str:
    """Canonical short form of a nano-unit amount: integers plain, else milli/micro/nano units."""
    for suffix, scale in (("", NANO), ("m", 10**6), ("u", 10**3)):
        if value % scale == 0:
            return f"{value // scale}{suffix}"
    return f"{value}n"


# --- consumable capacity -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """``capacity.<key>.requestPolicy`` of a device with ``allowMultipleAllocations``."""

    default: Amount | None = None
    valid_values: tuple[Amount, ...] = ()
    range_min: Amount | None = None
    range_max: Amount | None = None
    range_step: Amount | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> RequestPolicy | None:
        if not obj:
            return None
        default = obj.get("default")
        rng = obj.get("validRange") or {}
        return cls(
            default=quantity_value(default) if default is not None else None,
            valid_values=tuple(sorted(quantity_value(v) for v in obj.get("validValues") or ())),
            range_min=quantity_value(rng["min"]) if rng.get("min") is not None else None,
            range_max=quantity_value(rng["max"]) if rng.get("max") is not None else None,
            range_step=quantity_value(rng["step"]) if rng.get("step") is not None else None,
        )

    def round_up(self, requested: Amount) -> Amount | None:
        """The amount a request for ``requested`` consumes, or None if the policy cannot serve it."""
        if self.valid_values:
            return next((v for v in self.valid_values if v >= requested), None)
        if self.range_min is not None:
            amount = max(requested, self.range_min)
            if self.range_step:
                steps = -(-(amount - self.range_min) // self.range_step)
                amount = self.range_min + steps * self.range_step
            if self.range_max is not None and amount > self.range_max:
                return None
            return amount
        return requested


@dataclass(frozen=True, slots=True)
class Capacity:
    """One capacity entry of a device: its total value and, for shared devices, how requests are sized."""

    key: str
    """The key as the device publishes it (used in ``consumedCapacity``)."""
    value: Amount
    policy: RequestPolicy | None

    def consumption(self, requested: Amount | None) -> Amount | None:
        """Upstream sizing: no request -> policy default or the whole capacity; else round up per policy."""
        if requested is None:
            if self.policy is not None and self.policy.default is not None:
                return self.policy.default
            return self.value
        if self.policy is None:
            return requested
        return self.policy.round_up(requested)


def parse_capacities(capacity: Mapping[str, Any] | None) -> dict[str, Capacity]:
    """A device's ``capacity`` map keyed exactly as the device publishes it.

    Upstream looks capacity requests up by the key as written (no domain is added to a bare ID), and
    ``consumedCapacity`` repeats the device's keys, so ``snn.dra.dev/x`` and ``x`` are different capacities.
    """
    out: dict[str, Capacity] = {}
    for key, entry in (capacity or {}).items():
        entry = entry or {}
        out[key] = Capacity(
            key=key,
            value=quantity_value(entry.get("value", "0")),
            policy=RequestPolicy.from_json(entry.get("requestPolicy")),
        )
    return out


# --- shared counters -----------------------------------------------------------------------------

CounterAmounts = dict[str, dict[str, Amount]]
"""counter set name -> counter name -> amount."""


def parse_counter_sets(counter_sets: Any) -> CounterAmounts:
    """``spec.sharedCounters`` of a slice (or ``consumesCounters`` of a device) as exact amounts."""
    out: CounterAmounts = {}
    for entry in counter_sets or ():
        name = entry.get("name", entry.get("counterSet", ""))
        counters = out.setdefault(name, {})
        for counter, spec in (entry.get("counters") or {}).items():
            counters[counter] = counters.get(counter, 0) + quantity_value((spec or {}).get("value", "0"))
    return out


def add_amounts(total: CounterAmounts, delta: CounterAmounts, sign: int = 1) -> None:
    """Add (or with ``sign=-1`` remove) one device's consumption to a running total, in place."""
    for set_name, counters in delta.items():
        into = total.setdefault(set_name, {})
        for counter, amount in counters.items():
            into[counter] = into.get(counter, 0) + sign * amount


def first_shortfall(available: CounterAmounts, used: CounterAmounts, delta: CounterAmounts) -> str | None:
    """Name the first counter that ``delta`` on top of ``used`` would overdraw, or None if it fits."""
    for set_name, counters in delta.items():
        have = available.get(set_name)
        if have is None:
            return f"counter set {set_name} does not exist"
        used_set = used.get(set_name, {})
        for counter, amount in counters.items():
            limit = have.get(counter)
            if limit is None:
                return f"counter {set_name}/{counter} does not exist"
            if used_set.get(counter, 0) + amount > limit:
                return f"counter {set_name}/{counter} exhausted"
    return None
