"""One node's driver, wired: backend -> model -> slices -> publisher, health, and the claim preparer.

This is the composition root of the kubelet plugin. It owns the only mutable piece of the publish flow,
the current :class:`~snn_dra.driver.compat.Publication`, and replaces it when the API server turns out to
drop fields (older cluster) or a chip's health changes; the preparer and the health stream read the
current model through it, so a device name always resolves against what is published.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config

from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.api.nodeconfig import NodeConfig
from snn_dra.driver.backends import load_backend
from snn_dra.driver.backends.base import Backend, Inventory
from snn_dra.driver.claims import KubeClaimSource
from snn_dra.driver.compat import Publication, plan, profile_for_version
from snn_dra.driver.events import post_node_event_async
from snn_dra.driver.health import HealthMonitor
from snn_dra.driver.kubejson import KubeJSON
from snn_dra.driver.model import ModelDevice
from snn_dra.driver.plugin.preparer import ClaimResultLike
from snn_dra.driver.plugin.server import PluginServer
from snn_dra.driver.prepare import FaultHook, FetchedClaims, Preparer
from snn_dra.driver.publisher import PublishResult, SlicePublisher
from snn_dra.driver.telemetry import DriverMetrics

log = logging.getLogger("snn_dra.node")

UNTRUSTED_STATE_REASON = "PrepareStateUntrusted"
"""Reason of the Node Event sent when the checkpoint or CDI specs could not be trusted."""


def api_client_for(kubeconfig: Path | None) -> client.ApiClient:
    """The official client from a kubeconfig file, or from the pod's service account when None.

    TCP keepalive is on (the client's ``keep_alive``, client-go's timings): a connection whose peer
    vanished without a reset is detected by the kernel instead of blocking a watch or request forever.
    """
    configuration = client.Configuration()
    if kubeconfig is None:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
    configuration.keep_alive = True
    return client.ApiClient(configuration)


def server_profile(api_client: client.ApiClient) -> str:
    version = KubeJSON(api_client).get("/version")
    return profile_for_version(str(version.get("major", "1")), str(version.get("minor", "37")))


class NodeDriver:
    """Everything the plugin runs for its node, built once at start-up."""

    def __init__(
        self,
        *,
        node_name: str,
        node_config: NodeConfig,
        api_client: client.ApiClient,
        cdi_dir: Path,
        state_dir: Path,
        metrics: DriverMetrics | None = None,
        backend: Backend | None = None,
        fault_hook: FaultHook | None = None,
    ) -> None:
        self.node_name = node_name
        self.api_client = api_client
        self.node_config = node_config
        self.metrics = metrics
        self.backend = backend or load_backend(node_config, node_name)
        self._inventory: Inventory = self.backend.discover()
        self.profile = server_profile(api_client)
        self.dropped_gates: set[str] = set()
        self._lock = threading.Lock()
        self.publication: Publication = plan(self._inventory, node_config.publish, profile=self.profile)
        log.info(
            "node %s: %d chips, publishing %s (%d devices in %d slices) for a %s API server",
            node_name,
            len(self._inventory.chips),
            ", ".join(self.publication.publish.levels),
            len(self.publication.model.devices),
            len(self.publication.slices),
            self.profile,
        )
        self.publisher = SlicePublisher(
            api_client, driver=DRIVER_NAME, node_name=node_name, on_published=self._published
        )
        self.publisher.set_desired(self.publication.slices)
        self.monitor = HealthMonitor(
            self._inventory, self.publication.model, on_inventory_change=self._inventory_changed
        )
        self.preparer = Preparer(
            driver_name=DRIVER_NAME,
            node_name=node_name,
            devices=self.device,
            cdi_dir=cdi_dir,
            state_dir=state_dir,
            claims=KubeClaimSource(api_client),
            fault_hook=fault_hook,
            on_alarm=self._state_untrusted,
        )

    # --- reports ----------------------------------------------------------------------------------
    def _state_untrusted(self, message: str) -> None:
        """The preparer found damaged state (already logged): count it and put a Warning Event on the Node."""
        if self.metrics is not None:
            self.metrics.state_untrusted()
        post_node_event_async(self.api_client, self.node_name, reason=UNTRUSTED_STATE_REASON, message=message)

    # --- lookups the preparer and the health stream use ------------------------------------------
    def device(self, name: str) -> ModelDevice | None:
        return self.publication.model.by_name(name)

    # --- re-planning --------------------------------------------------------------------------------
    def _replan(self, *, inventory: Inventory | None = None, dropped_gates: set[str] | None = None) -> None:
        """Re-plan from the current inventory and dropped gates, and hand the result on, all under one lock.

        Planning and applying happen in one critical section so plans reach the monitor and the publisher in
        the order they were computed: a health re-plan computed before a dropped-gates fallback can never be
        applied after it (which would publish the dropped fields again).
        """
        with self._lock:
            if inventory is not None:
                self._inventory = inventory
            if dropped_gates:
                self.dropped_gates |= dropped_gates
            publication = plan(
                self._inventory, self.node_config.publish, profile=self.profile, dropped_gates=set(self.dropped_gates)
            )
            self.publication = publication
            self.monitor.set_model(publication.model)
            self.publisher.set_desired(publication.slices)

    def _inventory_changed(self, inventory: Inventory) -> None:
        self._replan(inventory=inventory)

    def _published(self, result: PublishResult) -> None:
        if self.metrics is not None:
            self.metrics.published(len(self.publication.model.devices))
        with self._lock:
            new = result.dropped_gates - self.dropped_gates
        if new:
            self._replan(dropped_gates=new)

    # --- background work while the plugin serves ------------------------------------------------------
    async def run_publisher(self, server: PluginServer) -> None:
        """Keep the node's slices published until the plugin stops."""
        try:
            await asyncio.to_thread(self.publisher.run)
        finally:
            self.publisher.stop()

    async def run_health(self, server: PluginServer) -> None:
        """Feed backend health into slice taints and the kubelet health stream."""
        self.monitor.on_health_change = server.health.notify_changed
        try:
            await self.monitor.run(self.backend.watch_health())
        finally:
            self.monitor.stop()


class MeteredPreparer:
    """Counts claims per result for the metrics; the gRPC layer keeps its own request accounting."""

    def __init__(self, inner: Preparer, metrics: DriverMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def prepare(self, claims: Sequence[Any]) -> dict[str, ClaimResultLike]:
        return self.prepare_fetched(self.fetch(claims))

    def fetch(self, claims: Sequence[Any]) -> FetchedClaims:
        """Read the claims (no lock needed); the request is timed by ``prepare_fetched``, under the lock."""
        return self._inner.fetch(claims)

    def prepare_fetched(self, fetched: FetchedClaims) -> dict[str, ClaimResultLike]:
        with self._metrics.request("NodePrepareResources", "any"):
            results = self._inner.prepare_fetched(fetched)
        failed = sum(1 for r in results.values() if r.error)
        self._metrics.claims("NodePrepareResources", ok=len(results) - failed, failed=failed)
        self._metrics.gauges.prepared_devices = self._inner.prepared_device_count()
        return dict(results)

    def unprepare(self, claims: Sequence[Any]) -> dict[str, str]:
        with self._metrics.request("NodeUnprepareResources", "any"):
            results = self._inner.unprepare(claims)
        failed = sum(1 for e in results.values() if e)
        self._metrics.claims("NodeUnprepareResources", ok=len(results) - failed, failed=failed)
        self._metrics.gauges.prepared_devices = self._inner.prepared_device_count()
        return dict(results)
