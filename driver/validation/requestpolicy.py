"""The ``requestPolicy`` of a consumable capacity (``allowMultipleAllocations: true``), checked as upstream does.

Upstream's arithmetic is not exact decimal arithmetic, and a driver that publishes what our checks accept
must not be refused by a real API server (or the other way round), so the rules follow its integer model:

* Without ``DRAFractionalCapacityRange`` (1.37 beta, off unless the cluster's compatibility version is 1.37),
  a range's step check reads every amount rounded up to a whole number (Go's ``Quantity.Value()``): with
  min 0 and step 1.5 a default of 2 passes (step reads as 2) and a default of 1.5 passes too (reads as 2).
  Those amounts must lie in [0, 2^63-1], else the check refuses them rather than overflow.
* With the gate on and any of default, min, max or step fractional, amounts are compared in thousandths
  (``MilliValue()``): every amount must be a whole number of thousandths, else it is refused.
* Valid values are unique by their whole-number reading without the gate (1.5 and 2 collide), by exact value
  with it; they must be ascending and include the default; none may exceed the capacity.

The field paths and wording follow upstream's; from 1.37 on, a default outside the range is reported at
``validRange.default`` (before, at ``validRange.min`` / ``validRange.max``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from snn_dra.driver.validation.common import (
    check_list,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    parse_quantity_strict,
    required,
    type_invalid,
    validate_quantity,
)
from snn_dra.driver.validation.errors import FieldError

MAX_VALID_VALUES: Final = 10
INT64_MAX: Final = 2**63 - 1
_MILLI: Final = Decimal(1000)


def _amount(value: Any, path: str, errs: list[FieldError]) -> Decimal | None:
    try:
        return parse_quantity_strict(value)
    except (ValueError, InvalidOperation):
        errs.extend(validate_quantity(value, path))
        return None


def _whole(q: Decimal) -> int:
    """Go's ``Quantity.Value()`` for the amounts that reach it: rounded up to a whole number."""
    return math.ceil(q)


def _milli(q: Decimal) -> int:
    """Go's ``Quantity.MilliValue()``: thousandths, rounded up."""
    return math.ceil(q * _MILLI)


def _is_fractional(q: Decimal) -> bool:
    return q != q.to_integral_value()


def _fits_milli(q: Decimal) -> bool:
    """Whether ``q`` is exactly a whole number of thousandths within int64 (``MilliValue()`` round-trips)."""
    scaled = q * _MILLI
    return scaled == scaled.to_integral_value() and abs(scaled) <= INT64_MAX


def validate_request_policy(
    policy: Any, capacity: Decimal, path: str, *, minor: int, fractional: bool
) -> list[FieldError]:
    """``minor``: the Kubernetes minor version (34..37); ``fractional``: DRAFractionalCapacityRange is on."""
    if not isinstance(policy, Mapping):
        return [type_invalid(path, policy, "an object with default and validValues or validRange")]
    errs: list[FieldError] = []
    valid_values, valid_range = policy.get("validValues"), policy.get("validRange")
    if valid_values and valid_range is not None:
        return [
            forbidden(
                path,
                'exactly one policy can be specified, cannot specify "validValues" and "validRange" at the same time',
            )
        ]
    if not valid_values and valid_range is None:
        if policy.get("default") is not None:
            _amount(policy["default"], child(path, "default"), errs)
        return errs
    which = "validValues" if valid_values else "validRange"
    if policy.get("default") is None:
        return [
            required(child(path, "default"), f"required when {which} is defined: the amount a request gets by default")
        ]
    default = _amount(policy["default"], child(path, "default"), errs)
    if default is None:
        return errs
    if valid_values:
        errs.extend(_valid_values(valid_values, default, capacity, child(path, "validValues"), fractional))
    else:
        errs.extend(_valid_range(valid_range, default, capacity, child(path, "validRange"), minor, fractional))
    return errs


def _valid_values(values: Any, default: Decimal, capacity: Decimal, path: str, fractional: bool) -> list[FieldError]:
    items, errs = check_list(values, path, MAX_VALID_VALUES, "valid values")
    parsed: list[tuple[int, Any, Decimal]] = []
    for i, v in enumerate(items):
        q = _amount(v, index(path, i), errs)
        if q is not None:
            parsed.append((i, v, q))
    for (_, _, prev), (i, v, q) in itertools.pairwise(parsed):
        if prev > q:
            errs.append(invalid(index(path, i), v, "values must be sorted in ascending order"))
    key: Callable[[Decimal], object] = (lambda q: q.normalize()) if fractional else _whole
    seen: set[object] = set()
    found = False
    for i, v, q in parsed:
        if q > capacity:
            errs.append(invalid(index(path, i), v, f"option is larger than capacity value: {capacity}"))
        k = key(q)
        if k in seen:
            errs.append(duplicate(index(path, i), v))
        seen.add(k)
        found = found or q == default
    if not found:
        errs.append(invalid(path, str(default), "default value is not valid according to the requestPolicy"))
    return errs


def _valid_range(
    rng: Any, default: Decimal, capacity: Decimal, path: str, minor: int, fractional: bool
) -> list[FieldError]:
    if not isinstance(rng, Mapping):
        return [type_invalid(path, rng, "an object with min, max and step")]
    errs: list[FieldError] = []
    if rng.get("min") in (None, ""):
        return [required(child(path, "min"), "required when validRange is defined")]
    low = _amount(rng["min"], child(path, "min"), errs)
    high = _amount(rng["max"], child(path, "max"), errs) if rng.get("max") is not None else None
    step = _amount(rng["step"], child(path, "step"), errs) if rng.get("step") is not None else None
    if low is None or (rng.get("max") is not None and high is None) or (rng.get("step") is not None and step is None):
        return errs
    below, above = ("default", "default") if minor >= 37 else ("min", "max")
    if low > capacity:
        errs.append(invalid(child(path, "min"), rng["min"], f"min is larger than capacity value: {capacity}"))
    if default < low:
        errs.append(invalid(child(path, below), str(default), f"default is less than min: {rng['min']}"))
    if high is not None:
        if low > high:
            errs.append(invalid(child(path, "max"), rng["min"], f"min is larger than max: {rng['max']}"))
        if high > capacity:
            errs.append(invalid(child(path, "max"), rng["max"], f"max is larger than capacity value: {capacity}"))
        if default > high:
            errs.append(invalid(child(path, above), str(default), f"default is more than max: {rng['max']}"))
    amounts = {"default": default, "min": low, "max": high, "step": step}
    use_milli = fractional and minor >= 37 and any(q is not None and _is_fractional(q) for q in amounts.values())
    if use_milli:
        unsafe = [
            invalid(child(path, name), str(q), "value cannot be represented as a milli value")
            for name, q in amounts.items()
            if q is not None and not _fits_milli(q)
        ]
        if unsafe:
            return errs + unsafe
    if step is None:
        return errs
    if step <= 0:
        errs.append(invalid(child(path, "step"), rng["step"], "must be greater than zero"))
        return errs
    if low + step > capacity:
        errs.append(
            invalid(
                child(path, "step"), rng["step"], f"one step {low + step} is larger than capacity value: {capacity}"
            )
        )
    if not use_milli:
        bounds: list[FieldError] = []
        for name, q in amounts.items():
            if q is None:
                continue
            if q < 0:
                bounds.append(invalid(child(path, name), str(q), "must be greater than or equal to 0"))
            elif q > INT64_MAX:
                bounds.append(invalid(child(path, name), str(q), f"must not be larger than {INT64_MAX}"))
        if bounds:
            return errs + bounds
    read = _milli if use_milli else _whole
    for q in (default, high):
        if q is not None and (read(q) - read(low)) % read(step) != 0:
            errs.append(
                invalid(
                    child(path, "step"),
                    str(q),
                    f"value is not a multiple of a given step ({rng['step']}) from ({rng['min']})",
                )
            )
    return errs
