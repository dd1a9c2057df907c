"""The typer application object, shared by the command modules that register on it."""

from __future__ import annotations

import os
import socket

import typer

app = typer.Typer(
    name="snn-dra",
    help="Kubernetes DRA driver for spiking-neural-network (neuromorphic) accelerators.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """snn-dra: publish SNN accelerators as DRA devices, prepare claims, run the embedded cluster."""


def default_node_name(flag: str | None) -> str:
    """The node a command describes: ``--node-name``, else ``$NODE_NAME`` (set in the DaemonSet), else the host name."""
    return flag or os.environ.get("NODE_NAME") or socket.gethostname()
