"""Helpers for the plugin and kubelet-emulation tests: an in-process server runner, gRPC clients built from the
generated code (as a kubelet would dial), the real plugin process, and a fixed-result Preparer test double."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from snn_dra.driver.embedded.cluster import stop_process, wait_ready
from snn_dra.driver.plugin.server import PluginConfig, PluginServer
from snn_dra.driver.prepare import ClaimResult, PreparedDevice

# The gRPC layer's tests use the real result types of snn_dra.driver.prepare (the Preparer's answers).
Dev = PreparedDevice
Result = ClaimResult


@dataclass
class FixedPreparer:
    """Returns preset results per claim UID and records what it was called with (a test double, not shipped)."""

    results: dict[str, Result] = field(default_factory=dict)
    unprepare_errors: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    hook: Callable[[str], None] | None = None
    raise_on_prepare: BaseException | None = None

    def prepare(self, claims: Sequence[Any]) -> Mapping[str, Result]:
        self.calls.append(("prepare", [c.uid for c in claims]))
        if self.hook:
            self.hook("prepare")
        if self.raise_on_prepare is not None:
            raise self.raise_on_prepare
        return {c.uid: self.results[c.uid] for c in claims if c.uid in self.results}

    def unprepare(self, claims: Sequence[Any]) -> Mapping[str, str]:
        self.calls.append(("unprepare", [c.uid for c in claims]))
        if self.hook:
            self.hook("unprepare")
        return {c.uid: self.unprepare_errors.get(c.uid, "") for c in claims}


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A fresh directory with a short path: pytest's tmp_path can push socket paths past the 107-byte limit."""
    path = Path(tempfile.mkdtemp(prefix="snn-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class LoopThread:
    """An asyncio loop in a background thread, so sync gRPC clients can call servers running on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def running_server(
    tmp: Path, preparer: Any, provider: Any = None, pod_uid: str | None = None, health_interval: float = 10.0,
    supported_versions: tuple[str, ...] | None = None,
) -> Iterator[PluginServer]:
    lt = LoopThread()
    config = PluginConfig(
        plugin_dir=tmp / "plugins" / "snn.dra.dev",
        registry_dir=tmp / "plugins_registry",
        pod_uid=pod_uid,
        health_interval=health_interval,
        stop_grace_seconds=2,
    )
    if supported_versions is not None:
        config = dataclasses.replace(config, supported_versions=supported_versions)
    server = PluginServer(config, preparer, provider)
    lt.run(server.start())
    server._test_loop = lt  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        lt.run(server.stop())
        lt.close()


def channel(path: Path) -> grpc.Channel:
    return grpc.insecure_channel(f"unix://{path}")


@dataclass
class PluginProcess:
    proc: subprocess.Popen[str]
    dra: Path
    registration: Path
    plugin_dir: Path
    registry_dir: Path
    log: Path

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@contextlib.contextmanager
def plugin_process(tmp: Path, *extra: str, plugin_dir: Path | None = None, registry_dir: Path | None = None,
                   env: Mapping[str, str] | None = None, kubeconfig: Path | None = None,
                   node_config: Path | None = None) -> Iterator[PluginProcess]:  # fmt: skip
    """The real plugin process; without ``kubeconfig`` it gets its own embedded API server with node ``node-a``."""
    with contextlib.ExitStack() as stack:
        if kubeconfig is None:
            from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

            server = stack.enter_context(EmbeddedApiServer(state_dir=tmp / "apiserver"))
            server.store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
            kubeconfig = server.kubeconfig_path
        yield stack.enter_context(
            _plugin_process(tmp, *extra, plugin_dir=plugin_dir, registry_dir=registry_dir, env=env,
                            kubeconfig=kubeconfig, node_config=node_config or NODE_CONFIG)
        )  # fmt: skip


NODE_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "node-configs" / "akida-pcie.yaml"


@contextlib.contextmanager
def _plugin_process(
    tmp: Path,
    *extra: str,
    plugin_dir: Path | None,
    registry_dir: Path | None,
    env: Mapping[str, str] | None,
    kubeconfig: Path,
    node_config: Path,
) -> Iterator[PluginProcess]:
    plugin_dir = plugin_dir or tmp / "plugins" / "snn.dra.dev"
    registry_dir = registry_dir or tmp / "plugins_registry"
    args = [
        sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "kubelet-plugin",
        "--node-name", "node-a", "--kubeconfig", str(kubeconfig), "--node-config", str(node_config),
        "--plugin-dir", str(plugin_dir), "--registry-dir", str(registry_dir), "--cdi-dir", str(tmp / "cdi"),
        *extra,
    ]  # fmt: skip
    full_env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "POD_UID", "KUBECONFIG")}
    full_env.update(env or {})
    log = (tmp / "plugin.log").open("a")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=full_env)
    try:
        line = wait_ready(proc, 60)
        parts = dict(p.split("=", 1) for p in line.removeprefix("ready: ").split())
        yield PluginProcess(
            proc, Path(parts["dra"]), Path(parts["registration"]), plugin_dir, registry_dir, tmp / "plugin.log"
        )
    finally:
        stop_process(proc)
        log.close()
