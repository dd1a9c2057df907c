"""Chip health: backend events -> a health-aware inventory (slice taints) and the kubelet health stream.

Health has one source, the backend's ``watch_health()`` (or events fed in directly), and two consumers:

* **Slices.** An unhealthy chip keeps its devices in the pool, in place, and every one of them (partitions,
  router, queues) gets the taint ``snn.dra.dev/unhealthy`` with effect ``NoSchedule``; a recovered chip loses
  it. ``slices.py`` already derives that taint from ``Chip.healthy``, so this module only produces the
  inventory with the chip's ``healthy``/``health_reason`` replaced and hands it to ``on_inventory_change``;
  the caller rebuilds model and slices (:func:`slice_republisher`). ``NoSchedule`` rather than ``NoExecute``
  because a chip that stops answering health checks may still be running its pods' networks: evicting them is
  the operator's call (a ``DeviceTaintRule``), new pods simply stay away. There is no taint value: the reason
  is free text that would not fit a label value; it goes to the kubelet stream and the logs instead.
* **Kubelet stream (KEP-4680).** :meth:`HealthMonitor.entries` is the provider the plugin's ``HealthHub``
  calls: one entry per published device, every time the complete list. ``last_updated`` is the time of the
  snapshot while the backend is being watched, because the kubelet turns a device Unknown once its entry is
  older than the timeout; if the backend's watch fails, the devices are reported ``UNKNOWN`` (we can no
  longer vouch for them) and the taints stay as they were.

A burst of events (a board losing power takes all its chips) must cost one republish, not one per chip:
:meth:`HealthMonitor.run` applies every event the backend has already delivered before it calls back, and
at most one inventory callback runs per ``min_interval``. The health stream is told at once, since the hub
already coalesces its snapshots.

Wiring (the plugin command)::

    monitor = HealthMonitor(inventory, build_model(inventory, cfg.publish),
                            on_inventory_change=slice_republisher(publisher, cfg.publish))
    server = PluginServer(plugin_config, preparer, health_provider=monitor.entries)
    monitor.on_health_change = server.health.notify_changed
    task = asyncio.create_task(monitor.run(backend.watch_health()))
    ...
    monitor.stop(); await task
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.api.nodeconfig import PublishConfig
from snn_dra.driver.backends.base import Board, HealthEvent, Inventory
from snn_dra.driver.model import DeviceModel, build_model
from snn_dra.driver.plugin.health import DeviceHealthEntry, HealthStatus, clip_message
from snn_dra.driver.slices import build_slices

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_SECONDS: Final = 1.0
"""Least time between two inventory callbacks (each rebuilds and republishes every slice)."""
DEFAULT_UNHEALTHY_REASON: Final = "unhealthy (no reason given by the backend)"


@dataclass(frozen=True, slots=True)
class ChipHealth:
    """What the monitor believes about one chip."""

    healthy: bool
    reason: str
    """Why it is unhealthy (empty when healthy)."""
    message: str
    """The text for the kubelet: reason plus the backend's details; not yet clipped."""
    since: float
    """Unix time of the last change (discovery time for the initial state)."""


class DesiredSlices(Protocol):
    """What :func:`slice_republisher` needs from the publisher (``SlicePublisher`` has it)."""

    def set_desired(self, slices: Sequence[Mapping[str, Any]]) -> None: ...


def _message(reason: str, details: Mapping[str, str]) -> str:
    if not details:
        return reason
    extra = ", ".join(f"{k}={v}" for k, v in sorted(details.items()))
    return f"{reason} ({extra})"


class HealthMonitor:
    """Current health of every chip of one node, fed by backend events.

    ``model`` names the published devices; device names and order do not depend on health, so the model
    built from the discovered inventory stays valid for every health state. Methods other than :meth:`run`
    may be called from any thread. Callbacks run on the thread that flushes (the event loop under
    :meth:`run`): ``on_inventory_change`` should hand work off quickly (``SlicePublisher.set_desired`` does),
    ``on_health_change`` is meant for ``HealthHub.notify_changed``.
    """

    def __init__(
        self,
        inventory: Inventory,
        model: DeviceModel,
        *,
        on_inventory_change: Callable[[Inventory], None] | None = None,
        on_health_change: Callable[[], None] | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL_SECONDS,
        timeout_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval}")
        if timeout_seconds < 0:
            raise ValueError(f"timeout_seconds must be >= 0 (0 = the kubelet's default of 30 s), got {timeout_seconds}")
        chip_ids = {c.id for c in inventory.chips}
        strangers = sorted({d.chip.id for d in model.devices} - chip_ids)
        if strangers:
            raise ValueError(
                f"the device model names chips that are not in the inventory of node {inventory.node_name}: "
                f"{', '.join(strangers)}; build the model from this inventory"
            )
        self.on_inventory_change = on_inventory_change
        self.on_health_change = on_health_change
        self.min_interval = min_interval
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._pool = inventory.node_name
        self._devices = tuple((d.name, d.chip.id) for d in model.devices)
        now = clock()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._base = inventory
        self._health: dict[str, ChipHealth] = {}
        for chip in inventory.chips:
            reason = "" if chip.healthy else (chip.health_reason or DEFAULT_UNHEALTHY_REASON)
            self._health[chip.id] = ChipHealth(chip.healthy, reason, reason, now)
        self._inventory: Inventory | None = None
        self._inventory_dirty = False
        self._health_dirty = False
        self._lost: str | None = None
        self._lost_at = 0.0
        self.ignored_events = 0
        """Events for chips this node does not have (a rescan is needed to publish new hardware)."""
        self.inventory_callbacks = 0
        self._run_loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False

    def set_model(self, model: DeviceModel) -> None:
        """Follow a re-planned publication (fewer levels on an older API server): report its devices from now on."""
        with self._lock:
            self._devices = tuple((d.name, d.chip.id) for d in model.devices)
        if self.on_health_change is not None:
            self.on_health_change()

    # --- state -----------------------------------------------------------------------------------

    @property
    def inventory(self) -> Inventory:
        """The discovered inventory with every chip's current health."""
        with self._lock:
            if self._inventory is None:
                self._inventory = self._rebuild()
            return self._inventory

    def health(self) -> dict[str, ChipHealth]:
        """Chip ID -> current health."""
        with self._lock:
            return dict(self._health)

    @property
    def source_error(self) -> str | None:
        """Why the backend's health watch ended, if it failed (devices are then reported UNKNOWN)."""
        with self._lock:
            return self._lost

    def _rebuild(self) -> Inventory:
        boards: list[Board] = []
        for board in self._base.boards:
            chips = tuple(
                chip
                if (h := self._health[chip.id]).healthy == chip.healthy and h.reason == chip.health_reason
                else dataclasses.replace(chip, healthy=h.healthy, health_reason=h.reason)
                for chip in board.chips
            )
            boards.append(board if chips == board.chips else dataclasses.replace(board, chips=chips))
        return dataclasses.replace(self._base, boards=tuple(boards))

    # --- input -----------------------------------------------------------------------------------

    def apply(self, events: Iterable[HealthEvent]) -> bool:
        """Take events into the state; True if any chip's health or reason changed.

        Nothing is called back here: :meth:`run` does it once per burst, other callers use :meth:`flush`.
        """
        changed = False
        now = self._clock()
        with self._lock:
            for event in events:
                current = self._health.get(event.chip_id)
                if current is None:
                    self.ignored_events += 1
                    log.warning(
                        "health event for chip %s ignored: node %s has no such chip (restart the plugin to "
                        "publish new hardware)",
                        event.chip_id,
                        self._pool,
                    )
                    continue
                reason = "" if event.healthy else (event.reason or DEFAULT_UNHEALTHY_REASON)
                message = "" if event.healthy else _message(reason, event.details)
                if current.healthy == event.healthy and current.reason == reason and current.message == message:
                    continue
                if current.healthy != event.healthy:
                    log.warning(
                        "chip %s is %s%s",
                        event.chip_id,
                        "healthy again" if event.healthy else "unhealthy",
                        "" if event.healthy else f": {message}",
                    )
                self._health[event.chip_id] = ChipHealth(event.healthy, reason, message, now)
                changed = True
            if changed:
                self._inventory = None
                self._inventory_dirty = self._health_dirty = True
        if changed:
            self._poke()
        return changed

    def _poke(self) -> None:
        loop, wake = self._run_loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            # Through the loop even on its own thread: the wake-up then lands after the events already queued.
            loop.call_soon_threadsafe(wake.set)

    def _source_failed(self, error: str) -> None:
        with self._lock:
            self._lost = error
            self._lost_at = self._clock()
            self._health_dirty = True
        log.error("chip health is no longer watched, devices are reported Unknown: %s", error)

    # --- output ----------------------------------------------------------------------------------

    def entries(self) -> list[DeviceHealthEntry]:
        """The complete device list for the kubelet (``HealthProvider``): one entry per published device."""
        with self._lock:
            health = self._health
            lost, lost_at = self._lost, self._lost_at
            pool, devices, timeout = self._pool, self._devices, self.timeout_seconds
            now = int(self._clock())
            by_chip: dict[str, tuple[HealthStatus, int, str]] = {}
            for chip_id, h in health.items():
                if lost is not None:
                    by_chip[chip_id] = (
                        HealthStatus.UNKNOWN,
                        int(lost_at),
                        clip_message(f"health monitoring stopped: {lost}"),
                    )
                elif h.healthy:
                    by_chip[chip_id] = (HealthStatus.HEALTHY, now, "")
                else:
                    by_chip[chip_id] = (HealthStatus.UNHEALTHY, now, clip_message(f"chip {chip_id}: {h.message}"))
        out = []
        for name, chip_id in devices:
            status, updated, message = by_chip[chip_id]
            out.append(DeviceHealthEntry(pool, name, status, updated, timeout, message))
        return out

    def flush(self) -> bool:
        """Call back now for whatever changed since the last flush; True if anything was called."""
        return self._flush(force=True, now=0.0, next_allowed=0.0)[0]

    def _flush(self, *, force: bool, now: float, next_allowed: float) -> tuple[bool, bool]:
        """Returns (called anything, inventory callback ran)."""
        with self._flush_lock:
            with self._lock:
                health_dirty = self._health_dirty
                inventory_dirty = self._inventory_dirty and (force or now >= next_allowed)
                self._health_dirty = False
                if inventory_dirty:
                    self._inventory_dirty = False
            if health_dirty and self.on_health_change is not None:
                try:
                    self.on_health_change()
                except Exception:
                    log.exception("health change notification failed")
            if inventory_dirty and self.on_inventory_change is not None:
                self.inventory_callbacks += 1
                try:
                    self.on_inventory_change(self.inventory)
                except Exception:
                    log.exception("republishing slices after a health change failed; retried on the next change")
            return health_dirty or inventory_dirty, inventory_dirty

    # --- async consumer -------------------------------------------------------------------------

    async def run(self, events: AsyncIterator[HealthEvent]) -> None:
        """Consume ``events`` (``backend.watch_health()``) until :meth:`stop`, the end of the stream or cancel.

        Pending changes are flushed when it stops or the stream ends; a failing stream marks every device
        UNKNOWN for the kubelet. Cancellation ends it without further callbacks. The stream is closed on exit.
        """
        if self._run_loop is not None:
            raise RuntimeError("HealthMonitor.run is already running; one monitor consumes one stream")
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        with self._lock:
            self._run_loop, self._wake = loop, wake
            pending = self._inventory_dirty or self._health_dirty or self._stopping
        if pending:
            wake.set()

        async def pump() -> None:
            try:
                async for event in events:
                    self.apply((event,))
            except Exception as e:  # a backend bug or a lost device must not go unnoticed by the kubelet
                self._source_failed(f"{type(e).__name__}: {e}")
            finally:
                wake.set()

        pump_task = asyncio.create_task(pump(), name="snn-dra-health-pump")
        next_allowed = 0.0
        try:
            while True:
                timeout: float | None = None
                with self._lock:
                    if self._inventory_dirty and not self._stopping:
                        timeout = max(0.0, next_allowed - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
                wake.clear()
                final = self._stopping or pump_task.done()
                _, republished = self._flush(force=final, now=loop.time(), next_allowed=next_allowed)
                if republished:
                    next_allowed = loop.time() + self.min_interval
                if final:
                    return
        finally:
            pump_task.cancel()
            await asyncio.gather(pump_task, return_exceptions=True)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            with self._lock:
                self._run_loop = self._wake = None

    def stop(self) -> None:
        """Make :meth:`run` flush what is pending and return (any thread; sticky, so it may precede ``run``)."""
        with self._lock:
            self._stopping = True
        self._poke()


def slice_republisher(
    publisher: DesiredSlices,
    publish: PublishConfig,
    *,
    driver: str = DRIVER_NAME,
    profile: str = "1.37",
    reserve_for_taints: bool = True,
) -> Callable[[Inventory], None]:
    """An ``on_inventory_change`` that rebuilds model and slices and hands them to the publisher."""

    def republish(inventory: Inventory) -> None:
        model = build_model(inventory, publish)
        publisher.set_desired(
            build_slices(
                model, inventory.node_name, driver=driver, profile=profile, reserve_for_taints=reserve_for_taints
            )
        )

    return republish
