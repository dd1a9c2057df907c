"""Command line: the only layer that wires backends, model, publisher, plugin and embedded cluster together.

Each command module registers its commands on the shared app when imported.
"""

from __future__ import annotations

# Command modules, imported for their registrations (one line each).
from snn_dra.driver.cli import cluster as _cluster  # noqa: F401
from snn_dra.driver.cli import demo as _demo  # noqa: F401
from snn_dra.driver.cli import inventory as _inventory  # noqa: F401
from snn_dra.driver.cli import plugin as _plugin  # noqa: F401
from snn_dra.driver.cli import slices as _slices  # noqa: F401
from snn_dra.driver.cli import split as _split  # noqa: F401
from snn_dra.driver.cli.app import app


def main() -> None:
    app()
