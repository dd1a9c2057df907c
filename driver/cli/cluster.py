"""`snn-dra cluster up`: the embedded cluster (API server, scheduler, kubelet emulation) until Ctrl-C / SIGTERM.

With ``--node-config`` it also runs the real kubelet plugin on every node, so ``kubectl apply`` of a pod with a
ResourceClaimTemplate goes all the way to a prepared claim and a CDI spec on disk. The DeviceClasses of
``deploy/base`` are installed unless ``--no-device-classes`` says otherwise: claims name them.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
import yaml
from kubernetes import config
from rich.console import Console
from rich.table import Table

from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.manifests import (
    DEVICE_CLASSES,
    apply_device_classes,
    default_deploy_dir,
    device_class_documents,
)
from snn_dra.driver.embedded.cluster import EmbeddedCluster, PluginStartError
from snn_dra.driver.embedded.profiles import DEFAULT_PROFILE, SUPPORTED_PROFILES, ProfileError, resolve_profile

cluster_app = typer.Typer(
    help="Run an embedded Kubernetes cluster (API server on loopback) for demos and tests.", no_args_is_help=True
)
app.add_typer(cluster_app, name="cluster")

DEFAULT_KUBECONFIG = Path("snn-dra.kubeconfig")


@dataclass(frozen=True)
class ClusterOptions:
    nodes: tuple[str, ...] = ("snn-node-0",)
    node_config: Path | None = None
    port: int = 0
    kubeconfig: Path = DEFAULT_KUBECONFIG
    profile: str = DEFAULT_PROFILE
    feature_gates: dict[str, bool] = field(default_factory=dict)
    state_dir: Path | None = None
    device_classes: Path | None = None
    """DeviceClass manifest to install once the API server is up; None installs none."""


def parse_feature_gates(spec: str) -> dict[str, bool]:
    """``A=true,B=false`` as kube-apiserver's ``--feature-gates``."""
    gates: dict[str, bool] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or value.lower() not in ("true", "false"):
            raise ValueError(f"invalid feature gate {item!r}: use Name=true or Name=false, comma-separated")
        gates[name.strip()] = value.lower() == "true"
    return gates


def _print_ready(console: Console, cluster: EmbeddedCluster, options: ClusterOptions, classes: list[str]) -> None:
    server = cluster.server
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("API server", server.url)
    table.add_row("Profile", f"Kubernetes {server.store.profile.version}")
    gates = ", ".join(
        f"{g}={'on' if v else 'off'}" for g, v in sorted(server.store.profile.gates.items()) if g.startswith("DRA")
    )
    table.add_row("DRA gates", gates)
    table.add_row("Kubeconfig", str(server.kubeconfig_path))
    table.add_row("Nodes", ", ".join(cluster.nodes))
    if options.node_config is not None:
        table.add_row("Plugin", f"snn-dra kubelet-plugin with {options.node_config} on every node")
    table.add_row("Node dirs", str(cluster.state_dir / "nodes"))
    table.add_row("DeviceClasses", ", ".join(classes) if classes else "none installed")
    console.print("[bold green]snn-dra embedded cluster is up[/]")
    console.print(table)
    console.print(
        f"\nUse it:\n  export KUBECONFIG={server.kubeconfig_path}\n  kubectl get deviceclasses\n"
        f"  kubectl get resourceslices\n  snn-dra status --kubeconfig {server.kubeconfig_path}\n",
        soft_wrap=True,
    )
    if options.node_config is None:
        node = cluster.nodes[0]
        args = " ".join(cluster.plugin_args(node, Path("NODE_CONFIG.yaml")))
        console.print(f"Run the driver on {node} (scheduler and kubelet emulation are up):\n  snn-dra {args}\n")
    console.print("Press Ctrl-C to stop.")


def run_cluster(options: ClusterOptions, console: Console, stop: threading.Event | None = None) -> None:
    """Start the cluster (and the plugin on every node when a node config is given), wait for ``stop``.

    Without ``stop`` it waits for SIGINT or SIGTERM and shuts down cleanly: plugins first (they remove
    their sockets), then kubelets, scheduler and API server.
    """
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    cluster = EmbeddedCluster(
        nodes=options.nodes,
        profile=options.profile,
        feature_gates=options.feature_gates,
        state_dir=options.state_dir,
        port=options.port,
        kubeconfig_path=options.kubeconfig.absolute(),
    )
    try:
        cluster.start()
        classes: list[str] = []
        if options.device_classes is not None:
            api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))  # type: ignore[no-untyped-call]
            try:
                classes = apply_device_classes(api, device_class_documents(options.device_classes))
            finally:
                api.close()
        if options.node_config is not None:
            for node in options.nodes:
                with console.status(f"starting the kubelet plugin on {node}"):
                    cluster.start_plugin(node, options.node_config.absolute())
        _print_ready(console, cluster, options, classes)
        stop.wait()
        console.print("Shutting down the embedded cluster...")
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cluster_app.command("up")
def up(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one).", min=0, max=65535)] = 0,
    kubeconfig: Annotated[Path, typer.Option(help="Where to write the kubeconfig (mode 0600).")] = DEFAULT_KUBECONFIG,
    profile: Annotated[
        str, typer.Option(help=f"Kubernetes version to emulate: {', '.join(SUPPORTED_PROFILES)}.")
    ] = DEFAULT_PROFILE,
    feature_gates: Annotated[
        str, typer.Option("--feature-gates", help="Gate overrides, e.g. DRAPartitionableDevices=true.")
    ] = "",
    state_dir: Annotated[Path | None, typer.Option(help="Certificates and node dirs (default: a temp dir).")] = None,
    node: Annotated[list[str] | None, typer.Option("--node", help="Node name (repeat for more nodes).")] = None,
    node_config: Annotated[
        Path | None,
        typer.Option(
            help="Also run the kubelet plugin on every node with this "
            "node config (e.g. deploy/node-configs/kapoho-point.yaml)."
        ),
    ] = None,
    device_classes: Annotated[
        Path | None,
        typer.Option(help="DeviceClasses to install (default: deploy/base/deviceclasses.yaml of the repository)."),
    ] = None,
    no_device_classes: Annotated[
        bool, typer.Option("--no-device-classes", help="Install no DeviceClasses (bring your own).")
    ] = False,
) -> None:
    """Start the embedded API server and keep it up until Ctrl-C or SIGTERM."""
    console = Console()
    try:
        gates = parse_feature_gates(feature_gates)
        resolve_profile(profile, gates)
    except (ValueError, ProfileError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    classes_file: Path | None = None
    if device_classes is not None and no_device_classes:
        console.print("[red]error:[/] --device-classes and --no-device-classes exclude each other; give one")
        raise typer.Exit(2)
    if device_classes is not None:
        classes_file = device_classes
    elif not no_device_classes:
        classes_file = default_deploy_dir() / DEVICE_CLASSES
        if not classes_file.is_file():
            console.print(
                f"[yellow]warning:[/] no DeviceClasses installed: {classes_file} not found. Run from the "
                "repository, pass --device-classes FILE, or --no-device-classes to silence this.",
                soft_wrap=True,
            )
            classes_file = None
    if classes_file is not None:
        try:
            device_class_documents(classes_file)
        except (OSError, ValueError, yaml.YAMLError) as e:
            console.print(f"[red]error:[/] --device-classes {classes_file}: {e}", soft_wrap=True)
            raise typer.Exit(2) from None
    options = ClusterOptions(
        nodes=tuple(node or ("snn-node-0",)),
        node_config=node_config,
        port=port,
        kubeconfig=kubeconfig,
        profile=profile,
        feature_gates=gates,
        state_dir=state_dir,
        device_classes=classes_file,
    )
    try:
        run_cluster(options, console)
    except PluginStartError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    except OSError as e:
        console.print(
            f"[red]error:[/] cannot start the API server on 127.0.0.1:{port}: {e.strerror or e}. "
            "Choose another --port (0 picks a free one)."
        )
        raise typer.Exit(1) from None
