"""`snn-dra kubelet-plugin`: run the DRA kubelet plugin (what the DaemonSet's container executes).

Every path is a flag so tests and the embedded cluster can run it unprivileged in temp dirs; the defaults are the
kubelet's real directories. ``build_wiring`` is the one place that decides which preparer and health source
the plugin serves with.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from snn_dra.driver.backends import load_node_config
from snn_dra.driver.backends.base import BackendError, NodeConfigError
from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.node import MeteredPreparer, NodeDriver, api_client_for
from snn_dra.driver.model import DeviceModelError
from snn_dra.driver.plugin.health import DEFAULT_INTERVAL_SECONDS, HealthProvider
from snn_dra.driver.plugin.preparer import Preparer
from snn_dra.driver.plugin.server import BackgroundTask, LivenessPortError, PluginConfig, PluginServer
from snn_dra.driver.plugin.sockets import DEFAULT_PLUGIN_DIR, DEFAULT_REGISTRY_DIR, DRIVER_NAME, SocketPathError
from snn_dra.driver.prepare import fault_hook_from_env
from snn_dra.driver.telemetry import setup_metrics

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
    metrics_port: int = -1
    """-1: no metrics; 0: any free port; else the port serving /metrics."""
    health_port: int = -1
    """-1: no liveness service; 0: any free port; else the TCP port of grpc.health.v1 (the DaemonSet's probes)."""
    fault_injection: bool = False
    """Tests only: arm the SIGKILL hook named by ``$SNN_DRA_FAULT_STEP`` (both are needed)."""


@dataclass(frozen=True, slots=True)
class PluginWiring:
    preparer: Preparer
    health_provider: HealthProvider
    background: tuple[BackgroundTask, ...] = ()
    """E.g. the ResourceSlice publisher and a backend health watch that calls ``server.health.notify_changed()``."""


def build_wiring(options: PluginOptions) -> PluginWiring:
    """Build this node's driver: discover hardware, plan the slices for this API server, prepare claims."""
    if options.node_config is None:
        raise typer.BadParameter(
            "the node config is required: pass --node-config FILE (see deploy/node-configs/ for examples)",
            param_hint="--node-config",
        )
    try:
        node_config = load_node_config(options.node_config)
    except NodeConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--node-config") from exc
    metrics = setup_metrics(options.metrics_port) if options.metrics_port >= 0 else None
    try:
        node = NodeDriver(
            node_name=options.node_name,
            node_config=node_config,
            api_client=api_client_for(options.kubeconfig),
            cdi_dir=options.cdi_dir,
            state_dir=options.plugin_dir,
            metrics=metrics,
            fault_hook=fault_hook_from_env(enabled=options.fault_injection),
        )
    except (BackendError, DeviceModelError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--node-config") from exc
    preparer: Preparer = node.preparer if metrics is None else MeteredPreparer(node.preparer, metrics)
    return PluginWiring(
        preparer=preparer,
        health_provider=node.monitor.entries,
        background=(node.run_publisher, node.run_health),
    )


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
    metrics_port: Annotated[
        int, typer.Option(min=-1, help="Port for Prometheus /metrics (-1: off, 0: any free port).")
    ] = -1,
    health_port: Annotated[
        int,
        typer.Option(
            min=-1,
            max=65535,
            help="TCP port of the grpc.health.v1 liveness service for native grpc probes; each Check makes real "
            "calls through the plugin's sockets (-1: off, 0: any free port).",
        ),
    ] = -1,
    log_level: Annotated[str, typer.Option(help="Python logging level.")] = "INFO",
    fault_injection: Annotated[
        bool,
        typer.Option(
            "--fault-injection",
            hidden=True,
            help="Tests only: SIGKILL at the prepare step named in $SNN_DRA_FAULT_STEP (both are needed).",
        ),
    ] = False,
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
        metrics_port=metrics_port,
        health_port=health_port,
        fault_injection=fault_injection,
    )
    wiring = build_wiring(options)
    config = PluginConfig(
        plugin_dir=options.plugin_dir,
        registry_dir=options.registry_dir,
        driver_name=DRIVER_NAME,
        pod_uid=options.pod_uid,
        health_interval=options.health_interval,
        health_port=None if options.health_port < 0 else options.health_port,
    )
    try:
        server = PluginServer(config, wiring.preparer, wiring.health_provider)
    except SocketPathError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        code = asyncio.run(server.run_until_signal(wiring.background))
    except LivenessPortError as exc:
        raise typer.BadParameter(str(exc), param_hint="--health-port") from exc
    if code:
        raise typer.Exit(code)
