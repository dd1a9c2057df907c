"""`snn-dra split plan|place|learn`: split SNN models onto devices with few router hops between stages.

``plan`` works offline from the family figures; ``place`` reads the live ResourceSlices and allocations
and pins a concrete placement; ``learn`` runs one side of the split-learning workload. Manifests go to
stdout (pipe them into ``kubectl apply -f -``), the tables to stderr. Every emitted resource.k8s.io
object is checked against the upstream validation rules before it is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from kubernetes import config
from rich.console import Console
from rich.table import Table

from snn_dra.driver.cdi import resolve
from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.console import MIN_PIPED_WIDTH
from snn_dra.driver.cli.node import api_client_for
from snn_dra.driver.embedded.cluster import EmbeddedCluster, plugin_command, wait_until
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


DEMO_NODE = "snn-node-0"
DEMO_NAMESPACE = "snn-demo"
DEMO_TIMEOUT_S = 120.0
_REPO = Path(__file__).resolve().parents[2]


def _demo_paths(deploy: Path | None) -> tuple[Path, Path, Path]:
    root = deploy or next((p for p in (Path.cwd() / "deploy", _REPO / "deploy") if p.is_dir()), Path("deploy"))
    paths = (
        root / "node-configs" / "kapoho-point.yaml",
        root / "base" / "deviceclasses.yaml",
        root / "examples" / "split" / "split-learning.yaml",
    )
    for p in paths:
        if not p.is_file():
            raise typer.BadParameter(
                f"{p} is missing: run from the repository or pass --deploy-dir", param_hint="--deploy-dir"
            )
    return paths


def _learner(role: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SNN_DRA_")}
    return subprocess.Popen(
        [*plugin_command(), "split", "learn", "--role", role, *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@split_app.command("demo")
def demo_command(
    steps: Annotated[int, typer.Option(min=5, max=10_000, help="Training steps.")] = 40,
    deploy_dir: Annotated[Path | None, typer.Option(help="The repository's deploy/ directory.")] = None,
) -> None:
    """Split learning on the embedded cluster: plan the example, let the scheduler allocate both sides' claims,
    then run client and server as two local processes with the environment CDI gives each pod."""
    console = _stderr()
    node_config, classes, model_path = _demo_paths(deploy_dir)
    plan = plan_model(load_model(model_path))
    docs = [d for d in render(plan) if d["kind"] in ("ResourceClaimTemplate", "Pod")]
    procs: list[subprocess.Popen[str]] = []
    with EmbeddedCluster(nodes=(DEMO_NODE,)) as cluster:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))  # type: ignore[no-untyped-call]
        try:
            kube = KubeJSON(api)
            with console.status("embedded cluster up, kubelet plugin publishing"):
                cluster.start_plugin(DEMO_NODE, node_config.absolute())
                for doc in yaml.safe_load_all(classes.read_text()):
                    if doc:
                        kube.create(resource_path("resource.k8s.io", "v1", "deviceclasses"), doc)
                kube.create(resource_path("", "v1", "namespaces"), {"metadata": {"name": DEMO_NAMESPACE}})
            console.print(plan_table(plan))
            for doc in docs:
                plural = "pods" if doc["kind"] == "Pod" else "resourceclaimtemplates"
                api_group = "" if doc["kind"] == "Pod" else "resource.k8s.io"
                kube.create(resource_path(api_group, "v1", plural, namespace=DEMO_NAMESPACE), doc)
            envs = {}
            table = Table(title="pods and the devices their claims got", title_justify="left")
            for col in ("POD", "ROLE", "REQUEST", "DEVICE"):
                table.add_column(col)
            for group, role in zip(plan.groups, ("client", "server"), strict=True):
                pod_path = resource_path("", "v1", "pods", group.name, DEMO_NAMESPACE)

                def running(path: str = pod_path) -> dict[str, Any] | None:
                    pod = kube.get(path)
                    return pod if pod.get("status", {}).get("phase") == "Running" else None

                with console.status(f"waiting for pod {group.name} (claim allocated and prepared)"):
                    pod = wait_until(running, f"pod {group.name} to run", timeout=DEMO_TIMEOUT_S)
                claim_name = pod["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
                claim = kube.get(resource_path("resource.k8s.io", "v1", "resourceclaims", claim_name, DEMO_NAMESPACE))
                for r in claim["status"]["allocation"]["devices"]["results"]:
                    table.add_row(group.name, role, r["request"], r["device"])
                ids = cluster.kubelets[DEMO_NODE].cdi_devices_for(DEMO_NAMESPACE, group.name, role)
                edits = resolve(ids, [cluster.node_dirs(DEMO_NODE).cdi_dir])
                envs[role] = dict(line.split("=", 1) for line in edits["env"])
            console.print(table)
            server = _learner("server", envs["server"], "--listen", "127.0.0.1:0", "--steps", str(steps))
            procs.append(server)
            assert server.stdout is not None
            first = server.stdout.readline().strip()
            console.print(first, highlight=False)
            if "listening on 127.0.0.1:" not in first:
                raise _fail(console, f"the server did not start: {first}", 1)
            port = first.split("127.0.0.1:")[1].split(";")[0]
            client = _learner("client", envs["client"], "--server", f"127.0.0.1:{port}", "--steps", str(steps))
            procs.append(client)
            assert client.stdout is not None
            last = ""
            for line in client.stdout:
                console.print(line.rstrip(), highlight=False)
                last = line.strip() or last
            if client.wait() != 0 or server.wait(timeout=60) != 0:
                raise _fail(console, "split learning failed (see the output above)", 1)
            with console.status("pods deleted, claims released"):
                for group in plan.groups:
                    kube.delete(resource_path("", "v1", "pods", group.name, DEMO_NAMESPACE))
                cdi_dir = cluster.node_dirs(DEMO_NODE).cdi_dir
                wait_until(lambda: not any(cdi_dir.glob("*.json")), "the CDI specs to be removed", DEMO_TIMEOUT_S)
                wait_until(
                    lambda: not kube.get(resource_path("resource.k8s.io", "v1", "resourceclaims"))["items"],
                    "the split-learning claims to be released",
                    timeout=DEMO_TIMEOUT_S,
                )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            api.close()
    console.print(f"[bold green]split-learning demo complete[/]: {last.removeprefix('client: done: ')}")
