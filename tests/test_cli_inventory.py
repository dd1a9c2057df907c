"""`snn-dra inventory` renders the discovered hardware and fails cleanly on a bad config."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.inventory import inventory

WIDE = {"COLUMNS": "240", "NO_COLOR": "1"}


@pytest.fixture
def cli() -> typer.Typer:
    """The inventory command in a multi-command app, as the full CLI has, independent of other commands."""
    group = typer.Typer()
    group.callback()(lambda: None)
    group.command()(inventory)
    return group


def test_command_is_registered_on_the_shared_app() -> None:
    import snn_dra.driver.cli  # noqa: F401  (imports the command modules)

    assert "inventory" in {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}


def rows(output: str) -> list[list[str]]:
    """The table's data rows as lists of stripped cells."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


def test_prints_every_chip_and_totals(cli: typer.Typer, repo_root: Path) -> None:
    config = repo_root / "deploy/node-configs/mixed.yaml"
    result = CliRunner().invoke(cli, ["inventory", "--node-config", str(config), "--node-name", "n1"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    table = rows(out)
    assert len(table) == 13  # one line per chip: nothing wrapped
    by_model: dict[str, list[list[str]]] = {}
    for row in table:
        by_model.setdefault(row[2], []).append(row)
    assert {m: len(r) for m, r in by_model.items()} == {"loihi2": 8, "spinnaker2": 4, "akd1000": 1}
    assert {r[9] for r in by_model["loihi2"]} == {"eth enp2s0"}
    assert {r[9] for r in by_model["spinnaker2"]} == {"ip 192.168.240.9"}
    akida = by_model["akd1000"][0]
    assert akida[9] == "/dev/akida0" and akida[10] == "unhealthy"
    assert f"unhealthy {akida[1]}: configured unhealthy (unhealthyChips in the node config)" in out
    assert sum(r[4] == "127/128" for r in table) == 1  # the fused Loihi core
    assert "Totals: 3 boards, 13 chips (1 unhealthy), 1,711/1,712 cores usable" in out


def test_piped_output_is_wide_enough_for_every_column(cli: typer.Typer, repo_root: Path) -> None:
    config = repo_root / "deploy/node-configs/mixed.yaml"
    env = {"COLUMNS": None, "LINES": None, "NO_COLOR": "1"}
    result = CliRunner().invoke(cli, ["inventory", "--node-config", str(config), "--node-name", "n1"], env=env)
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert len(table) == 13 and all(len(r) == 11 for r in table)
    assert all("…" not in cell for r in table for cell in r)
    assert table[0][:4] == ["kapoho-point", table[0][1], "loihi2", "(0,0,0)"]
    assert table[0][6:9] == ["16.0 MiB", "512*", "3 x 4096*"]


@pytest.mark.parametrize("config", ["mixed", "akida-pcie", "spinnaker2-48", "kapoho-point"])
def test_an_80_column_terminal_gets_the_main_columns_whole(repo_root: Path, config: str) -> None:
    from rich.console import Console

    from snn_dra.driver.backends import load_backend, load_node_config
    from snn_dra.driver.cli.inventory import render

    inventory = load_backend(load_node_config(repo_root / f"deploy/node-configs/{config}.yaml"), "n1").discover()
    buffer = io.StringIO()
    render(inventory, Console(file=buffer, width=80, no_color=True))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["chip", "mesh", "cores", "neurons", "access", "health"]
    chip_rows = [
        line.split() for line in lines if line.split()[:1] and line.split()[0] in {c.id for c in inventory.chips}
    ]
    assert len(chip_rows) == len(inventory.chips)  # one whole line per chip: nothing wrapped or cut
    assert all("…" not in line for line in lines)
    for board in inventory.boards:  # each board is a heading: its model, then its ID
        assert any(line.split() == [board.model, board.id] for line in lines)
    assert "widen the terminal for model, memory, router and queues" in buffer.getvalue()


def test_output_is_deterministic_for_a_node_name(cli: typer.Typer, repo_root: Path) -> None:
    args = ["inventory", "--node-config", str(repo_root / "deploy/node-configs/akida-pcie.yaml")]
    a = CliRunner().invoke(cli, [*args, "--node-name", "n1"], env=WIDE).output
    b = CliRunner().invoke(cli, [*args, "--node-name", "n1"], env=WIDE).output
    c = CliRunner().invoke(cli, [*args], env={**WIDE, "NODE_NAME": "n2"}).output
    assert a == b and a != c


def test_bad_config_is_a_short_error_with_exit_code_2(cli: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("boards:\n  - {family: loihi2, model: kp, chips: 8, mesh: [2, 2, 1]}\n")
    result = CliRunner().invoke(cli, ["inventory", "--node-config", str(bad), "--node-name", "n"], env=WIDE)
    assert result.exit_code == 2
    assert str(bad) in result.stderr
    assert "boards[0].mesh: mesh [2, 2, 1] holds 4 chips, but chips is 8" in result.stderr
    assert "Traceback" not in result.output


def test_missing_file_is_a_short_error(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["inventory", "--node-config", str(tmp_path / "nope.yaml")], env=WIDE)
    assert result.exit_code == 2
    assert "file not found" in result.stderr
