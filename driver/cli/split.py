"""`snn-dra split plan|place|learn`: split SNN models onto devices with few router hops between stages.

``plan`` works offline from the family figures; ``place`` reads the live ResourceSlices and allocations
and pins a concrete placement; ``learn`` runs one side of the split-learning workload. Manifests go to
stdout (pipe them into ``kubectl apply -f -``), the tables to stderr. Every emitted resource.k8s.io
object is checked against the upstream validation rules before it is printed.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.console import MIN_PIPED_WIDTH
from snn_dra.driver.cli.node import api_client_for
from snn_dra.driver.kubejson import KubeJSON, resource_path
from snn_dra.driver.split.inventory import InventoryError, read_inventory
from snn_dra.driver.split.learning import LearnConfig, LearnError, devices_from_env, serve, train_client
from snn_dra.driver.split.loading import SplitModelError, load_model
from snn_dra.driver.split.manifests import render
from snn_dra.driver.split.placement import Placement, PlacementError, link_hops, place
from snn_dra.driver.split.planner import Plan, PlanError, plan_model
from snn_dra.driver.split.wire import WireError
from snn_dra.driver.validation import validate_object

split_app = typer.Typer(
    name="split",
    help="Plan, place and train split SNN models (stages close together, few router hops).",
    no_args_is_help=True,
)
app.add_typer(split_app)


class Output(StrEnum):
    YAML = "yaml"
    JSON = "json"


def _stderr() -> Console:
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=max(console.width, MIN_PIPED_WIDTH))
    return console


def _fail(console: Console, message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _plan(console: Console, model_path: Path) -> Plan:
    try:
        return plan_model(load_model(model_path))
    except (SplitModelError, PlanError) as e:
        raise _fail(console, str(e)) from None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"split plan: {plan.model.metadata.name} ({plan.chip.model})", title_justify="left")
    for col in ("GROUP", "STAGE", "LAYERS", "NEURONS", "SYNAPSE MEM", "CORES", "DEVICES", "SPIKES TO NEXT",
                "KEEP TOGETHER"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("NEURONS", "SYNAPSE MEM", "CORES") else "left")
    for group in plan.groups:
        for stage in group.stages:
            table.add_row(
                group.name,
                stage.name,
                ", ".join(stage.layers),
                f"{stage.demand.neurons:,}",
                _mib(stage.demand.synapse_memory),
                str(stage.demand.cores),
                f"{stage.count} x {stage.unit.type}",
                f"{stage.out_rate_keps:g} KEPS" if stage.out_rate_keps else "-",
                " > ".join(str(level) for level in group.levels) or "-",
            )
    return table


def placement_table(placement: Placement) -> Table:
    table = Table(title="split placement (pinned; falls back to the plan's levels if taken)", title_justify="left")
    for col in ("GROUP", "NODE", "STAGE", "DEVICES", "CHIP MESH", "HOPS TO NEXT", "TRAFFIC (KEPS x HOPS)"):
        table.add_column(col)
    flat = [(g, s, devs) for g in placement.groups for s, devs in zip(g.group.stages, g.stages, strict=True)]
    for i, (g, stage, devs) in enumerate(flat):
        hops = link_hops(devs, flat[i + 1][2]) if i + 1 < len(flat) else None
        table.add_row(
            g.group.name,
            g.node,
            stage.name,
            ", ".join(d.site.device for d in devs),
            " ".join(sorted({",".join(map(str, d.site.mesh)) for d in devs})),
            "-" if hops is None else f"{hops:g}",
            "-" if hops is None else f"{stage.out_rate_keps * hops:,.0f}",
        )
    return table


def _check(docs: list[dict[str, Any]], console: Console) -> None:
    """Refuse to print an object the API server would reject (a bug, not a user error)."""
    for doc in docs:
        if str(doc.get("apiVersion", "")).startswith("resource.k8s.io/"):
            errors = validate_object(doc, None, "1.37")
            if errors:
                lines = "; ".join(str(e) for e in errors)
                raise _fail(console, f"internal error: {doc['kind']} {doc['metadata']['name']} is invalid: {lines}", 3)


class _PlainDumper(yaml.SafeDumper):
    """No ``&id001`` anchors: shared label dicts are written out in full, as kubectl users expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _emit(docs: list[dict[str, Any]], output: Output) -> None:
    if output == Output.JSON:
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2))
    else:
        typer.echo(yaml.dump_all(docs, Dumper=_PlainDumper, sort_keys=False, width=1000), nl=False)


@split_app.command("plan")
def plan_command(
    model: Annotated[Path, typer.Argument(help="SplitModel YAML file (see deploy/examples/split/).")],
    image: Annotated[str | None, typer.Option(help="Container image of the emitted pods.")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="Manifest format on stdout.")] = Output.YAML,
) -> None:
    """Cut MODEL into stages that fit the devices; print the claim templates and pods that keep them close."""
    console = _stderr()
    plan = _plan(console, model)
    docs = render(plan, image=image)
    _check(docs, console)
    console.print(plan_table(plan))
    _emit(docs, output)


def _kubeconfig(flag: Path | None) -> Path | None:
    if flag is not None:
        return flag
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    default = Path.home() / ".kube" / "config"
    if default.is_file():
        return default
    raise typer.BadParameter("no cluster: pass --kubeconfig or set KUBECONFIG", param_hint="--kubeconfig")


@split_app.command("place")
def place_command(
    model: Annotated[Path, typer.Argument(help="SplitModel YAML file (see deploy/examples/split/).")],
    kubeconfig: Annotated[Path | None, typer.Option(help="Cluster to read (default: $KUBECONFIG).")] = None,
    image: Annotated[str | None, typer.Option(help="Container image of the emitted pods.")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="Manifest format on stdout.")] = Output.YAML,
) -> None:
    """Choose free devices with the least hop-weighted spike traffic now, and print manifests that pin them."""
    console = _stderr()
    plan = _plan(console, model)
    api = api_client_for(_kubeconfig(kubeconfig))
    try:
        kube = KubeJSON(api)
        slices = kube.get(resource_path("resource.k8s.io", "v1", "resourceslices"))["items"]
        claims = kube.get(resource_path("resource.k8s.io", "v1", "resourceclaims"))["items"]
    finally:
        api.close()  # type: ignore[no-untyped-call]
    try:
        free = read_inventory(slices, claims).free()
        placement = place(plan, free)
    except (InventoryError, PlacementError) as e:
        raise _fail(console, str(e), 1) from None
    docs = render(plan, placement, image=image)
    _check(docs, console)
    console.print(plan_table(plan))
    console.print(placement_table(placement))
    console.print(
        f"hop-weighted spike traffic: {placement.cost:,.0f} KEPS x hops "
        f"({len(free)} free devices considered, placed in {placement.seconds * 1000:.0f} ms)",
        highlight=False,
    )
    _emit(docs, output)


class Role(StrEnum):
    CLIENT = "client"
    SERVER = "server"


@split_app.command("learn")
def learn_command(
    role: Annotated[Role, typer.Option(help="client: data and layers up to the cut; server: the rest and the loss.")],
    listen: Annotated[str, typer.Option(help="Server: HOST:PORT to listen on (port 0 picks one).")] = "0.0.0.0:7070",
    server: Annotated[str | None, typer.Option(envvar="SNN_SPLIT_SERVER", help="Client: the server's HOST:PORT.")] = (
        None
    ),
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Training steps (batches).")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic dataset and the weights.")] = 7,
    allow_no_devices: Annotated[
        bool, typer.Option(help="Run without SNN devices in the environment (outside a pod with a claim).")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write a JSON summary (devices, losses) here, e.g. /dev/termination-log in a pod."),
    ] = None,
) -> None:
    """One side of split learning: cut-layer spikes forward, gradients back, over TCP."""
    console = _stderr()
    devices = devices_from_env(os.environ)
    if not devices and not allow_no_devices:
        raise _fail(
            console,
            "no SNN devices in the environment (no SNN_DRA_DEVICE_* variables): run it in a pod whose claim "
            "gave it devices (snn-dra split plan), or pass --allow-no-devices",
        )
    config = LearnConfig(steps=steps, seed=seed)
    try:
        if role == Role.SERVER:
            losses = serve(listen, config, devices, sys.stdout)
        else:
            if not server:
                raise _fail(console, "the client needs --server HOST:PORT (or SNN_SPLIT_SERVER)")
            losses = train_client(server, config, devices, sys.stdout)
        if report is not None:
            summary = {
                "role": role.value,
                "devices": [{"name": d.name, "type": d.type, "chip": d.chip, "stage": d.stage} for d in devices],
                "losses": [round(x, 5) for x in losses],
            }
            report.write_text(json.dumps(summary))
    except (LearnError, WireError, OSError) as e:
        raise _fail(console, f"{role.value}: {e}", 1) from None
