"""The KEP-4680 device health streams (``v1alpha1`` and ``v1`` ``DRAResourceHealth``).

The kubelet marks a device Unknown when it is not refreshed within its timeout (30 s by default) and clears the
driver's cache when the stream ends, so every message carries the complete device list: at connect, on every
change, and again every ``interval`` seconds. What the list contains comes from a provider the CLI wires to the
backend and device model; this module only turns it into the wire format and keeps the streams fed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from typing_extensions import override

from snn_dra.api.kubelet.dra_health.v1 import api_pb2 as health_v1
from snn_dra.api.kubelet.dra_health.v1 import api_pb2_grpc as health_v1_grpc
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2 as health_v1alpha1
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2_grpc as health_v1alpha1_grpc

log = logging.getLogger("snn_dra.plugin.health")

MESSAGE_MAX = 1024
DEFAULT_INTERVAL_SECONDS = 10.0


class HealthStatus(enum.Enum):
    """Wire values of the ``HealthStatus`` enum (identical in v1alpha1 and v1)."""

    UNKNOWN = 0
    HEALTHY = 1
    UNHEALTHY = 2


@dataclass(frozen=True, slots=True)
class DeviceHealthEntry:
    """Health of one published device, as the kubelet should see it."""

    pool: str
    device: str
    health: HealthStatus
    last_updated: int
    """Unix seconds of the last health check."""
    timeout_seconds: int = 0
    """How long the kubelet trusts this entry; 0 means the kubelet default (30 s)."""
    message: str = ""


HealthProvider = Callable[[], Sequence[DeviceHealthEntry]]
"""Returns the complete current device list; called on the event loop, so it must be cheap and thread-safe."""


class HealthProviderError(RuntimeError):
    """The health provider raised; the stream ends with an error instead of sending a wrong list."""


def clip_message(message: str) -> str:
    """Keep messages within the kubelet's 1024-character limit the way it would cut them itself."""
    return message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 3] + "..."


class HealthHub:
    """Fans the provider's snapshots out to every open stream.

    ``notify_changed`` may be called from any thread (backend watchers run in their own); it wakes every
    subscriber, which then re-reads the provider, so a burst of changes costs one snapshot per stream.
    """

    def __init__(self, provider: HealthProvider, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        if interval <= 0:
            raise ValueError(f"health interval must be positive, got {interval}")
        self._provider = provider
        self.interval = interval
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.sent_snapshots = 0
        self._closed = False

    def notify_changed(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, event in subscribers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        """End every stream (on shutdown), so stopping the server does not wait for them."""
        self._closed = True
        self.notify_changed()

    def snapshot(self) -> list[DeviceHealthEntry]:
        """The provider's current list; a failing provider ends the streams (the kubelet re-opens in 5 s)."""
        try:
            return list(self._provider())
        except Exception as exc:
            log.exception("health provider failed")
            raise HealthProviderError(f"device health is unavailable: {type(exc).__name__}: {exc}") from exc

    async def subscribe(self) -> AsyncIterator[list[DeviceHealthEntry]]:
        """Yield a full snapshot now, after every change notification, and at least every ``interval`` seconds."""
        key = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._subscribers.add(key)
        try:
            while not self._closed:
                key[1].clear()
                self.sent_snapshots += 1
                yield self.snapshot()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(key[1].wait(), timeout=self.interval)
                if self._closed:
                    break
        finally:
            with self._lock:
                self._subscribers.discard(key)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)


def _to_wire(module: Any, entries: Sequence[DeviceHealthEntry]) -> Any:
    return module.NodeWatchResourcesResponse(
        devices=[
            module.DeviceHealth(
                device=module.DeviceIdentifier(pool_name=e.pool, device_name=e.device),
                health=e.health.value,
                last_updated_time=e.last_updated,
                health_check_timeout_seconds=e.timeout_seconds,
                message=clip_message(e.message),
            )
            for e in entries
        ]
    )


def to_v1(entries: Sequence[DeviceHealthEntry]) -> health_v1.NodeWatchResourcesResponse:
    response: health_v1.NodeWatchResourcesResponse = _to_wire(health_v1, entries)
    return response


def to_v1alpha1(entries: Sequence[DeviceHealthEntry]) -> health_v1alpha1.NodeWatchResourcesResponse:
    response: health_v1alpha1.NodeWatchResourcesResponse = _to_wire(health_v1alpha1, entries)
    return response


class HealthV1Servicer(health_v1_grpc.DRAResourceHealthServicer):
    """``/v1.DRAResourceHealth/NodeWatchResources`` (preferred by 1.37 kubelets)."""

    def __init__(self, hub: HealthHub) -> None:
        self._hub = hub

    @override
    async def NodeWatchResources(
        self, request: health_v1.NodeWatchResourcesRequest, context: Any
    ) -> AsyncIterator[health_v1.NodeWatchResourcesResponse]:
        log.info("health stream v1 opened")
        try:
            async for snapshot in self._hub.subscribe():
                yield to_v1(snapshot)
        except HealthProviderError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            log.info("health stream v1 closed")


class HealthV1Alpha1Servicer(health_v1alpha1_grpc.DRAResourceHealthServicer):
    """``/v1alpha1.DRAResourceHealth/NodeWatchResources`` (1.34 to 1.36 kubelets open it unconditionally)."""

    def __init__(self, hub: HealthHub) -> None:
        self._hub = hub

    @override
    async def NodeWatchResources(
        self, request: health_v1alpha1.NodeWatchResourcesRequest, context: Any
    ) -> AsyncIterator[health_v1alpha1.NodeWatchResourcesResponse]:
        log.info("health stream v1alpha1 opened")
        try:
            async for snapshot in self._hub.subscribe():
                yield to_v1alpha1(snapshot)
        except HealthProviderError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            log.info("health stream v1alpha1 closed")
