"""Review fix: re-plans reach the monitor and publisher in the order they were computed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from snn_dra.driver.cli import node as node_mod
from snn_dra.driver.cli.node import NodeDriver
from snn_dra.driver.publisher import PublishResult


@dataclass
class _Plan:
    gates: frozenset[str]

    @property
    def model(self) -> Any:
        return self

    @property
    def slices(self) -> list[Any]:
        return [self.gates]


class _Recorder:
    """Stands in for the monitor and the publisher; records what each re-plan handed on, in order."""

    def __init__(self) -> None:
        self.desired: list[frozenset[str]] = []
        self.models: list[frozenset[str]] = []
        self.fallback_applied = threading.Event()

    def set_model(self, model: _Plan) -> None:
        self.models.append(model.gates)

    def set_desired(self, slices: list[frozenset[str]]) -> None:
        gates = slices[0]
        if not gates:
            # The stale health plan: under the old code the fallback re-plan could overtake it here.
            self.fallback_applied.wait(1.0)
        self.desired.append(gates)
        if gates:
            self.fallback_applied.set()


def test_a_health_replan_never_lands_after_a_dropped_gates_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    planning = threading.Event()
    release = threading.Event()

    def fake_plan(inventory: Any, publish: Any, *, profile: str, dropped_gates: set[str]) -> _Plan:
        gates = frozenset(dropped_gates)
        if not gates:  # the health re-plan: computed before the gates were known, then held up
            planning.set()
            release.wait(10)
        return _Plan(gates)

    monkeypatch.setattr(node_mod, "plan", fake_plan)
    rec = _Recorder()
    driver = NodeDriver.__new__(NodeDriver)
    driver._lock = threading.Lock()
    driver._inventory = object()  # type: ignore[assignment]
    driver.node_config = type("Cfg", (), {"publish": None})()  # type: ignore[assignment]
    driver.profile = "1.37"
    driver.dropped_gates = set()
    driver.metrics = None
    driver.monitor = rec  # type: ignore[assignment]
    driver.publisher = rec  # type: ignore[assignment]
    driver.publication = _Plan(frozenset())  # type: ignore[assignment]

    health = threading.Thread(target=driver._inventory_changed, args=(object(),))
    health.start()
    assert planning.wait(10)
    fallback = threading.Thread(target=driver._published, args=(PublishResult(dropped_gates={"DRADeviceTaints"}),))
    fallback.start()
    release.set()
    health.join(10)
    fallback.join(10)
    assert not health.is_alive() and not fallback.is_alive()

    assert rec.desired == [frozenset(), frozenset({"DRADeviceTaints"})]
    assert rec.models == rec.desired
    assert driver.publication.slices == [frozenset({"DRADeviceTaints"})]  # type: ignore[comparison-overlap]
