"""The embedded cluster: API server, scheduler and one kubelet emulation per node, plus the real plugin processes.

Everything a DRA driver meets on a real node is here, each piece talking the real protocol: the plugin is
started as its own process (``snn-dra kubelet-plugin``) and reached only through its unix sockets and
the API server, exactly as on a kind node. Each node gets a directory tree shaped like a kubelet's root
(``plugins_registry/``, ``plugins/<driver>/``) plus its own CDI directory, so nothing needs root.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.errors import AlreadyExists
from snn_dra.driver.embedded.kubelet import KubeletEmulator
from snn_dra.driver.embedded.scheduler import Scheduler

T = TypeVar("T")

PLUGIN_READY_TIMEOUT_S = 60.0
STATE_ROOT_ENV = "SNN_DRA_STATE_ROOT"
"""Where a cluster without ``state_dir`` makes its temp dir: short by default, since unix socket paths
under it must stay within 107 bytes."""


@dataclass(frozen=True, slots=True)
class NodeDirs:
    """A node's kubelet-shaped directories; the plugin gets them as flags."""

    root: Path

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def registry_dir(self) -> Path:
        return self.kubelet_root / "plugins_registry"

    @property
    def plugin_dir(self) -> Path:
        return self.kubelet_root / "plugins" / DRIVER_NAME

    @property
    def cdi_dir(self) -> Path:
        return self.root / "cdi"

    def create(self) -> None:
        for d in (self.registry_dir, self.plugin_dir, self.cdi_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o750)


class ClusterTimeoutError(TimeoutError):
    """A condition on the cluster did not come true in time; the message names the condition."""


def wait_until(predicate: Callable[[], T | None], what: str, timeout: float = 60.0, poll: float = 0.05) -> T:
    """Poll a condition of the (asynchronous) cluster until it holds; return its value.

    The cluster's pieces (scheduler, kubelets, plugins) react to watch events, so callers wait on the
    observable outcome rather than sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClusterTimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


class PluginStartError(RuntimeError):
    """The plugin process exited or stayed silent; the message carries its log tail."""


@dataclass
class PluginHandle:
    """A running ``snn-dra kubelet-plugin`` process."""

    node: str
    proc: subprocess.Popen[str]
    log_path: Path
    _log: IO[str]

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (the plugin removes its sockets), then SIGKILL if it does not exit in time."""
        code = stop_process(self.proc, timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing gets cleaned up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_process(proc: subprocess.Popen[str], timeout: float = 20.0) -> int:
    """SIGTERM a plugin process (it removes its own sockets), SIGKILL it if it outlives ``timeout``; close stdout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def plugin_command() -> list[str]:
    """How to run the CLI from this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-c", "from snn_dra.driver.cli import main; main()"]


class EmbeddedCluster:
    """API server + scheduler + kubelet emulations; ``start_plugin`` runs the driver on a node."""

    def __init__(
        self,
        *,
        nodes: Sequence[str] = ("snn-node-0",),
        profile: str = "1.37",
        feature_gates: Mapping[str, bool] | None = None,
        state_dir: Path | None = None,
        port: int = 0,
        kubeconfig_path: Path | None = None,
    ) -> None:
        self._own_dir = state_dir is None
        root = os.environ.get(STATE_ROOT_ENV, "/tmp")
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="snn-", dir=root))
        self.nodes = tuple(nodes)
        self.server = EmbeddedApiServer(
            profile=profile,
            port=port,
            state_dir=self.state_dir / "apiserver",
            feature_gates=feature_gates,
            kubeconfig_path=kubeconfig_path,
        )
        self.scheduler = Scheduler(self.server.store)
        self.kubelets: dict[str, KubeletEmulator] = {}
        self.plugins: dict[str, PluginHandle] = {}
        self._scheduler_future: concurrent.futures.Future[None] | None = None

    @property
    def store(self) -> Any:
        return self.server.store

    @property
    def kubeconfig_path(self) -> Path:
        return self.server.kubeconfig_path

    def node_dirs(self, node: str) -> NodeDirs:
        return NodeDirs(self.state_dir / "nodes" / node)

    # --- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> EmbeddedCluster:
        self.server.start()
        try:
            for node in self.nodes:
                self._ensure_node(node)
                dirs = self.node_dirs(node)
                dirs.create()
                self.kubelets[node] = KubeletEmulator(
                    self.server.store, node, dirs.registry_dir, kubelet_root=dirs.kubelet_root
                ).start()
            loop = self.server._loop
            assert loop is not None
            self._scheduler_future = asyncio.run_coroutine_threadsafe(self.scheduler.run(), loop)
        except BaseException:
            self.stop()
            raise
        return self

    def _ensure_node(self, node: str) -> None:
        """A Node as a kubelet registers it: labels, capacity and a Ready condition (kubectl reads them)."""
        resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet emulation is ready",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux"}},
            "status": {"capacity": resources, "allocatable": resources, "conditions": [ready]},
        }
        with contextlib.suppress(AlreadyExists):
            self.server.store.create("nodes", body)

    def stop(self) -> None:
        for handle in list(self.plugins.values()):
            handle.stop()
        self.plugins.clear()
        if self._scheduler_future is not None:
            self._scheduler_future.cancel()
            self._scheduler_future = None
        for kubelet in self.kubelets.values():
            kubelet.stop()
        self.kubelets.clear()
        self.server.stop()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- the driver ----------------------------------------------------------------------------------------
    def plugin_args(self, node: str, node_config: Path, *extra: str) -> list[str]:
        dirs = self.node_dirs(node)
        return [
            "kubelet-plugin",
            f"--node-name={node}",
            f"--node-config={node_config}",
            f"--kubeconfig={self.kubeconfig_path}",
            f"--plugin-dir={dirs.plugin_dir}",
            f"--registry-dir={dirs.registry_dir}",
            f"--cdi-dir={dirs.cdi_dir}",
            *extra,
        ]

    def start_plugin(
        self, node: str, node_config: Path, *extra: str, env: Mapping[str, str] | None = None
    ) -> PluginHandle:
        """Run the real plugin for ``node`` and wait for its ready line (sockets serve, publisher started)."""
        if node not in self.kubelets:
            raise ValueError(f"node {node!r} is not part of this cluster (nodes: {', '.join(self.nodes)})")
        if node in self.plugins and self.plugins[node].proc.poll() is None:
            raise RuntimeError(f"a plugin already runs on node {node}")
        log_path = self.node_dirs(node).root / "plugin.log"
        log = log_path.open("a")
        full_env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "POD_UID", "KUBECONFIG")}
        full_env.update(env or {})
        proc = subprocess.Popen(
            [*plugin_command(), *self.plugin_args(node, Path(node_config).absolute(), *extra)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=full_env,
        )
        handle = PluginHandle(node, proc, log_path, log)
        self.plugins[node] = handle
        try:
            wait_ready(proc, PLUGIN_READY_TIMEOUT_S)
        except PluginStartError as exc:
            handle.stop(timeout=5)
            raise PluginStartError(f"{exc}; plugin log ({log_path}):\n{handle.log_tail()}") from None
        return handle


def wait_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    """Read the plugin's stdout until its ``ready: ...`` line (returned); raise if it exits or stays silent."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PluginStartError(f"the plugin did not report ready within {timeout:.0f} s")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            raise PluginStartError(f"the plugin exited with status {proc.wait()} before it was ready")
        if line.startswith("ready: "):
            return line.strip()
