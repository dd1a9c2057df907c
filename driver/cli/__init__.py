"""Command line: the only layer that wires backends, model, publisher, plugin and embedded cluster together.

Each command module registers its commands on the shared app when imported; ``lazy.COMMANDS`` lists them
so that only the module of the command being run is imported (``snn-dra --help`` stays fast).
"""

from __future__ import annotations

from snn_dra.driver.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
