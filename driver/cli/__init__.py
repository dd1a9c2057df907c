"""Command line: the only layer that wires backends, model, publisher, plugin and embedded cluster together.

Each command module registers its commands on the shared app when imported.
"""

from __future__ import annotations

from snn_dra.driver.cli.app import app

# Command modules, imported for their registrations (one line each).


def main() -> None:
    app()
