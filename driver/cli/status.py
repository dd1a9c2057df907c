"""`snn-dra status`: per node and chip, what claims hold and what is left, read from a live API server.

This is how an operator sees fragmentation: a chip with 40 free cores but no free core group cannot take a
group claim, and the core picture shows why. Works against any API server the kubeconfig reaches (the
embedded cluster of ``snn-dra cluster up`` or a real one); it needs list on resourceslices and
resourceclaims (resource.k8s.io/v1) and nothing else.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snn_dra.api.status import ClusterStatus, Used
from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.console import fit_name, output_console
from snn_dra.driver.status import StatusError, build_status, render_pictures

if TYPE_CHECKING:
    from snn_dra.driver.kubejson import KubeJSON

TABLE_WIDTH = 80


class StatusFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _list_all(kube: KubeJSON, path: str) -> list[dict[str, Any]]:
    """Every item of a list, page by page (``limit``/``continue``), so a large cluster is read in bounded replies."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        query: dict[str, str | int] = {"limit": 500}
        if token:
            query["continue"] = token
        page = kube.get(path, **query)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def read_cluster(kubeconfig: Path | None, context: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ResourceSlices and ResourceClaims (all namespaces) through the official client."""
    # Imported here, not at the top: the kubernetes client costs a third of a second, and `snn-dra --help`
    # must not pay for it (driver/cli/lazy.py). The other commands defer their heavy imports the same way.
    from kubernetes import config

    from snn_dra.driver.kubejson import KubeJSON, resource_path

    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig) if kubeconfig else None, context=context
    )
    try:
        kube = KubeJSON(api)
        slices = _list_all(kube, resource_path("resource.k8s.io", "v1", "resourceslices"))
        claims = _list_all(kube, resource_path("resource.k8s.io", "v1", "resourceclaims"))
    finally:
        api.close()
    return slices, claims


def _used(u: Used | None, free: bool = False) -> str:
    if u is None:
        return "-"
    return f"{u.capacity - u.used if free else u.used:,}/{u.capacity:,}"


def render_table(status: ClusterStatus, console: Console, pictures: bool = True) -> None:
    """Per node: one row per chip (fits 80 columns), then the chips' core pictures and their legends."""
    if not status.nodes:
        console.print("No devices of snn.dra.dev are published (is the driver installed and its pods running?).")
    for node in status.nodes:
        table = Table(
            title=f"Node {node.name}",
            title_justify="left",
            box=None,
            header_style="bold",
            pad_edge=False,
        )
        for name, justify in (("CHIP", "left"), ("CORES", "right"), ("GROUPS", "right"), ("WHOLE", "left"),
                              ("ROUTER", "right"), ("QUEUE", "right"), ("TAINT", "right"),
                              ("CLAIMS", "right")):  # fmt: skip
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for chip in node.chips:
            whole = "-" if chip.whole_chip_free is None else "yes" if chip.whole_chip_free else "no"
            table.add_row(
                escape(fit_name(chip.chip_id, 24)),
                f"{chip.cores_free:,}/{chip.cores.capacity:,}",
                f"{chip.core_groups_free}/{chip.core_groups}" if chip.core_groups else "-",
                whole,
                _used(chip.router),
                _used(chip.queue_depth),
                str(len(chip.tainted_devices)) if chip.tainted_devices else "-",
                str(len(chip.claims)) if chip.claims else "-",
            )
        console.print(table)
        console.print(
            "CORES free/usable, GROUPS free/published, WHOLE: the whole chip is free,\n"
            "ROUTER MEPS and QUEUE slots used/capacity, TAINT devices, CLAIMS on cores\n",
            style="dim",
            highlight=False,
        )
        if pictures:
            for line in render_pictures(node.chips, width=TABLE_WIDTH):
                console.print(escape(line), highlight=False, soft_wrap=True)
    if status.other_allocations:
        console.print(
            "[yellow]Allocated devices that no current slice publishes[/] (the node's driver is gone or "
            "republished its pool; the claims keep them until their pods end):",
            soft_wrap=True,
        )
        for entry in status.other_allocations:
            console.print(f"  {escape(entry)}", highlight=False, soft_wrap=True)


@app.command("status")
def status(
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context (default: current).")] = None,
    output: Annotated[StatusFormat, typer.Option("--output", "-o", help="table or json.")] = StatusFormat.TABLE,
    node: Annotated[str | None, typer.Option("--node", help="Only this node's chips.")] = None,
    pictures: Annotated[bool, typer.Option(help="Draw each chip's core mesh under the table.")] = True,
) -> None:
    """Show what is allocated to which claim and what is free, per node and chip."""
    from kubernetes.client.exceptions import ApiException  # deferred with the client, see read_cluster
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    err = Console(stderr=True)
    try:
        slices, claims = read_cluster(kubeconfig, context)
        result = build_status(slices, claims, node)
    except ApiException as e:
        hint = {
            401: "the kubeconfig's credentials were refused",
            403: "the user may not list resourceslices and resourceclaims (resource.k8s.io/v1): grant list on both",
            404: "the API server does not serve resource.k8s.io/v1: Kubernetes 1.34 or newer is needed",
        }.get(e.status or 0, "see the API server's answer")
        err.print(f"[red]error:[/] {e.status} {escape(str(e.reason))}: {hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (HTTPError, OSError) as e:
        err.print(
            f"[red]error:[/] cannot reach the API server: {escape(str(e))}. Is the cluster up, and is "
            "--kubeconfig (or $KUBECONFIG) the right file? For the embedded cluster: snn-dra cluster up",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except StatusError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ConfigException as e:
        err.print(f"[red]error:[/] kubeconfig: {escape(str(e))}; pass --kubeconfig FILE", soft_wrap=True)
        raise typer.Exit(2) from None
    if node is not None and not result.nodes:
        err.print(f"[red]error:[/] no snn.dra.dev devices are published for node {escape(node)}")
        raise typer.Exit(1)
    if output == StatusFormat.JSON:
        typer.echo(result.model_dump_json(indent=2, by_alias=True))
    else:
        render_table(result, output_console())
