"""Metrics of the kubelet plugin, exported for Prometheus through OpenTelemetry.

The set follows what operators already scrape from peer drivers (request counts and durations,
in-flight requests, prepared and published devices, last publish time) and keeps labels low in
cardinality: method and API version, never a claim UID.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import start_http_server

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 45.0)


@dataclass
class Gauges:
    """Values read at scrape time; the plugin updates them as it works."""

    prepared_devices: int = 0
    published_devices: int = 0
    last_publish_unix: float = 0.0


@dataclass
class DriverMetrics:
    """Instruments the plugin records into; one per process."""

    provider: MeterProvider
    gauges: Gauges = field(default_factory=Gauges)
    server: WSGIServer | None = None

    def __post_init__(self) -> None:
        meter = self.provider.get_meter("snn_dra.driver")
        self._requests = meter.create_counter(
            "snn_dra_requests", unit="1", description="Kubelet gRPC requests handled, by method and result"
        )
        self._claims = meter.create_counter(
            "snn_dra_claims", unit="1", description="Claims handled inside requests, by method and result"
        )
        self._duration = meter.create_histogram(
            "snn_dra_request_duration",
            unit="s",
            description="Time to answer a kubelet gRPC request",
            explicit_bucket_boundaries_advisory=list(_SECONDS_BUCKETS),
        )
        self._untrusted = meter.create_counter(
            "snn_dra_prepare_state_untrusted",
            unit="1",
            description="Times the prepare state (checkpoint, CDI specs) could not be trusted and was recovered "
            "from evidence; alert on any increase",
        )
        self._inflight = meter.create_up_down_counter(
            "snn_dra_requests_inflight", unit="1", description="Kubelet gRPC requests being handled"
        )
        meter.create_observable_gauge(
            "snn_dra_prepared_devices", callbacks=[self._observe("prepared_devices")], description="Devices prepared"
        )
        meter.create_observable_gauge(
            "snn_dra_published_devices",
            callbacks=[self._observe("published_devices")],
            description="Devices in the published ResourceSlices",
        )
        meter.create_observable_gauge(
            "snn_dra_last_publish_timestamp",
            unit="s",
            callbacks=[self._observe("last_publish_unix")],
            description="Unix time of the last successful ResourceSlice publish",
        )

    def _observe(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(getattr(self.gauges, name))

        return callback

    @contextmanager
    def request(self, method: str, api: str) -> Iterator[None]:
        """Count and time one gRPC request; an exception counts as an error result."""
        attrs = {"method": method, "api": api}
        self._inflight.add(1, attrs)
        start = time.perf_counter()
        result = "error"
        try:
            yield
            result = "ok"
        finally:
            self._inflight.add(-1, attrs)
            self._duration.record(time.perf_counter() - start, attrs)
            self._requests.add(1, {**attrs, "result": result})

    def claims(self, method: str, ok: int, failed: int) -> None:
        if ok:
            self._claims.add(ok, {"method": method, "result": "ok"})
        if failed:
            self._claims.add(failed, {"method": method, "result": "error"})

    def state_untrusted(self) -> None:
        self._untrusted.add(1)

    def published(self, devices: int) -> None:
        self.gauges.published_devices = devices
        self.gauges.last_publish_unix = time.time()

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.provider.shutdown()


def setup_metrics(port: int | None, host: str = "0.0.0.0") -> DriverMetrics:
    """Create the instruments and, with a port, serve ``/metrics`` (port 0 picks a free one).

    The exporter registers on prometheus_client's global registry, so one process holds one live
    ``DriverMetrics`` at a time; ``shutdown()`` unregisters it.
    """
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    metrics = DriverMetrics(provider=provider)
    if port is not None:
        server, _thread = start_http_server(port, addr=host)
        metrics.server = server
    return metrics
