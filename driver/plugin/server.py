"""The kubelet plugin's process lifecycle: directories, sockets, both gRPC servers, signals and cleanup.

Order matters to the kubelet: the DRA service (both DRAPlugin versions and both health services) listens
before the registration socket appears, so the first call after registration finds the endpoint ready; on
shutdown the registration socket goes first so the kubelet stops choosing this instance.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as dra_v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as dra_v1beta1_grpc
from snn_dra.api.kubelet.dra_health.v1 import api_pb2_grpc as health_v1_grpc
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2_grpc as health_v1alpha1_grpc
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc
from snn_dra.driver.plugin.dra import ClaimService, DraV1Beta1Servicer, DraV1Servicer
from snn_dra.driver.plugin.health import (
    DEFAULT_INTERVAL_SECONDS,
    DeviceHealthEntry,
    HealthHub,
    HealthProvider,
    HealthV1Alpha1Servicer,
    HealthV1Servicer,
)
from snn_dra.driver.plugin.liveness import LivenessServicer, start_liveness_server
from snn_dra.driver.plugin.lock import SerializationLock
from snn_dra.driver.plugin.preparer import Preparer
from snn_dra.driver.plugin.registration import SUPPORTED_VERSIONS, RegistrationServicer
from snn_dra.driver.plugin.sockets import (
    DEFAULT_PLUGIN_DIR,
    DEFAULT_REGISTRY_DIR,
    DRIVER_NAME,
    SocketIdentity,
    SocketPaths,
    ensure_dir,
    remove_own_socket,
    remove_stale_socket,
    socket_identity,
    socket_paths,
)

log = logging.getLogger("snn_dra.plugin")

SOCKET_MODE = 0o600
PLUGIN_DIR_MODE = 0o750
REGISTRY_DIR_MODE = 0o750


@dataclass(frozen=True, slots=True)
class PluginConfig:
    plugin_dir: Path = DEFAULT_PLUGIN_DIR
    registry_dir: Path = DEFAULT_REGISTRY_DIR
    driver_name: str = DRIVER_NAME
    pod_uid: str | None = None
    """Set for rolling updates: per-pod socket names so two driver pods can serve side by side."""
    health_interval: float = DEFAULT_INTERVAL_SECONDS
    stop_grace_seconds: float = 5.0
    supported_versions: tuple[str, ...] = field(default=SUPPORTED_VERSIONS)
    health_port: int | None = None
    """TCP port of the grpc.health.v1 liveness service (None: off, 0: any free port); see ``liveness.py``."""


class LivenessPortError(RuntimeError):
    """The liveness service's TCP port cannot be bound."""


BackgroundTask = Callable[["PluginServer"], Coroutine[Any, Any, None]]
"""A long-running coroutine that lives as long as the plugin serves (it may call ``server.health.notify_changed``)."""


def _no_devices() -> Sequence[DeviceHealthEntry]:
    return ()


class PluginServer:
    """One kubelet plugin instance. ``start``/``stop`` for embedding; ``run_until_signal`` for the CLI."""

    def __init__(self, config: PluginConfig, preparer: Preparer, health_provider: HealthProvider | None = None) -> None:
        self.config = config
        self.paths: SocketPaths = socket_paths(
            config.plugin_dir, config.registry_dir, config.driver_name, config.pod_uid
        )
        self.health = HealthHub(health_provider or _no_devices, config.health_interval)
        self.lock = SerializationLock(self.paths.lock)
        self.claims = ClaimService(preparer, self.lock)
        self.registration = RegistrationServicer(config.driver_name, self.paths.dra, config.supported_versions)
        self._dra_server: grpc.aio.Server | None = None
        self._reg_server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        """The port the liveness service is bound to, once started."""
        self._identities: dict[Path, SocketIdentity | None] = {}

    def ready_line(self) -> str:
        line = f"ready: dra={self.paths.dra} registration={self.paths.registration}"
        return line if self.health_port is None else f"{line} health={self.health_port}"

    async def _listen(self, server: grpc.aio.Server, path: Path) -> None:
        if remove_stale_socket(path):
            log.warning("removed stale socket %s", path)
        server.add_insecure_port(f"unix://{path}")
        await server.start()
        path.chmod(SOCKET_MODE)
        self._identities[path] = socket_identity(path)

    async def start(self) -> None:
        ensure_dir(self.paths.dra.parent, PLUGIN_DIR_MODE)
        ensure_dir(self.paths.registration.parent, REGISTRY_DIR_MODE)

        dra = grpc.aio.server()
        dra_v1_grpc.add_DRAPluginServicer_to_server(DraV1Servicer(self.claims), dra)
        dra_v1beta1_grpc.add_DRAPluginServicer_to_server(DraV1Beta1Servicer(self.claims), dra)
        health_v1_grpc.add_DRAResourceHealthServicer_to_server(HealthV1Servicer(self.health), dra)
        health_v1alpha1_grpc.add_DRAResourceHealthServicer_to_server(HealthV1Alpha1Servicer(self.health), dra)
        self._dra_server = dra
        await self._listen(dra, self.paths.dra)
        log.info("DRA service listening on %s", self.paths.dra)

        registrar = grpc.aio.server()
        reg_grpc.add_RegistrationServicer_to_server(self.registration, registrar)
        self._reg_server = registrar
        await self._listen(registrar, self.paths.registration)
        log.info("registration service listening on %s", self.paths.registration)

        if self.config.health_port is not None:
            servicer = LivenessServicer(self.config.driver_name, self.paths.dra, self.paths.registration)
            try:
                self._health_server, self.health_port = await start_liveness_server(servicer, self.config.health_port)
            except RuntimeError as exc:
                raise LivenessPortError(
                    f"cannot listen on TCP port {self.config.health_port} for the liveness probe ({exc}): another "
                    "process (with hostNetwork, another plugin pod on the node) uses it; choose another --health-port "
                    "and the same port in the DaemonSet's probes"
                ) from exc
            log.info("liveness service (grpc.health.v1) listening on TCP port %d", self.health_port)

    async def stop(self) -> None:
        """Deregister first, let in-flight Prepare/Unprepare finish, then remove our sockets (never others')."""
        self.health.close()
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        if self._reg_server is not None:
            await self._reg_server.stop(0)
            self._reg_server = None
        remove_own_socket(self.paths.registration, self._identities.pop(self.paths.registration, None))
        if self._dra_server is not None:
            await self._dra_server.stop(self.config.stop_grace_seconds)
            self._dra_server = None
        remove_own_socket(self.paths.dra, self._identities.pop(self.paths.dra, None))
        await asyncio.to_thread(self.claims.close)
        self.lock.close()
        log.info("stopped; removed sockets %s and %s", self.paths.dra, self.paths.registration)

    async def run_until_signal(self, background: Sequence[BackgroundTask] = ()) -> int:
        """Serve until SIGTERM or SIGINT, then clean up; prints the ready line tests and operators wait for.

        ``background`` coroutines (slice publisher, backend health watch) start once the sockets serve and are
        cancelled on shutdown. If one fails, the plugin shuts down and returns 1 so the pod restarts; else 0.
        """
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks: list[asyncio.Task[None]] = []
        failed = False

        def done(task: asyncio.Task[None]) -> None:
            nonlocal failed
            if task.cancelled():
                return
            exc = task.exception()
            if exc is not None:
                log.error("background task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc,
                          exc_info=exc)  # fmt: skip
                failed = True
                stop.set()

        try:
            await self.start()
            for i, job in enumerate(background):
                task = asyncio.create_task(job(self), name=getattr(job, "__name__", f"background-{i}"))
                task.add_done_callback(done)
                tasks.append(task)
            sys.stdout.write(self.ready_line() + "\n")
            sys.stdout.flush()
            await stop.wait()
            log.info("shutting down")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.stop()
        return 1 if failed else 0
