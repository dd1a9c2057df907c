"""Backend health events -> monitor -> inventory with the chip's health -> slices with taints -> kubelet list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import pytest

from snn_dra.api.attributes import CHIP_ID
from snn_dra.api.nodeconfig import NodeConfig
from snn_dra.driver.backends import SimulatedBackend, parse_node_config
from snn_dra.driver.backends.base import BackendError, HealthEvent, Inventory
from snn_dra.driver.health import HealthMonitor, slice_republisher
from snn_dra.driver.model import DeviceModel, build_model
from snn_dra.driver.plugin.health import DeviceHealthEntry, HealthHub, HealthStatus, to_v1
from snn_dra.driver.slices import TAINT_EFFECT, TAINT_KEY, build_slices

NODE = "node-h"
NOW = 1_780_000_000.0
WAIT = 10.0
"""Upper bound on waiting for a condition; never reached when the code works."""


def config() -> NodeConfig:
    return parse_node_config(
        {
            "backend": "simulated",
            "publish": {"levels": ["chip", "coreGroup", "spikeRouter", "eventQueue"]},
            "boards": [
                {"family": "loihi2", "model": "kapoho-point", "chips": 4, "mesh": [2, 2, 1]},
                {"family": "akida", "model": "akd1000-pcie", "chips": 1},
            ],
        }
    )


class Recorder:
    """Collects the monitor's callbacks and lets a test wait for a condition on them without sleeping."""

    def __init__(self) -> None:
        self.inventories: list[Inventory] = []
        self.health_changes = 0
        self._event: asyncio.Event | None = None

    def on_inventory(self, inventory: Inventory) -> None:
        self.inventories.append(inventory)
        self._notify()

    def on_health(self) -> None:
        self.health_changes += 1
        self._notify()

    def _notify(self) -> None:
        if self._event is not None:
            self._event.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not predicate():
                self._event = asyncio.Event()
                await self._event.wait()

        await asyncio.wait_for(wait(), WAIT)


class Sink:
    def __init__(self) -> None:
        self.slices: list[dict[str, Any]] = []

    def set_desired(self, slices: Sequence[Mapping[str, Any]]) -> None:
        self.slices = [dict(s) for s in slices]


def setup(min_interval: float = 0.0) -> tuple[SimulatedBackend, DeviceModel, HealthMonitor, Recorder]:
    cfg = config()
    backend = SimulatedBackend(cfg, NODE)
    inventory = backend.discover()
    model = build_model(inventory, cfg.publish)
    rec = Recorder()
    monitor = HealthMonitor(
        inventory,
        model,
        on_inventory_change=rec.on_inventory,
        on_health_change=rec.on_health,
        min_interval=min_interval,
        clock=lambda: NOW,
    )
    return backend, model, monitor, rec


def tainted_chips(slices: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Chip ID -> names of its devices that carry the unhealthy taint."""
    out: dict[str, set[str]] = {}
    for s in slices:
        for d in s["spec"].get("devices") or ():
            if d.get("taints"):
                assert d["taints"] == [{"key": TAINT_KEY, "effect": TAINT_EFFECT}]
                out.setdefault(d["attributes"][CHIP_ID]["string"], set()).add(d["name"])
    return out


def run_async(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await body()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_unhealthy_chip_taints_exactly_its_devices_and_recovery_clears_them() -> None:
    backend, model, monitor, rec = setup()
    chip = backend.chip_ids()[1]
    sink = Sink()
    republish = slice_republisher(sink, config().publish)
    chip_devices = {d.name for d in model.devices if d.chip.id == chip}
    chip_types = {str(d.type) for d in model.devices if d.chip.id == chip}
    assert chip_types == {"chip", "coreGroup", "spikeRouter", "eventQueue"}

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        backend.set_chip_health(chip, False, "link training failed")
        await rec.until(lambda: len(rec.inventories) == 1)
        inventory = rec.inventories[-1]
        bad = [c for c in inventory.chips if not c.healthy]
        assert [(c.id, c.health_reason) for c in bad] == [(chip, "link training failed")]
        republish(inventory)
        assert tainted_chips(sink.slices) == {chip: chip_devices}

        backend.set_chip_health(chip, True)
        await rec.until(lambda: len(rec.inventories) == 2)
        assert all(c.healthy and c.health_reason == "" for c in rec.inventories[-1].chips)
        republish(rec.inventories[-1])
        assert tainted_chips(sink.slices) == {}
        monitor.stop()
        await asyncio.wait_for(task, WAIT)

    run_async(body)
    # The slices of a recovered node equal the ones published before the fault.
    assert sink.slices == build_slices(model, NODE)


def test_health_list_has_one_entry_per_device_with_status_and_clipped_message() -> None:
    backend, model, monitor, _ = setup()
    bad, good = backend.chip_ids()[0], backend.chip_ids()[2]
    long_reason = "ECC error storm " + "x" * 3000
    assert monitor.apply([HealthEvent(bad, False, long_reason, {"register": "0x1f"})])
    entries = monitor.entries()
    assert [e.device for e in entries] == [d.name for d in model.devices]
    assert {e.pool for e in entries} == {NODE}
    assert {e.last_updated for e in entries} == {int(NOW)}
    chip_of = {d.name: d.chip.id for d in model.devices}
    for e in entries:
        if chip_of[e.device] == bad:
            assert e.health is HealthStatus.UNHEALTHY
            assert len(e.message) == 1024 and e.message.endswith("...")
            assert e.message.startswith(f"chip {bad}: ECC error storm xxx")
        else:
            assert e.health is HealthStatus.HEALTHY and e.message == ""
    # The inventory keeps the full reason; only the kubelet text is cut.
    assert monitor.health()[bad].reason == long_reason
    assert monitor.health()[good].healthy
    short = HealthEvent(bad, False, "thermal trip", {"zone": "1", "temp": "105C"})
    assert monitor.apply([short])
    message = next(e.message for e in monitor.entries() if chip_of[e.device] == bad)
    assert message == f"chip {bad}: thermal trip (temp=105C, zone=1)"


def test_a_burst_of_events_gives_one_republish() -> None:
    backend, _, monitor, rec = setup()
    chips = backend.chip_ids()[:4]  # a whole Loihi board loses power

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        for chip in chips:
            backend.set_chip_health(chip, False, "board power lost")
        await rec.until(lambda: len(rec.inventories) >= 1)
        monitor.stop()
        await asyncio.wait_for(task, WAIT)

    run_async(body)
    assert len(rec.inventories) == 1 and monitor.inventory_callbacks == 1
    assert {c.id for c in rec.inventories[0].chips if not c.healthy} == set(chips)
    assert rec.health_changes == 1


def test_republish_is_rate_limited_but_the_kubelet_hears_at_once() -> None:
    backend, _, monitor, rec = setup(min_interval=3600.0)
    a, b = backend.chip_ids()[:2]

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        backend.set_chip_health(a, False, "fault a")
        await rec.until(lambda: len(rec.inventories) == 1)
        backend.set_chip_health(b, False, "fault b")
        await rec.until(lambda: rec.health_changes == 2)
        assert len(rec.inventories) == 1  # held back by min_interval
        assert next(e.health for e in monitor.entries() if b in e.device) is HealthStatus.UNHEALTHY
        monitor.stop()  # pending changes are flushed on the way out
        await asyncio.wait_for(task, WAIT)

    run_async(body)
    assert len(rec.inventories) == 2
    assert {c.id for c in rec.inventories[-1].chips if not c.healthy} == {a, b}


def test_repeated_and_unknown_events_change_nothing() -> None:
    backend, _, monitor, rec = setup()
    chip = backend.chip_ids()[0]
    assert not monitor.apply([HealthEvent(chip, True, "recovered")])
    assert not monitor.apply([HealthEvent("loihi2-nope", False, "gone")])
    assert monitor.ignored_events == 1
    assert not monitor.flush()
    assert monitor.apply([HealthEvent(chip, False, "")])
    assert not monitor.apply([HealthEvent(chip, False, "")])
    assert monitor.flush() and not monitor.flush()
    assert len(rec.inventories) == 1 and rec.health_changes == 1
    assert monitor.health()[chip].reason == "unhealthy (no reason given by the backend)"
    # A new reason for a chip that stays unhealthy is news for the kubelet and the inventory.
    assert monitor.apply([HealthEvent(chip, False, "still broken")])
    assert monitor.flush()
    assert rec.inventories[-1].chips[0].health_reason == "still broken"


def test_initially_unhealthy_chips_are_reported_and_tainted_without_events() -> None:
    cfg = config()
    raw = cfg.model_dump(by_alias=True)
    raw["boards"][1]["unhealthyChips"] = [0]
    cfg = parse_node_config(raw)
    inventory = SimulatedBackend(cfg, NODE).discover()
    model = build_model(inventory, cfg.publish)
    monitor = HealthMonitor(inventory, model, clock=lambda: NOW)
    akida = inventory.chips[-1]
    assert not akida.healthy
    unhealthy = {e.device for e in monitor.entries() if e.health is HealthStatus.UNHEALTHY}
    assert unhealthy == {d.name for d in model.devices if d.chip.id == akida.id}
    assert monitor.inventory == inventory
    assert set(tainted_chips(build_slices(build_model(monitor.inventory, cfg.publish), NODE))) == {akida.id}


def test_failed_watch_reports_unknown_and_keeps_taints() -> None:
    backend, model, monitor, rec = setup()
    chip = backend.chip_ids()[0]

    async def broken() -> AsyncIterator[HealthEvent]:
        yield HealthEvent(chip, False, "driver timeout")
        raise BackendError("/sys/class/akida vanished")

    async def body() -> None:
        await asyncio.wait_for(monitor.run(broken()), WAIT)

    run_async(body)
    assert monitor.source_error == "BackendError: /sys/class/akida vanished"
    entries = monitor.entries()
    assert len(entries) == len(model.devices)
    assert {e.health for e in entries} == {HealthStatus.UNKNOWN}
    assert all(e.message == "health monitoring stopped: BackendError: /sys/class/akida vanished" for e in entries)
    assert not monitor.inventory.chips[0].healthy  # taints stay: we only stopped knowing
    assert len(rec.inventories) == 1 and rec.health_changes >= 1


def test_cancel_and_stop_leave_no_tasks_and_unsubscribe() -> None:
    backend, _, monitor, rec = setup()
    chip = backend.chip_ids()[0]

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        backend.set_chip_health(chip, False, "x")
        await rec.until(lambda: len(rec.inventories) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The stream was closed: later changes reach nobody, and a new run can start.
        backend.set_chip_health(chip, True)
        assert backend._streams == []
        again = HealthMonitor(backend.discover(), build_model(backend.discover(), config().publish))
        again.stop()  # stop before run: run returns at once
        await asyncio.wait_for(again.run(backend.watch_health()), WAIT)
        assert backend._streams == []

    run_async(body)


def test_backend_close_ends_run() -> None:
    backend, _, monitor, _ = setup()

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        backend.close()
        await asyncio.wait_for(task, WAIT)

    run_async(body)
    assert monitor.source_error is None


def test_events_from_another_thread_reach_the_loop() -> None:
    backend, _, monitor, rec = setup()
    chips = backend.chip_ids()

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        await asyncio.to_thread(backend.set_chip_health, chips[3], False, "from a thread")
        await asyncio.to_thread(monitor.apply, [HealthEvent(chips[4], False, "fed directly")])
        await rec.until(lambda: sum(not c.healthy for c in monitor.inventory.chips) == 2 and not monitor_pending())
        monitor.stop()
        await asyncio.wait_for(task, WAIT)

    def monitor_pending() -> bool:
        return not rec.inventories or any(c.healthy for c in rec.inventories[-1].chips[3:5])

    run_async(body)
    assert {c.id for c in rec.inventories[-1].chips if not c.healthy} == {chips[3], chips[4]}


def test_the_plugin_health_hub_streams_the_monitor_list() -> None:
    backend, model, monitor, _ = setup()
    hub = HealthHub(monitor.entries, interval=3600.0)
    monitor.on_health_change = hub.notify_changed
    chip = backend.chip_ids()[1]

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        stream = cast(AsyncGenerator[list[DeviceHealthEntry], None], hub.subscribe())
        first = to_v1(await anext(stream))
        assert len(first.devices) == len(model.devices)
        assert {d.health for d in first.devices} == {HealthStatus.HEALTHY.value}
        backend.set_chip_health(chip, False, "z" * 5000)
        second = to_v1(await asyncio.wait_for(anext(stream), WAIT))
        bad = [d for d in second.devices if d.health == HealthStatus.UNHEALTHY.value]
        assert {d.device.device_name for d in bad} == {d.name for d in model.devices if d.chip.id == chip}
        assert all(len(d.message) == 1024 and d.device.pool_name == NODE for d in bad)
        await stream.aclose()
        monitor.stop()
        await asyncio.wait_for(task, WAIT)

    run_async(body)


def test_bad_construction_is_refused_with_the_reason() -> None:
    backend, model, _, _ = setup()
    other = SimulatedBackend(config(), "other-node").discover()
    with pytest.raises(ValueError, match="not in the inventory of node other-node"):
        HealthMonitor(other, model)
    with pytest.raises(ValueError, match="min_interval"):
        HealthMonitor(backend.discover(), model, min_interval=-1)
    with pytest.raises(ValueError, match="timeout_seconds"):
        HealthMonitor(backend.discover(), model, timeout_seconds=-5)
