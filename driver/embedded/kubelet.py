"""Kubelet emulation for the embedded cluster: plugin registration, claim preparation and health, over gRPC.

It plays the kubelet's DRA part against the plugin's real unix sockets, so the plugin cannot tell it from a
kubelet: it discovers ``*-reg.sock`` files in the registry dir, calls GetInfo with a 1 s deadline, validates the
answer as an untrusted 1.37 kubelet does, then, for the pods bound to its node, makes one NodePrepareResources
call per driver per pod, keeps the CDI device IDs per container request (as the kubelet's claim info cache does),
marks pods Running, and unprepares a claim once the last pod using it is gone. It also keeps the latest device
health snapshot from each driver's health stream. It imports only the API contracts and the embedded store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from snn_dra.api.kubelet.dra.v1 import api_pb2 as dra_v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as dra_v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as dra_v1beta1
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as dra_v1beta1_grpc
from snn_dra.api.kubelet.dra_health.v1 import api_pb2 as health_v1
from snn_dra.api.kubelet.dra_health.v1 import api_pb2_grpc as health_v1_grpc
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2 as health_v1alpha1
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2_grpc as health_v1alpha1_grpc
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc
from snn_dra.driver.embedded.errors import ApiError, Conflict, NotFound
from snn_dra.driver.embedded.events import record_event
from snn_dra.driver.embedded.store import Store

log = logging.getLogger("snn_dra.embedded.kubelet")

DRA_SERVICES_KNOWN = ("v1.DRAPlugin", "v1beta1.DRAPlugin")
"""The kubelet's ``servicesSupportedByKubelet``, in its order."""
HEALTH_SERVICES_KNOWN = ("v1.DRAResourceHealth", "v1alpha1.DRAResourceHealth")
"""Preference order of ``pickHealthService``: v1 over v1alpha1."""
GET_INFO_TIMEOUT = 1.0
CALL_TIMEOUT = 45.0
HEALTH_RETRY_SECONDS = 5.0
UNIX_PATH_MAX = 108
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_TERMINAL_PHASES = ("Succeeded", "Failed")


class RegistrationRejectedError(ValueError):
    """GetInfo returned something a kubelet refuses to register."""


@dataclass(frozen=True, slots=True)
class PluginEndpoint:
    """One registered instance of a driver (rolling updates register several)."""

    driver: str
    endpoint: str
    registration_socket: str
    dra_service: str
    """The DRAPlugin version chosen: ``v1.DRAPlugin`` or ``v1beta1.DRAPlugin``."""
    health_service: str | None
    registered_at: float


@dataclass(frozen=True, slots=True)
class PreparedDevice:
    request_names: tuple[str, ...]
    pool: str
    device: str
    cdi_device_ids: tuple[str, ...]
    share_id: str | None = None


@dataclass(slots=True)
class PreparedClaim:
    """The kubelet's claim info: what the driver returned, and which pods use the claim."""

    namespace: str
    name: str
    uid: str
    devices: dict[str, tuple[PreparedDevice, ...]] = field(default_factory=dict)
    """Per driver name."""
    pods: set[str] = field(default_factory=set)
    """Pod UIDs using the claim; the claim is unprepared when this becomes empty."""


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    pool: str
    device: str
    health: str
    """``Healthy``, ``Unhealthy`` or ``Unknown``."""
    last_updated: int
    timeout_seconds: int
    message: str


def validate_plugin_info(info: reg.PluginInfo, kubelet_root: Path) -> tuple[str, str | None]:
    """Check GetInfo as an untrusted 1.37 kubelet does; return (DRA service, health service or None)."""
    if info.type != "DRAPlugin":
        raise RegistrationRejectedError(f"plugin type {info.type!r} is not DRAPlugin")
    name = info.name
    if not name or len(name) > 63 or not _DNS_SUBDOMAIN.match(name):
        raise RegistrationRejectedError(
            f"driver name {name!r} is invalid: must be a DNS subdomain of at most 63 characters"
        )
    endpoint = info.endpoint
    if not endpoint:
        raise RegistrationRejectedError("endpoint is empty")
    if not Path(endpoint).is_absolute():
        raise RegistrationRejectedError(f"endpoint {endpoint!r} is not an absolute path")
    if len(os.fsencode(endpoint)) > UNIX_PATH_MAX:
        raise RegistrationRejectedError(f"endpoint {endpoint!r} is longer than {UNIX_PATH_MAX} bytes")
    cleaned = Path(os.path.normpath(endpoint))
    root = Path(os.path.normpath(kubelet_root))
    if cleaned != root and root not in cleaned.parents:
        raise RegistrationRejectedError(f"endpoint {endpoint!r} is outside the kubelet root dir {root}")
    versions = list(info.supported_versions)
    if not versions:
        raise RegistrationRejectedError("supported_versions is empty")
    dra = next((v for v in versions if v in DRA_SERVICES_KNOWN), None)
    if dra is None:
        raise RegistrationRejectedError(
            f"none of the plugin's services {versions} is supported (kubelet knows {list(DRA_SERVICES_KNOWN)})"
        )
    health = next((h for h in HEALTH_SERVICES_KNOWN if h in versions), None)
    return dra, health


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def pod_claim_names(pod: Mapping[str, Any]) -> dict[str, str | None]:
    """Pod-level claim name -> ResourceClaim name (None while a template's claim is not generated yet or skipped)."""
    statuses = {
        s.get("name"): s.get("resourceClaimName") for s in pod.get("status", {}).get("resourceClaimStatuses") or []
    }
    out: dict[str, str | None] = {}
    for entry in pod.get("spec", {}).get("resourceClaims") or []:
        name = entry.get("name", "")
        if entry.get("resourceClaimName"):
            out[name] = entry["resourceClaimName"]
        else:
            out[name] = statuses.get(name)
    return out


@dataclass(slots=True)
class _PodState:
    pod: dict[str, Any]
    running: bool = False
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    resource_health: list[dict[str, Any]] | None = None
    """The containerStatuses last written (allocatedResourcesStatus changes with device health)."""


def _cancelled_from_outside() -> bool:
    """Whether the running task itself is being cancelled.

    Closing a channel (the plugin's socket was replaced) cancels the RPCs on it, which surfaces as
    ``CancelledError`` in the awaiting task; that is a failed call to retry, not a request to stop.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class KubeletEmulator:
    """The DRA half of a kubelet for one node of the embedded cluster.

    Host it with ``start()``/``stop()`` (own thread and event loop) or ``await run()`` on your loop. The query
    methods are thread-safe; ``wait_for`` blocks until a predicate over the emulator holds.
    """

    def __init__(
        self,
        store: Store,
        node_name: str,
        registry_dir: str | Path,
        *,
        kubelet_root: str | Path | None = None,
        registry_poll_seconds: float = 0.05,
        retry_initial_seconds: float = 0.2,
        retry_max_seconds: float = 10.0,
        health_retry_seconds: float = HEALTH_RETRY_SECONDS,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.store = store
        self.node_name = node_name
        self.registry_dir = Path(registry_dir).absolute()
        self.kubelet_root = Path(kubelet_root).absolute() if kubelet_root else self.registry_dir.parent
        self.registry_poll_seconds = registry_poll_seconds
        self.retry_initial_seconds = retry_initial_seconds
        self.retry_max_seconds = retry_max_seconds
        self.health_retry_seconds = health_retry_seconds
        self.call_timeout = call_timeout

        self._cond = threading.Condition()
        self._plugins: dict[str, list[PluginEndpoint]] = {}
        self._claims: dict[str, PreparedClaim] = {}
        self._pods: dict[str, _PodState] = {}
        self._health: dict[str, dict[tuple[str, str], DeviceHealth]] = {}
        self._health_received: dict[str, float] = {}
        self._rejections: dict[str, str] = {}
        self._events: list[dict[str, Any]] = []
        self._skipped: set[tuple[str, str, str]] = set()

        self._channels: dict[str, grpc.aio.Channel] = {}
        self._seen_sockets: dict[str, tuple[int, int, int]] = {}
        self._health_tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._main_task: asyncio.Task[None] | None = None

    # -- queries (thread-safe) -----------------------------------------------------------------------------------

    def registered_plugins(self) -> dict[str, list[PluginEndpoint]]:
        with self._cond:
            return {k: list(v) for k, v in self._plugins.items()}

    def rejected_registrations(self) -> dict[str, str]:
        """Registration socket path -> why the kubelet refused it (latest attempt)."""
        with self._cond:
            return dict(self._rejections)

    def prepared_claims(self) -> dict[str, PreparedClaim]:
        """Claim UID -> what the driver prepared (copies)."""
        with self._cond:
            return {
                uid: PreparedClaim(c.namespace, c.name, c.uid, dict(c.devices), set(c.pods))
                for uid, c in self._claims.items()
            }

    def cdi_devices_for(self, namespace: str, pod: str, container: str) -> list[str]:
        """The CDI device IDs the kubelet would put into this container's CRI config (claiminfo semantics)."""
        with self._cond:
            state = self._pods.get(f"{namespace}/{pod}")
            if state is None:
                return []
            return self._cdi_for_container(state.pod, container)

    def pod_error(self, namespace: str, pod: str) -> str:
        """The last prepare failure for a pod ("" when none)."""
        with self._cond:
            state = self._pods.get(f"{namespace}/{pod}")
            return state.last_error if state else ""

    def health(self, driver: str) -> dict[tuple[str, str], DeviceHealth]:
        """Latest health per (pool, device) from the driver's stream; empty when the stream is down."""
        with self._cond:
            return dict(self._health.get(driver, {}))

    def wait_for(self, predicate: Callable[[KubeletEmulator], bool], timeout: float = 30.0) -> bool:
        """Block until ``predicate(self)`` is true (re-checked on every state change) or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._cond.release()
                try:
                    if predicate(self):
                        return True
                finally:
                    self._cond.acquire()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Predicates may also look at things outside the emulator (the store, a plugin), so re-check
                # now and then even without a notification.
                self._cond.wait(min(remaining, 0.05))

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()
        if self._dirty is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._dirty.set)

    # -- hosting -------------------------------------------------------------------------------------------------

    def start(self) -> KubeletEmulator:
        if self._thread is not None:
            raise RuntimeError("the kubelet emulation is already running")
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            task = loop.create_task(self.run())
            self._main_task = task
            loop.call_soon(ready.set)
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"kubelet-{self.node_name}", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop

        def cancel() -> None:
            self._stopping = True
            if self._main_task is not None:
                self._main_task.cancel()

        loop.call_soon_threadsafe(cancel)
        self._thread.join(timeout=30)
        self._thread = None

    async def run(self) -> None:
        """Run until cancelled: registry watcher, pod/claim watches, reconciler."""
        self._loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        self.store.kubelet_nodes.add(self.node_name)  # from now on its pods terminate gracefully, through us
        tasks = [
            asyncio.create_task(self._watch_registry(), name="registry"),
            asyncio.create_task(self._watch("pods", f"spec.nodeName={self.node_name}"), name="pods"),
            asyncio.create_task(self._watch("resourceclaims", ""), name="claims"),
            asyncio.create_task(self._reconcile_loop(), name="reconcile"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.store.kubelet_nodes.discard(self.node_name)
            for t in [*tasks, *self._health_tasks.values()]:
                t.cancel()
            await asyncio.gather(*tasks, *self._health_tasks.values(), return_exceptions=True)
            for ch in self._channels.values():
                await ch.close()
            self._channels.clear()

    # -- registration --------------------------------------------------------------------------------------------

    def _scan_registry(self) -> dict[str, tuple[int, int, int]]:
        found: dict[str, tuple[int, int, int]] = {}
        try:
            entries = list(os.scandir(self.registry_dir))
        except FileNotFoundError:
            return found
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith("-reg.sock"):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found[entry.path] = (st.st_dev, st.st_ino, st.st_ctime_ns)
        return found

    async def _watch_registry(self) -> None:
        """Poll the registry dir (the kubelet uses inotify); new or replaced sockets (re)register, gone ones leave.

        A failed registration is retried from the start with backoff (0.1 s doubling to 5 s), as the kubelet's
        reconciler does while the socket file stays.
        """
        retry_at: dict[str, tuple[float, float]] = {}  # path -> (when, current backoff)
        while True:
            found = self._scan_registry()
            for path in list(self._seen_sockets):
                if path not in found:
                    self._seen_sockets.pop(path)
                    retry_at.pop(path, None)
                    await self._deregister(path)
            for path, ident in found.items():
                now = time.monotonic()
                same = self._seen_sockets.get(path) == ident
                if same and (path not in retry_at or retry_at[path][0] > now):
                    continue
                if not same:
                    if path in self._seen_sockets:
                        await self._deregister(path)
                    retry_at.pop(path, None)
                self._seen_sockets[path] = ident
                if await self._register(path):
                    retry_at.pop(path, None)
                else:
                    backoff = min(5.0, retry_at[path][1] * 2) if path in retry_at else 0.1
                    retry_at[path] = (time.monotonic() + backoff, backoff)
            await asyncio.sleep(self.registry_poll_seconds)

    async def _register(self, socket_path: str) -> bool:
        channel = grpc.aio.insecure_channel(f"unix://{socket_path}")
        try:
            stub = reg_grpc.RegistrationStub(channel)
            try:
                info = await stub.GetInfo(reg.InfoRequest(), timeout=GET_INFO_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                self._reject(socket_path, f"GetInfo failed: {exc.code().name}: {exc.details()}")
                return False
            try:
                dra, health = validate_plugin_info(info, self.kubelet_root)
                with self._cond:
                    if any(e.endpoint == info.endpoint for e in self._plugins.get(info.name, [])):
                        raise RegistrationRejectedError(
                            f"endpoint {info.endpoint} of driver {info.name} is already registered"
                        )
            except RegistrationRejectedError as exc:
                self._reject(socket_path, str(exc))
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await stub.NotifyRegistrationStatus(
                        reg.RegistrationStatus(plugin_registered=False, error=str(exc)), timeout=GET_INFO_TIMEOUT
                    )
                return False
            try:
                await stub.NotifyRegistrationStatus(reg.RegistrationStatus(plugin_registered=True), timeout=5)
            except grpc.aio.AioRpcError as exc:
                self._reject(socket_path, f"NotifyRegistrationStatus failed: {exc.details()}")
                return False
        finally:
            await channel.close()
        endpoint = PluginEndpoint(info.name, info.endpoint, socket_path, dra, health, time.monotonic())
        with self._cond:
            self._plugins.setdefault(info.name, []).append(endpoint)
            self._rejections.pop(socket_path, None)
        log.info("registered driver %s at %s (%s, health %s)", info.name, info.endpoint, dra, health or "none")
        self._restart_health(info.name)
        self._changed()
        return True

    def _reject(self, socket_path: str, reason: str) -> None:
        log.warning("registration via %s refused: %s", socket_path, reason)
        with self._cond:
            self._rejections[socket_path] = reason
        self._changed()

    async def _deregister(self, socket_path: str) -> None:
        removed: list[PluginEndpoint] = []
        with self._cond:
            for driver, endpoints in list(self._plugins.items()):
                keep = [e for e in endpoints if e.registration_socket != socket_path]
                removed += [e for e in endpoints if e.registration_socket == socket_path]
                if keep:
                    self._plugins[driver] = keep
                else:
                    del self._plugins[driver]
            self._rejections.pop(socket_path, None)
        for e in removed:
            log.info("deregistered driver %s endpoint %s", e.driver, e.endpoint)
            ch = self._channels.pop(e.endpoint, None)
            if ch is not None:
                await ch.close()
            self._restart_health(e.driver)
        self._changed()

    def _endpoint_for(self, driver: str) -> PluginEndpoint | None:
        """The most recently registered endpoint of the driver (the kubelet also prefers a connected one)."""
        with self._cond:
            endpoints = self._plugins.get(driver, [])
            return endpoints[-1] if endpoints else None

    def _channel(self, endpoint: str) -> grpc.aio.Channel:
        ch = self._channels.get(endpoint)
        if ch is None:
            ch = grpc.aio.insecure_channel(f"unix://{endpoint}")
            self._channels[endpoint] = ch
        return ch

    # -- health --------------------------------------------------------------------------------------------------

    def _restart_health(self, driver: str) -> None:
        old = self._health_tasks.pop(driver, None)
        if old is not None:
            old.cancel()
        if self._stopping:
            return
        self._health_tasks[driver] = asyncio.get_running_loop().create_task(self._health_stream(driver))

    async def _health_stream(self, driver: str) -> None:
        while True:
            ep = self._endpoint_for(driver)
            if ep is None or ep.health_service is None:
                with self._cond:
                    self._health.pop(driver, None)
                self._changed()
                return
            module: Any = health_v1 if ep.health_service == "v1.DRAResourceHealth" else health_v1alpha1
            stub: Any = (
                health_v1_grpc.DRAResourceHealthStub(self._channel(ep.endpoint))
                if module is health_v1
                else health_v1alpha1_grpc.DRAResourceHealthStub(self._channel(ep.endpoint))
            )
            names = {v.number: v.name.capitalize() for v in module.HealthStatus.DESCRIPTOR.values}
            try:
                async for response in stub.NodeWatchResources(module.NodeWatchResourcesRequest()):
                    snapshot = {
                        (d.device.pool_name, d.device.device_name): DeviceHealth(
                            d.device.pool_name,
                            d.device.device_name,
                            names.get(d.health, "Unknown"),
                            d.last_updated_time,
                            d.health_check_timeout_seconds,
                            d.message,
                        )
                        for d in response.devices
                    }
                    with self._cond:
                        self._health[driver] = snapshot
                        self._health_received[driver] = time.monotonic()
                    self._changed()
            except grpc.aio.AioRpcError as exc:
                log.info("health stream of %s ended: %s", driver, exc.code().name)
            except asyncio.CancelledError:
                if _cancelled_from_outside():
                    raise
                log.info("health stream of %s ended: the plugin's connection was closed", driver)
            with self._cond:
                self._health.pop(driver, None)  # the kubelet clears the driver's health cache when the stream ends
            self._changed()
            await asyncio.sleep(self.health_retry_seconds)

    # -- pods and claims -----------------------------------------------------------------------------------------

    async def _watch(self, resource: str, field_selector: str) -> None:
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    items, rv = self.store.list_with_version(resource, field_selector=field_selector)
                    if resource == "pods":
                        self._replace_pods(items)
                    self._changed()
                async for event in self.store.watch(resource, resource_version=rv, field_selector=field_selector):
                    obj = event["object"]
                    meta = obj.get("metadata")
                    rv = (meta.get("resourceVersion") if isinstance(meta, dict) else None) or rv
                    if resource == "pods" and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        try:
                            self._pod_event(event["type"], obj)
                        except Exception as exc:  # one malformed pod must not stop the watch of the others
                            self._skip_pod(obj, f"cannot read the pod: {type(exc).__name__}: {exc}")
                    self._changed()
            except ApiError as exc:  # e.g. Gone: relist
                log.info("%s watch restarts after %s", resource, exc)
                rv = None
                await asyncio.sleep(self.retry_initial_seconds)
            except Exception:  # a bug met on some object: relist rather than stop watching for good
                log.exception("%s watch failed; relisting", resource)
                rv = None
                await asyncio.sleep(self.retry_initial_seconds)

    def _skip_pod(self, pod: Any, why: str) -> None:
        """Log and record (once per pod version) a pod this kubelet cannot handle; the others go on."""
        meta = pod.get("metadata") if isinstance(pod, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        ident = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")), why)
        with self._cond:
            if ident in self._skipped:
                return
            self._skipped.add(ident)
            if len(self._skipped) > 10_000:
                self._skipped.clear()
        log.warning("kubelet %s skips pod %s/%s: %s", self.node_name, meta.get("namespace"), meta.get("name"), why)
        record_event(self.store, "pods", pod if isinstance(pod, dict) else {}, type_="Warning", reason="FailedSync",
                     message=f"the kubelet cannot handle this pod: {why}", component="kubelet", host=self.node_name)

    def _replace_pods(self, pods: Iterable[dict[str, Any]]) -> None:
        fresh: dict[str, dict[str, Any]] = {}
        for p in pods:
            try:
                fresh[_pod_key(p)] = p
            except Exception as exc:  # a pod without a usable name cannot be tracked at all
                self._skip_pod(p, f"cannot read the pod: {type(exc).__name__}: {exc}")
        with self._cond:
            for key in list(self._pods):
                if key not in fresh:
                    self._forget_pod(key)
            for key, pod in fresh.items():
                self._upsert_pod(key, pod)

    def _pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        key = _pod_key(pod)
        with self._cond:
            if kind == "DELETED":
                self._forget_pod(key)
            else:
                self._upsert_pod(key, pod)

    def _upsert_pod(self, key: str, pod: dict[str, Any]) -> None:
        state = self._pods.get(key)
        if state is None or state.pod["metadata"].get("uid") != pod["metadata"].get("uid"):
            if state is not None:
                self._forget_pod(key)
            self._pods[key] = _PodState(pod)
        else:
            state.pod = pod

    def _forget_pod(self, key: str) -> None:
        """The pod is gone: release its claims (unprepare happens in the reconciler)."""
        state = self._pods.pop(key, None)
        if state is None:
            return
        self._release_claims(state.pod["metadata"].get("uid", ""))

    def _release_claims(self, pod_uid: str) -> None:
        with self._cond:
            for claim in self._claims.values():
                claim.pods.discard(pod_uid)

    async def _reconcile_loop(self) -> None:
        assert self._dirty is not None
        while True:
            self._dirty.clear()
            try:
                next_wake = await self._reconcile()
            except Exception:  # a bug in one pass must not stop the kubelet for good: retry after a pause
                log.exception("kubelet %s reconcile pass failed", self.node_name)
                next_wake = time.monotonic() + self.retry_initial_seconds
            timeout = None if next_wake is None else max(0.0, next_wake - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout)

    async def _reconcile(self) -> float | None:
        """One pass: prepare pods that need it, unprepare unused claims. Returns the next retry time."""
        now = time.monotonic()
        next_wake: float | None = None
        with self._cond:
            pods = [(k, s) for k, s in self._pods.items()]
        for key, state in pods:
            try:
                wake = await self._reconcile_pod(key, state, now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one pod this kubelet cannot handle must not stop the others
                log.exception("kubelet %s: pod %s failed", self.node_name, key)
                self._skip_pod(state.pod, f"{type(exc).__name__}: {exc}")
                state.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                wake = state.next_attempt = time.monotonic() + min(
                    self.retry_max_seconds, self.retry_initial_seconds * (2 ** min(state.failures, 16)))
            if wake is not None:
                next_wake = wake if next_wake is None else min(next_wake, wake)
        await self._refresh_resource_health()
        retry = await self._unprepare_unused()
        if retry is not None:
            next_wake = retry if next_wake is None else min(next_wake, retry)
        self._finish_terminated()
        return next_wake

    def _finish_terminated(self) -> None:
        """Pods being deleted whose containers stopped and whose claims are unprepared: delete them for good.

        Containers stop at once here (there are no processes); what a pod waits for is the unprepare of the
        claims only it used, as a kubelet releases a pod's resources before it removes the pod (grace 0).
        """
        with self._cond:
            if any(c.devices and not c.pods for c in self._claims.values()):
                return  # an unprepare is still pending (or failed and will be retried)
            done = [s.pod for s in self._pods.values() if s.pod["metadata"].get("deletionTimestamp")]
        for pod in done:
            meta = pod["metadata"]
            with contextlib.suppress(ApiError):  # gone already, or replaced by a new pod of that name
                self.store.delete("pods", meta.get("namespace"), meta["name"], uid=meta.get("uid"), grace_period=0)

    async def _reconcile_pod(self, key: str, state: _PodState, now: float) -> float | None:
        """Prepare one pod if it needs it; returns when to look at it again (None: on the next change)."""
        pod = state.pod
        if pod.get("status", {}).get("phase") in _TERMINAL_PHASES:
            self._release_claims(pod["metadata"].get("uid", ""))  # finished pods no longer need devices
            return None
        if pod["metadata"].get("deletionTimestamp"):
            self._release_claims(pod["metadata"].get("uid", ""))  # its containers stop: claims unprepare next
            return None
        if state.running:
            return None
        if state.next_attempt > now:
            return state.next_attempt
        error = await self._sync_pod(key, state)
        wake: float | None = None
        if error:
            delay = min(self.retry_max_seconds, self.retry_initial_seconds * (2**state.failures))
            state.failures += 1
            state.next_attempt = wake = time.monotonic() + delay
        self._changed()
        return wake

    def _claims_of(self, pod: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The pod's allocated claims, or a reason to wait (not generated, not allocated, not reserved)."""
        ns = pod["metadata"].get("namespace", "")
        uid = pod["metadata"].get("uid", "")
        claims: list[dict[str, Any]] = []
        for pod_claim, claim_name in pod_claim_names(pod).items():
            if claim_name is None:
                if any(s.get("name") == pod_claim for s in pod.get("status", {}).get("resourceClaimStatuses") or []):
                    continue  # explicitly no claim needed
                return [], f"waiting for the ResourceClaim of pod claim {pod_claim!r} to be generated"
            try:
                claim = self.store.get("resourceclaims", ns, claim_name)
            except NotFound:
                return [], f"ResourceClaim {ns}/{claim_name} not found"
            status = claim.get("status", {})
            if not status.get("allocation"):
                return [], f"ResourceClaim {ns}/{claim_name} is not allocated yet"
            if not any(r.get("uid") == uid for r in status.get("reservedFor") or []):
                return [], f"pod is not in the reservedFor list of ResourceClaim {ns}/{claim_name}"
            claims.append(claim)
        return claims, ""

    async def _sync_pod(self, key: str, state: _PodState) -> str:
        pod = state.pod
        pod_uid = pod["metadata"].get("uid", "")
        claims, waiting = self._claims_of(pod)
        if waiting:
            state.last_error = waiting
            return waiting
        by_driver: dict[str, list[dict[str, Any]]] = {}
        for claim in claims:
            uid = claim["metadata"]["uid"]
            with self._cond:
                info = self._claims.get(uid)
            results = claim["status"]["allocation"].get("devices", {}).get("results") or []
            drivers = {r.get("driver", "") for r in results}
            for driver in sorted(drivers):
                if info is not None and driver in info.devices:
                    continue  # already prepared for another pod or an earlier attempt
                by_driver.setdefault(driver, []).append(claim)
        errors: list[str] = []
        for driver, driver_claims in sorted(by_driver.items()):
            err = await self._prepare(key, pod_uid, driver, driver_claims)
            if err:
                errors.append(err)
        if errors:
            message = "; ".join(errors)
            repeated = message == state.last_error
            state.last_error = message
            if not repeated:  # like the kubelet's event aggregation: one event per distinct failure
                await self._record_failure(pod, message)
            return message
        with self._cond:
            current = self._pods.get(key)
            if current is None or current.pod["metadata"].get("uid") != pod_uid:
                return ""  # deleted while we prepared: its claims are released by _forget_pod
            for claim in claims:
                meta = claim["metadata"]
                info = self._claims.setdefault(
                    meta["uid"], PreparedClaim(meta.get("namespace", ""), meta["name"], meta["uid"])
                )
                info.pods.add(pod_uid)
        state.last_error = ""
        state.failures = 0
        await self._mark_running(key, state)
        return ""

    async def _prepare(self, key: str, pod_uid: str, driver: str, claims: list[dict[str, Any]]) -> str:
        ep = self._endpoint_for(driver)
        if ep is None:
            return f"driver {driver} is not registered on node {self.node_name}"
        v1 = ep.dra_service == "v1.DRAPlugin"
        module: Any = dra_v1 if v1 else dra_v1beta1
        stub: Any = (dra_v1_grpc if v1 else dra_v1beta1_grpc).DRAPluginStub(self._channel(ep.endpoint))
        request = module.NodePrepareResourcesRequest(
            claims=[
                module.Claim(
                    namespace=c["metadata"].get("namespace", ""), name=c["metadata"]["name"], uid=c["metadata"]["uid"]
                )
                for c in claims
            ]
        )
        try:
            response = await stub.NodePrepareResources(request, timeout=self.call_timeout)
        except grpc.aio.AioRpcError as exc:
            return f"NodePrepareResources of driver {driver} failed: {exc.code().name}: {exc.details()}"
        except asyncio.CancelledError:
            if _cancelled_from_outside():
                raise
            return f"NodePrepareResources of driver {driver} was cut off: the plugin's connection was closed"
        errors: list[str] = []
        for claim in claims:
            meta = claim["metadata"]
            result = response.claims.get(meta["uid"])
            if result is None:
                errors.append(f"driver {driver} returned no result for claim {meta['name']}")
                continue
            if result.error:
                errors.append(f"claim {meta['name']}: {result.error}")
                continue
            devices = tuple(
                PreparedDevice(
                    tuple(d.request_names),
                    d.pool_name,
                    d.device_name,
                    tuple(d.cdi_device_ids),
                    d.share_id if v1 and d.HasField("share_id") else None,
                )
                for d in result.devices
            )
            with self._cond:
                info = self._claims.setdefault(
                    meta["uid"], PreparedClaim(meta.get("namespace", ""), meta["name"], meta["uid"])
                )
                info.devices[driver] = devices
                # A prepared claim belongs to the pod at once, even if another claim of the pod failed, so it is
                # not unprepared between retries; if the pod went away during the call, it is unprepared next pass.
                current = self._pods.get(key)
                if current is not None and current.pod["metadata"].get("uid") == pod_uid:
                    info.pods.add(pod_uid)
        return "; ".join(errors)

    async def _unprepare_unused(self) -> float | None:
        with self._cond:
            unused = [c for c in self._claims.values() if not c.pods]
        if not unused:
            return None
        failed = False
        by_driver: dict[str, list[PreparedClaim]] = {}
        for claim in unused:
            for driver in claim.devices:
                by_driver.setdefault(driver, []).append(claim)
            if not claim.devices:
                with self._cond:
                    self._claims.pop(claim.uid, None)
        for driver, claims in sorted(by_driver.items()):
            ep = self._endpoint_for(driver)
            if ep is None:
                failed = True
                continue
            v1 = ep.dra_service == "v1.DRAPlugin"
            module: Any = dra_v1 if v1 else dra_v1beta1
            stub: Any = (dra_v1_grpc if v1 else dra_v1beta1_grpc).DRAPluginStub(self._channel(ep.endpoint))
            request = module.NodeUnprepareResourcesRequest(
                claims=[module.Claim(namespace=c.namespace, name=c.name, uid=c.uid) for c in claims]
            )
            try:
                response = await stub.NodeUnprepareResources(request, timeout=self.call_timeout)
            except grpc.aio.AioRpcError as exc:
                log.warning("NodeUnprepareResources of %s failed: %s", driver, exc.details())
                failed = True
                continue
            except asyncio.CancelledError:
                if _cancelled_from_outside():
                    raise
                log.warning("NodeUnprepareResources of %s was cut off: the plugin's connection was closed", driver)
                failed = True
                continue
            with self._cond:
                for c in claims:
                    result = response.claims.get(c.uid)
                    if result is None or result.error:
                        failed = True
                        continue
                    info = self._claims.get(c.uid)
                    if info is not None and not info.pods:
                        info.devices.pop(driver, None)
                        if not info.devices:
                            self._claims.pop(c.uid, None)
        self._changed()
        return time.monotonic() + self.retry_initial_seconds if failed else None

    # -- pod status ----------------------------------------------------------------------------------------------

    async def _update_status(self, pod: Mapping[str, Any], mutate: Callable[[dict[str, Any]], None]) -> None:
        ns, name, uid = pod["metadata"].get("namespace", ""), pod["metadata"]["name"], pod["metadata"].get("uid")
        for _ in range(5):
            try:
                fresh = self.store.get("pods", ns, name)
            except NotFound:
                return
            if fresh["metadata"].get("uid") != uid:
                return
            mutate(fresh)
            try:
                self.store.update("pods", fresh, "status")
                return
            except Conflict:
                continue
            except ApiError as exc:
                log.warning("cannot update status of pod %s/%s: %s", ns, name, exc)
                return

    @staticmethod
    def _set_condition(pod: dict[str, Any], ctype: str, status: str, reason: str = "", message: str = "") -> None:
        conditions: list[dict[str, Any]] = pod.setdefault("status", {}).setdefault("conditions", [])
        now = _now_rfc3339()
        for c in conditions:
            if c.get("type") == ctype:
                if c.get("status") != status:
                    c["lastTransitionTime"] = now
                c.update(status=status)
                c.pop("reason", None)
                c.pop("message", None)
                break
        else:
            c = {"type": ctype, "status": status, "lastTransitionTime": now}
            conditions.append(c)
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message

    def _container_statuses(self, pod: Mapping[str, Any], started: str) -> list[dict[str, Any]]:
        """Running container statuses with ``allocatedResourcesStatus`` from the drivers' health (KEP-4680)."""
        with self._cond:
            out = []
            for c in pod.get("spec", {}).get("containers") or []:
                status: dict[str, Any] = {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
                resources = self._resource_health(pod, c["name"])
                if resources:
                    status["allocatedResourcesStatus"] = resources
                out.append(status)
            return out

    def _resource_health(self, pod: Mapping[str, Any], container: str) -> list[dict[str, Any]]:
        """``claim:<podClaim>[/<request>]`` entries; resourceID is the first CDI ID, else driver/pool/device."""
        spec = pod.get("spec", {})
        entry = next((c for c in spec.get("containers") or [] if c.get("name") == container), None)
        if entry is None:
            return []
        names = pod_claim_names(pod)
        ns = pod["metadata"].get("namespace", "")
        by_name = {(c.namespace, c.name): c for c in self._claims.values()}
        now = time.monotonic()
        out: list[dict[str, Any]] = []
        for ref in entry.get("resources", {}).get("claims") or []:
            claim_name = names.get(ref.get("name", ""))
            info = by_name.get((ns, claim_name)) if claim_name else None
            if info is None:
                continue
            request = ref.get("request", "")
            resources: list[dict[str, str]] = []
            for driver, devices in sorted(info.devices.items()):
                known = self._health.get(driver, {})
                for d in devices:
                    if request and d.request_names and request not in d.request_names:
                        continue
                    h = known.get((d.pool, d.device))
                    health = "Unknown"
                    if h is not None:
                        timeout = h.timeout_seconds if h.timeout_seconds > 0 else 30
                        fresh = self._health_received.get(driver, 0.0) + timeout >= now
                        health = h.health if fresh else "Unknown"
                    rid = d.cdi_device_ids[0] if d.cdi_device_ids else f"{driver}/{d.pool}/{d.device}"
                    resources.append({"resourceID": rid, "health": health})
            name = f"claim:{ref.get('name', '')}" + (f"/{request}" if request else "")
            out.append({"name": name, "resources": resources})
        return out

    async def _refresh_resource_health(self) -> None:
        """Rewrite containerStatuses of running pods whose device health changed."""
        with self._cond:
            running = [
                s
                for s in self._pods.values()
                if s.running and s.pod.get("status", {}).get("phase") not in _TERMINAL_PHASES
                and not s.pod["metadata"].get("deletionTimestamp")
            ]
        for state in running:
            try:
                started = state.pod.get("status", {}).get("startTime") or _now_rfc3339()
                statuses = self._container_statuses(state.pod, started)
            except Exception as exc:  # one malformed pod must not stop the health refresh of the others
                self._skip_pod(state.pod, f"cannot compute container statuses: {type(exc).__name__}: {exc}")
                continue
            if statuses == state.resource_health:
                continue
            state.resource_health = statuses

            def mutate(pod: dict[str, Any], statuses: list[dict[str, Any]] = statuses) -> None:
                pod.setdefault("status", {})["containerStatuses"] = statuses

            await self._update_status(state.pod, mutate)

    async def _mark_running(self, key: str, state: _PodState) -> None:
        started = _now_rfc3339()
        statuses = self._container_statuses(state.pod, started)

        def mutate(pod: dict[str, Any]) -> None:
            status = pod.setdefault("status", {})
            status["phase"] = "Running"
            status.setdefault("startTime", started)
            for ctype in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
                self._set_condition(pod, ctype, "True")
            status["containerStatuses"] = statuses

        await self._update_status(state.pod, mutate)
        state.resource_health = statuses
        state.running = True
        log.info("pod %s is running with %d prepared claim(s)", key, len(pod_claim_names(state.pod)))

    async def _record_failure(self, pod: Mapping[str, Any], message: str) -> None:
        meta = pod["metadata"]
        log.warning("prepare for pod %s/%s failed: %s", meta.get("namespace"), meta["name"], message)

        def mutate(fresh: dict[str, Any]) -> None:
            fresh.setdefault("status", {}).setdefault("phase", "Pending")
            self._set_condition(fresh, "PodReadyToStartContainers", "False", "FailedPrepareDynamicResources", message)

        await self._update_status(pod, mutate)
        now = _now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta.get("namespace", "")},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid", ""),
            },
            "reason": "FailedPrepareDynamicResources",
            "message": f"Failed to prepare dynamic resources: {message}"[:1024],
            "type": "Warning",
            "source": {"component": "kubelet", "host": self.node_name},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            created = self.store.create("events", event)
        except ApiError as exc:
            log.warning("cannot record event for pod %s: %s", meta["name"], exc)
            created = event
        with self._cond:
            self._events.append(created)

    def events(self) -> list[dict[str, Any]]:
        """Warning events this kubelet recorded (also created in the store)."""
        with self._cond:
            return list(self._events)

    # -- CDI per container ---------------------------------------------------------------------------------------

    def _cdi_for_container(self, pod: Mapping[str, Any], container: str) -> list[str]:
        spec = pod.get("spec", {})
        entries = [
            c
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            if c.get("name") == container
        ]
        if not entries:
            return []
        names = pod_claim_names(pod)
        ns = pod["metadata"].get("namespace", "")
        by_name = {(c.namespace, c.name): c for c in self._claims.values()}
        out: list[str] = []
        for ref in entries[0].get("resources", {}).get("claims") or []:
            claim_name = names.get(ref.get("name", ""))
            info = by_name.get((ns, claim_name)) if claim_name else None
            if info is None:
                continue
            request = ref.get("request", "")
            for devices in info.devices.values():
                for d in devices:
                    if request and d.request_names and request not in d.request_names:
                        continue
                    out.extend(i for i in d.cdi_device_ids if i not in out)
        return out
