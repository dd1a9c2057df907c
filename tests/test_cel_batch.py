"""Batched evaluation (one conversion per device) gives exactly the per-selector results, errors included."""

from __future__ import annotations

import pytest

from snn_dra.driver.cel import CelRuntimeError, compile_selector, device_view, evaluate_many, matches_all

DEVICE = {
    "name": "chip-0",
    "attributes": {
        "type": {"string": "chip"},
        "family": {"string": "loihi2"},
        "coreCount": {"int": 128},
        "version": {"version": "1.2.0"},
    },
    "capacity": {"neurons": {"value": "1048576"}},
}
EXPRS = [
    'device.attributes["snn.dra.dev"].type == "chip"',
    'device.attributes["snn.dra.dev"].coreCount > 200',
    'device.attributes["snn.dra.dev"].missing == 1',
    'device.capacity["snn.dra.dev"].neurons.compareTo(quantity("1Mi")) == 0',
    'device.attributes["snn.dra.dev"].version.isGreaterThan(semver("1.0.0"))',
    'device.attributes["other.example.com"].size() == 0',
]


def fresh(exprs: list[str]) -> list:  # type: ignore[type-arg]
    sels = [compile_selector(e) for e in exprs]
    for s in sels:
        s._memo.clear()
    return sels


def test_batch_equals_one_at_a_time() -> None:
    view = device_view("snn.dra.dev", DEVICE)
    sels = fresh(EXPRS)
    one_by_one: list[object] = []
    for s in sels:
        try:
            one_by_one.append(s.evaluate(view))
        except CelRuntimeError as e:
            one_by_one.append(type(e))
    batch = [type(r) if isinstance(r, CelRuntimeError) else r for r in evaluate_many(fresh(EXPRS), view)]
    assert batch == one_by_one == [True, False, CelRuntimeError, True, True, True]


def test_batch_results_are_memoised_per_selector() -> None:
    view = device_view("snn.dra.dev", DEVICE)
    sels = fresh(EXPRS[:2])
    evaluate_many(sels, view)
    assert all(view.key in s._memo for s in sels)
    assert [s.matches(view) for s in sels] == [True, False]


def test_in_order_semantics_an_error_after_a_false_selector_is_not_reached() -> None:
    view = device_view("snn.dra.dev", DEVICE)
    assert matches_all(fresh([EXPRS[1], EXPRS[2]]), view) is False
    with pytest.raises(CelRuntimeError, match="missing"):
        matches_all(fresh([EXPRS[0], EXPRS[2]]), view)
