"""`snn-dra inventory`: show what the backend discovers, before anything is published.

Operators run it to check a node config (or a real sysfs tree) and see exactly which chips, usable
cores and access paths the driver will work from.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snn_dra.driver.backends import BackendError, load_backend, load_node_config
from snn_dra.driver.backends.base import Access, Chip, Inventory
from snn_dra.driver.backends.families import CHIP_SPECS
from snn_dra.driver.cli.app import app


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _access(access: Access) -> str:
    parts = [d.host_path for d in access.device_nodes] + list(access.endpoints)
    return "\n".join(parts) or "-"


def _simulated_mark(chip: Chip, figure: str) -> str:
    spec = CHIP_SPECS.get(chip.model)
    return "*" if spec is not None and figure in spec.simulated else ""


def render(inventory: Inventory, console: Console) -> None:
    table = Table(title=f"Node {inventory.node_name} (system {inventory.system_id})", show_lines=False)
    for name, justify in (
        ("board", "left"),
        ("chip id", "left"),
        ("family/model", "left"),
        ("mesh", "left"),
        ("cores usable/nominal", "right"),
        ("neurons", "right"),
        ("synapse mem", "right"),
        ("router MEPS", "right"),
        ("queues", "right"),
        ("access", "left"),
        ("health", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    neurons_total = memory_total = usable_total = nominal_total = 0
    for board in inventory.boards:
        table.add_section()
        for position, chip in enumerate(board.chips):
            neurons = sum(c.neurons for c in chip.cores)
            memory = sum(c.synapse_memory_bytes for c in chip.cores)
            neurons_total += neurons
            memory_total += memory
            usable_total += len(chip.cores)
            nominal_total += chip.nominal_cores
            queues = chip.event_queues
            queue_text = f"{len(queues)} x {queues[0].depth}{_simulated_mark(chip, 'queueDepth')}" if queues else "-"
            health = "[green]healthy[/]" if chip.healthy else f"[red]unhealthy[/] {escape(chip.health_reason)}"
            table.add_row(
                board.model if position == 0 else f"[dim]{board.id}[/]" if position == 1 else "",
                chip.id,
                f"{chip.family}/{chip.model}",
                "({},{},{})".format(*chip.mesh),
                f"{len(chip.cores)}/{chip.nominal_cores}",
                f"{neurons:,}",
                _bytes(memory),
                f"{chip.router.event_throughput_meps:,}{_simulated_mark(chip, 'eventThroughputMEPS')}",
                queue_text,
                _access(chip.access),
                health,
            )
    console.print(table)
    chips = inventory.chips
    unhealthy = sum(1 for c in chips if not c.healthy)
    console.print(
        f"Totals: {len(inventory.boards)} boards, {len(chips)} chips ({unhealthy} unhealthy), "
        f"{usable_total:,}/{nominal_total:,} cores usable, {neurons_total:,} neurons, "
        f"{_bytes(memory_total)} synapse memory"
    )
    console.print("* simulated figure (not published by the vendor); see driver/backends/families.py")


@app.command()
def inventory(
    node_config: Annotated[Path, typer.Option("--node-config", help="Node configuration YAML file.")],
    node_name: Annotated[
        str | None,
        typer.Option("--node-name", help="Node name the IDs derive from (default: $NODE_NAME, else the host name)."),
    ] = None,
) -> None:
    """Show the chips, usable cores and access paths the backend discovers on this node."""
    err = Console(stderr=True)
    name = node_name or os.environ.get("NODE_NAME") or socket.gethostname()
    try:
        config = load_node_config(node_config)
        discovered = load_backend(config, name).discover()
    except BackendError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    render(discovered, Console())
