"""The root CLI: lazy commands that match their modules, a --help that imports nothing heavy, --version."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.metadata import version

import typer
from typer.testing import CliRunner

from snn_dra.driver.cli import app
from snn_dra.driver.cli.lazy import COMMANDS

HEAVY = ("kubernetes", "cel_expr_python", "kubernetes_validate", "jsonschema", "grpc", "numpy",
         "snn_dra.driver.embedded", "snn_dra.driver.cli.plugin", "snn_dra.driver.cli.split")  # fmt: skip

PROBE = """
import json, sys
from snn_dra.driver.cli import main
sys.argv = ["snn-dra", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
heavy = {heavy!r}
print(json.dumps({{"code": code, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy)}}))
"""


def _probe(*args: str) -> dict[str, object]:
    script = PROBE.format(heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_every_listed_command_is_what_its_module_registers() -> None:
    for entry in COMMANDS.values():
        importlib.import_module(entry.module)
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    registered = {name for name in group.commands}
    assert registered == set(COMMANDS), "driver/cli/lazy.py COMMANDS must list every registered command"
    for name, entry in COMMANDS.items():
        real = group.commands[name]
        assert (real.help or "").strip().splitlines()[0] == entry.help, name


def test_help_lists_every_command_without_importing_heavy_modules() -> None:
    result = _probe("--help")
    assert result["code"] == 0
    assert result["loaded"] == [], f"--help imported {result['loaded']}; import them inside the command instead"


def test_version_imports_nothing_heavy_and_names_the_package_version() -> None:
    assert _probe("--version") == {"code": 0, "loaded": []}
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"snn-dra {version('snn-dra')} (driver snn.dra.dev, resource.k8s.io/v1)\n"


def test_root_help_shows_each_commands_own_help_line() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for name, entry in COMMANDS.items():
        assert any(line.strip(" │").startswith(name) and entry.help in line for line in lines), name


def test_a_command_resolves_to_its_real_implementation() -> None:
    result = CliRunner().invoke(app, ["cluster", "up", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "--node-config" in result.output
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2 and "No such command 'no-such-command'" in result.output
