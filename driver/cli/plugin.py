"""`snn-dra kubelet-plugin`: run the DRA kubelet plugin (what the DaemonSet's container executes).

Every path is a flag so tests and the embedded cluster can run it unprivileged in temp dirs; the defaults are the
kubelet's real directories. ``build_wiring`` is the one place that decides which preparer and health source
the plugin serves with.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from snn_dra.driver.cli.app import app
from snn_dra.driver.plugin.health import DEFAULT_INTERVAL_SECONDS, DeviceHealthEntry, HealthProvider
from snn_dra.driver.plugin.preparer import ClaimResultLike, Preparer
from snn_dra.driver.plugin.server import BackgroundTask, PluginConfig, PluginServer
from snn_dra.driver.plugin.sockets import DEFAULT_PLUGIN_DIR, DEFAULT_REGISTRY_DIR, DRIVER_NAME, SocketPathError

log = logging.getLogger("snn_dra.cli.plugin")

DEFAULT_CDI_DIR = Path("/var/run/cdi")


@dataclass(frozen=True, slots=True)
class PluginOptions:
    """Everything the command line decided, handed to :func:`build_wiring`."""

    node_name: str
    node_config: Path | None
    kubeconfig: Path | None
    """None means in-cluster configuration (service account)."""
    plugin_dir: Path
    registry_dir: Path
    cdi_dir: Path
    pod_uid: str | None
    health_interval: float


@dataclass(frozen=True, slots=True)
class PluginWiring:
    preparer: Preparer
    health_provider: HealthProvider
    background: tuple[BackgroundTask, ...] = ()
    """E.g. the ResourceSlice publisher and a backend health watch that calls ``server.health.notify_changed()``."""


@dataclass(frozen=True, slots=True)
class _Unprepared:
    error: str
    devices: tuple[Any, ...] = ()


class UnwiredPreparer:
    """Answers every claim with a clear per-claim error until a real preparer is wired in :func:`build_wiring`."""

    REASON = "claim preparation is not wired into this snn-dra build (snn_dra.driver.cli.plugin.build_wiring)"

    def prepare(self, claims: Sequence[Any]) -> Mapping[str, ClaimResultLike]:
        return {c.uid: _Unprepared(self.REASON) for c in claims}

    def unprepare(self, claims: Sequence[Any]) -> Mapping[str, str]:
        return {c.uid: self.REASON for c in claims}


def _no_devices() -> Sequence[DeviceHealthEntry]:
    return ()


def build_wiring(options: PluginOptions) -> PluginWiring:
    """Choose the preparer and the health source for this node."""
    log.warning("%s", UnwiredPreparer.REASON)
    return PluginWiring(preparer=UnwiredPreparer(), health_provider=_no_devices)


def _kubeconfig(flag: Path | None) -> Path | None:
    if flag is not None:
        return flag
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    raise typer.BadParameter(
        "no API server access: not running in a pod and neither --kubeconfig nor KUBECONFIG is set",
        param_hint="--kubeconfig",
    )


@app.command("kubelet-plugin")
def kubelet_plugin(
    node_name: Annotated[str, typer.Option(envvar="NODE_NAME", help="This node's name (from spec.nodeName).")] = "",
    node_config: Annotated[Path | None, typer.Option(help="Node config file (hardware description).")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig; default: in-cluster service account, else $KUBECONFIG.")
    ] = None,
    plugin_dir: Annotated[Path, typer.Option(help="Plugin data dir holding dra.sock.")] = DEFAULT_PLUGIN_DIR,
    registry_dir: Annotated[Path, typer.Option(help="Kubelet plugin registry dir.")] = DEFAULT_REGISTRY_DIR,
    cdi_dir: Annotated[Path, typer.Option(help="Directory for CDI specs.")] = DEFAULT_CDI_DIR,
    pod_uid: Annotated[
        str | None, typer.Option(envvar="POD_UID", help="This pod's UID: per-pod socket names for rolling updates.")
    ] = None,
    health_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between full health snapshots (kubelet times out at 30 s).")
    ] = DEFAULT_INTERVAL_SECONDS,
    log_level: Annotated[str, typer.Option(help="Python logging level.")] = "INFO",
) -> None:
    """Serve the DRA kubelet plugin: DRA service on <plugin-dir>/dra.sock, then registration in <registry-dir>."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not node_name:
        raise typer.BadParameter(
            "the node name is required: pass --node-name or set NODE_NAME", param_hint="--node-name"
        )
    for flag, path in (("--plugin-dir", plugin_dir), ("--registry-dir", registry_dir), ("--cdi-dir", cdi_dir)):
        if path.exists() and not path.is_dir():
            raise typer.BadParameter(f"{path} exists and is not a directory", param_hint=flag)
    options = PluginOptions(
        node_name=node_name,
        node_config=node_config,
        kubeconfig=_kubeconfig(kubeconfig),
        plugin_dir=plugin_dir.absolute(),
        registry_dir=registry_dir.absolute(),
        cdi_dir=cdi_dir.absolute(),
        pod_uid=pod_uid or None,
        health_interval=health_interval,
    )
    wiring = build_wiring(options)
    config = PluginConfig(
        plugin_dir=options.plugin_dir,
        registry_dir=options.registry_dir,
        driver_name=DRIVER_NAME,
        pod_uid=options.pod_uid,
        health_interval=options.health_interval,
    )
    try:
        server = PluginServer(config, wiring.preparer, wiring.health_provider)
    except SocketPathError as exc:
        raise typer.BadParameter(str(exc)) from exc
    code = asyncio.run(server.run_until_signal(wiring.background))
    if code:
        raise typer.Exit(code)
