"""`snn-dra inventory`: show what the backend discovers, before anything is published.

Operators run it to check a node config (or a real sysfs tree) and see exactly which chips, usable
cores and access paths the driver will work from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snn_dra.driver.backends import BackendError, load_backend, load_node_config
from snn_dra.driver.backends.base import Access, Chip, Inventory
from snn_dra.driver.backends.families import CHIP_SPECS
from snn_dra.driver.cli.app import app, default_node_name
from snn_dra.driver.cli.console import output_console


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _access(access: Access) -> str:
    """Short access text: ``/dev/akida0``, ``eth enp2s0`` (Ethernet interface), ``ip 192.168.240.9``."""
    parts = [d.path if d.host_path == d.path else f"{d.path} ({d.host_path})" for d in access.device_nodes]
    for endpoint in access.endpoints:
        scheme, _, rest = endpoint.partition("://")
        if scheme == "ethernet":
            parts.append(f"eth {rest.split('/', 1)[0]}")
        elif scheme == "ipv4":
            parts.append(f"ip {rest}")
        else:
            parts.append(endpoint)
    return ", ".join(parts) or "-"


def _simulated_mark(chip: Chip, figure: str) -> str:
    spec = CHIP_SPECS.get(chip.model)
    return "*" if spec is not None and figure in spec.simulated else ""


_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    # name, justify, kept on a narrow terminal
    ("board", "left", False),
    ("chip", "left", True),
    ("model", "left", False),
    ("mesh", "left", True),
    ("cores", "right", True),
    ("neurons", "right", True),
    ("synapse mem", "right", False),
    ("router MEPS", "right", False),
    ("queues", "right", False),
    ("access", "left", True),
    ("health", "left", True),
)
_BOARD, _ACCESS = 0, 9


def _table(inventory: Inventory, rows: list[list[str]], compact: bool) -> Table:
    """Wide: every column, boxed. Compact (fits 80 columns): the main columns without a box, each board as a
    heading row (model, then its ID where the access path goes)."""
    caption = "cores = usable/nominal; * = simulated figure (not published by the vendor)"
    if compact:
        caption = "cores = usable/nominal\nwiden the terminal for model, memory, router and queues"
    table = Table(
        title=f"Node {inventory.node_name} (system {inventory.system_id})",
        caption=caption,
        caption_justify="left",
    )
    if compact:
        table.box, table.header_style, table.pad_edge = None, "bold", False
    keep = [i for i, (_, _, narrow) in enumerate(_COLUMNS) if narrow or not compact]
    for i in keep:
        name, justify, _ = _COLUMNS[i]
        table.add_column(name, justify=justify, no_wrap=i != _ACCESS or not compact)  # type: ignore[arg-type]
    for row in rows:
        if not row:
            table.add_section()
        elif compact and row[_BOARD] and not row[1]:
            heading = ["" for _ in keep]
            heading[0] = f"[bold]{row[_BOARD]}[/]"
            heading[keep.index(_ACCESS)] = f"[dim]{row[_ACCESS]}[/]"
            table.add_row(*heading)
        elif compact or row[1]:
            table.add_row(*(row[i] for i in keep))
    return table


def render(inventory: Inventory, console: Console) -> None:
    """The chip table; on a terminal too narrow for every column, the compact layout (80 columns)."""
    rows: list[list[str]] = []
    neurons_total = memory_total = usable_total = nominal_total = 0
    for board in inventory.boards:
        rows.append([])
        rows.append([escape(board.model), "", "", "", "", "", "", "", "", escape(board.id), ""])
        for position, chip in enumerate(board.chips):
            neurons = sum(c.neurons for c in chip.cores)
            memory = sum(c.synapse_memory_bytes for c in chip.cores)
            neurons_total += neurons
            memory_total += memory
            usable_total += len(chip.cores)
            nominal_total += chip.nominal_cores
            queues = chip.event_queues
            queue_text = f"{len(queues)} x {queues[0].depth}{_simulated_mark(chip, 'queueDepth')}" if queues else "-"
            rows.append(
                [
                    escape(board.model) if position == 0 else f"[dim]{escape(board.id)}[/]" if position == 1 else "",
                    escape(chip.id),
                    escape(chip.model),
                    "({},{},{})".format(*chip.mesh),
                    f"{len(chip.cores)}/{chip.nominal_cores}",
                    f"{neurons:,}",
                    _bytes(memory),
                    f"{chip.router.event_throughput_meps:,}{_simulated_mark(chip, 'eventThroughputMEPS')}",
                    queue_text,
                    escape(_access(chip.access)),
                    "[green]healthy[/]" if chip.healthy else "[red]unhealthy[/]",
                ]
            )
    table = _table(inventory, rows, compact=False)
    if console.measure(table, options=console.options.update_width(1 << 16)).maximum > console.width:
        table = _table(inventory, rows, compact=True)
    console.print(table)
    chips = inventory.chips
    unhealthy = [c for c in chips if not c.healthy]
    for chip in unhealthy:
        console.print(
            f"[red]unhealthy[/] {escape(chip.id)}: {escape(chip.health_reason or 'no reason reported')}",
            highlight=False,
        )
    console.print(
        f"Totals: {len(inventory.boards)} boards, {len(chips)} chips ({len(unhealthy)} unhealthy), "
        f"{usable_total:,}/{nominal_total:,} cores usable, {neurons_total:,} neurons, "
        f"{_bytes(memory_total)} synapse memory",
    )


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
    name = default_node_name(node_name)
    try:
        config = load_node_config(node_config)
        discovered = load_backend(config, name).discover()
    except BackendError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    render(discovered, output_console())
