"""Commands are imported when they run, so ``snn-dra --help`` and ``--version`` answer at once.

Together the command modules pull in the kubernetes client, the CEL engine, jsonschema, grpc, numpy and the
embedded cluster: about a second of imports before anything is printed. The root group lists the commands
from :data:`COMMANDS` (module and one-line help) and imports a command's module only when that command is
resolved: to run it, or to show its own ``--help``. ``tests/test_cli_app.py`` checks that every entry
matches what its module registers, so the list cannot drift from the commands.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
import typer.core


@dataclass(frozen=True, slots=True)
class LazyCommand:
    module: str
    """Module that registers the command on the shared app when imported."""
    help: str
    """One-line help for the root listing: the command's own first help line."""


COMMANDS: dict[str, LazyCommand] = {
    "inventory": LazyCommand(
        "snn_dra.driver.cli.inventory",
        "Show the chips, usable cores and access paths the backend discovers on this node.",
    ),
    "slices": LazyCommand(
        "snn_dra.driver.cli.slices",
        "Print the ResourceSlices this node would publish, exactly as they would be POSTed.",
    ),
    "status": LazyCommand(
        "snn_dra.driver.cli.status", "Show what is allocated to which claim and what is free, per node and chip."
    ),
    "kubelet-plugin": LazyCommand(
        "snn_dra.driver.cli.plugin",
        "Serve the DRA kubelet plugin: DRA service on <plugin-dir>/dra.sock, then registration in <registry-dir>.",
    ),
    "cluster": LazyCommand(
        "snn_dra.driver.cli.cluster",
        "Run an embedded Kubernetes cluster (API server on loopback) for demos and tests.",
    ),
    "demo": LazyCommand(
        "snn_dra.driver.cli.demo",
        "Run the driver end to end on the embedded cluster with the demo workloads of deploy/demo.",
    ),
    "split": LazyCommand(
        "snn_dra.driver.cli.split",
        "Plan, place and train split SNN models (stages close together, few router hops).",
    ),
}
"""Root commands in listing order."""


def load_command(name: str) -> Any:
    """The real click command ``name``, its module imported (it registers itself on the shared app)."""
    from snn_dra.driver.cli.app import app  # here, not at the top: app.py builds its Typer with LazyGroup

    importlib.import_module(COMMANDS[name].module)
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


class LazyGroup(typer.core.TyperGroup):
    """The root group: real commands on resolution, placeholders with their help line in the root listing."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        if self._listing:
            entry = COMMANDS[cmd_name]
            return typer.core.TyperCommand(name=cmd_name, help=entry.help, short_help=entry.help)
        self.commands[cmd_name] = command = load_command(cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
