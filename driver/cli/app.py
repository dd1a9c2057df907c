"""The typer application object, shared by the command modules that register on it."""

from __future__ import annotations

import os
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.driver.cli.lazy import LazyGroup

app = typer.Typer(
    name="snn-dra",
    cls=LazyGroup,
    help="Kubernetes DRA driver for spiking-neural-network (neuromorphic) accelerators.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def package_version() -> str:
    try:
        return version("snn-dra")
    except PackageNotFoundError:  # a source tree on sys.path without an install
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"snn-dra {package_version()} (driver {DRIVER_NAME}, resource.k8s.io/v1)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """snn-dra: publish SNN accelerators as DRA devices, prepare claims, run the embedded cluster."""


def default_node_name(flag: str | None) -> str:
    """The node a command describes: ``--node-name``, else ``$NODE_NAME`` (set in the DaemonSet), else the host name."""
    return flag or os.environ.get("NODE_NAME") or socket.gethostname()
