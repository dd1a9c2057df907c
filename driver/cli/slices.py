"""`snn-dra slices`: print the ResourceSlices a node would publish, without a cluster.

Operators use it to review what a node config turns into (device names, attributes, counters,
how the pool is split) and to diff two configs: ``-o json``/``-o yaml`` print exactly the objects
the publisher POSTs, as a kubectl-style ``v1 List``, byte for byte the same for the same node name.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snn_dra.api.attributes import DeviceType
from snn_dra.driver.backends import BackendError, load_backend, load_node_config
from snn_dra.driver.cli.app import app, default_node_name
from snn_dra.driver.cli.console import output_console
from snn_dra.driver.model import DeviceModelError, build_model
from snn_dra.driver.slices import build_slices
from snn_dra.driver.validation.resourceslice import PROFILES, lint_slice, validate_pool, validate_resource_slice


class OutputFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"
    TABLE = "table"


_COLUMNS = (
    ("CORES", DeviceType.NEURON_CORE),
    ("GROUPS", DeviceType.CORE_GROUP),
    ("CHIPS", DeviceType.CHIP),
    ("ROUTERS", DeviceType.SPIKE_ROUTER),
    ("QUEUES", DeviceType.EVENT_QUEUE),
)


def as_list(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``v1 List`` kubectl prints for ``get -o json|yaml`` of several objects."""
    return {"apiVersion": "v1", "kind": "List", "items": slices, "metadata": {"resourceVersion": ""}}


def render_table(slices: list[dict[str, Any]], console: Console) -> None:
    """``kubectl get resourceslices`` columns, then devices per type and counter sets per slice.

    On a terminal too narrow for that (names are long: ``<index>-<driver>-<node>-``), the columns that
    repeat one value for the whole pool move to a heading line and the name shrinks to its index.
    """
    headers = ["NAME", "NODE", "DRIVER", "POOL", "AGE", *(c for c, _ in _COLUMNS), "COUNTER SETS"]
    rows: list[list[str]] = []
    totals = [0] * (len(_COLUMNS) + 1)
    for s in slices:
        spec = s["spec"]
        counts = {t: 0 for _, t in _COLUMNS}
        for d in spec.get("devices") or ():
            t = DeviceType(d["attributes"]["type"]["string"])
            counts[t] = counts.get(t, 0) + 1
        numbers = [counts[t] for _, t in _COLUMNS] + [len(spec.get("sharedCounters") or ())]
        totals = [a + b for a, b in zip(totals, numbers, strict=True)]
        rows.append(
            [
                s["metadata"]["generateName"],
                spec.get("nodeName", ""),
                spec["driver"],
                spec["pool"]["name"],
                "<unpublished>",
                *(str(n) if n else "-" for n in numbers),
            ]
        )
    needed = sum(max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)) + 2 * (len(headers) - 1)
    table = Table(box=None, pad_edge=False, header_style="bold")
    if needed <= console.width or not rows:
        for i, name in enumerate(headers):
            table.add_column(name, no_wrap=True, justify="left" if i < 5 else "right")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
    else:
        first = slices[0]["spec"]
        console.print(
            f"ResourceSlices of node {escape(first.get('nodeName', '-'))} (pool {escape(first['pool']['name'])}, "
            f"driver {escape(first['driver'])}), not yet published; names are INDEX-{escape(first['driver'])}-"
            f"{escape(first['pool']['name'])}-<suffix>",
            highlight=False,
        )
        for i, name in enumerate(["INDEX", *headers[5:]]):
            table.add_column(name, no_wrap=True, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(escape(row[0].split("-", 1)[0]), *row[5:])
    console.print(table)
    summary = ", ".join(f"{n} {c.lower()}" for (c, _), n in zip(_COLUMNS, totals, strict=False) if n)
    console.print(f"{len(slices)} slices: {summary or 'no devices'}, {totals[-1]} counter sets")


@app.command()
def slices(
    node_config: Annotated[Path, typer.Option("--node-config", help="Node configuration YAML file.")],
    node_name: Annotated[
        str | None,
        typer.Option("--node-name", help="Node (and pool) name (default: $NODE_NAME, else the host name)."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="yaml, json or table.")] = OutputFormat.YAML,
    profile: Annotated[
        str, typer.Option("--profile", help=f"Kubernetes version to lay out and validate for: {', '.join(PROFILES)}.")
    ] = PROFILES[-1],
) -> None:
    """Print the ResourceSlices this node would publish, exactly as they would be POSTed."""
    err = Console(stderr=True)
    if profile not in PROFILES:
        err.print(f"[red]error:[/] unknown --profile {escape(profile)}; use one of {', '.join(PROFILES)}")
        raise typer.Exit(code=2)
    name = default_node_name(node_name)
    try:
        config = load_node_config(node_config)
        inventory = load_backend(config, name).discover()
        built = build_slices(build_model(inventory, config.publish), name, profile=profile)
    except (BackendError, DeviceModelError) as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    problems = [
        f"slice {i}: {e}"
        for i, s in enumerate(built)
        for e in [*validate_resource_slice(s, None, profile), *lint_slice(s)]
    ]
    if profile != "1.34":
        problems += [str(e) for e in validate_pool(built)]
    if problems:
        err.print(f"[red]error:[/] the slices would be rejected by a Kubernetes {profile} API server:")
        for p in problems[:20]:
            err.print(f"  {escape(p)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    if output == OutputFormat.JSON:
        typer.echo(json.dumps(as_list(built), indent=4))
    elif output == OutputFormat.YAML:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml is ~10x faster on big pools
        typer.echo(yaml.dump(as_list(built), Dumper=dumper, sort_keys=True, default_flow_style=False), nl=False)
    else:
        render_table(built, output_console())
