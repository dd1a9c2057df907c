"""`snn-dra cluster up`: run the embedded cluster's API server on loopback until Ctrl-C / SIGTERM.

``run_cluster`` is the async core; the lead adds the scheduler and kubelet emulation through ``on_ready``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from snn_dra.driver.cli.app import app
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.profiles import DEFAULT_PROFILE, SUPPORTED_PROFILES, ProfileError, resolve_profile

cluster_app = typer.Typer(help="Run an embedded Kubernetes cluster (API server on loopback) for demos and tests.",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")

DEFAULT_KUBECONFIG = Path("snn-dra.kubeconfig")


@dataclass(frozen=True)
class ClusterOptions:
    port: int = 0
    kubeconfig: Path = DEFAULT_KUBECONFIG
    profile: str = DEFAULT_PROFILE
    feature_gates: dict[str, bool] = field(default_factory=dict)
    state_dir: Path | None = None


def parse_feature_gates(spec: str) -> dict[str, bool]:
    """``A=true,B=false`` as kube-apiserver's ``--feature-gates``."""
    gates: dict[str, bool] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or value.lower() not in ("true", "false"):
            raise ValueError(f"invalid feature gate {item!r}: use Name=true or Name=false, comma-separated")
        gates[name.strip()] = value.lower() == "true"
    return gates


def _print_ready(console: Console, server: EmbeddedApiServer) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("API server", server.url)
    table.add_row("Profile", f"Kubernetes {server.store.profile.version}")
    gates = ", ".join(f"{g}={'on' if v else 'off'}" for g, v in sorted(server.store.profile.gates.items())
                      if g.startswith("DRA"))
    table.add_row("DRA gates", gates)
    table.add_row("Kubeconfig", str(server.kubeconfig_path))
    console.print("[bold green]snn-dra embedded cluster is up[/]")
    console.print(table)
    console.print(f"\nUse it:\n  export KUBECONFIG={server.kubeconfig_path}\n  kubectl get resourceslices\n")
    console.print("Press Ctrl-C to stop.")


async def run_cluster(options: ClusterOptions, *, stop: asyncio.Event | None = None,
                      on_ready: Callable[[EmbeddedApiServer], Awaitable[None]] | None = None,
                      console: Console | None = None) -> None:
    """Start the API server, call ``on_ready``, wait for ``stop`` (or SIGINT/SIGTERM), shut down cleanly."""
    console = console or Console()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = EmbeddedApiServer(profile=options.profile, port=options.port, state_dir=options.state_dir,
                               feature_gates=options.feature_gates, kubeconfig_path=options.kubeconfig.absolute())
    try:
        await server.start_async()
        if on_ready is not None:
            await on_ready(server)
        _print_ready(console, server)
        await stop.wait()
        console.print("Shutting down the embedded cluster...")
    finally:
        await server.stop_async()
        server.stop()  # removes a temporary state directory
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@cluster_app.command("up")
def up(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one).", min=0, max=65535)] = 0,
    kubeconfig: Annotated[Path, typer.Option(help="Where to write the kubeconfig (mode 0600).")] = DEFAULT_KUBECONFIG,
    profile: Annotated[str, typer.Option(help=f"Kubernetes version to emulate: {', '.join(SUPPORTED_PROFILES)}.")]
    = DEFAULT_PROFILE,
    feature_gates: Annotated[str, typer.Option("--feature-gates",
                                               help="Gate overrides, e.g. DRAPartitionableDevices=true.")] = "",
    state_dir: Annotated[Path | None, typer.Option(help="Directory for certificates (default: a temp dir).")]
    = None,
) -> None:
    """Start the embedded API server and keep it up until Ctrl-C or SIGTERM."""
    console = Console()
    try:
        gates = parse_feature_gates(feature_gates)
        resolve_profile(profile, gates)
    except (ValueError, ProfileError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    options = ClusterOptions(port=port, kubeconfig=kubeconfig, profile=profile, feature_gates=gates,
                             state_dir=state_dir)
    try:
        asyncio.run(run_cluster(options, console=console))
    except OSError as e:
        console.print(f"[red]error:[/] cannot start the API server on 127.0.0.1:{port}: {e.strerror or e}. "
                      "Choose another --port (0 picks a free one).")
        raise typer.Exit(1) from None
