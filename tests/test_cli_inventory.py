"""`snn-dra inventory` renders the discovered hardware and fails cleanly on a bad config."""

from __future__ import annotations

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


def test_prints_every_chip_and_totals(cli: typer.Typer, repo_root: Path) -> None:
    config = repo_root / "deploy/node-configs/mixed.yaml"
    result = CliRunner().invoke(cli, ["inventory", "--node-config", str(config), "--node-name", "n1"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count("loihi2/loihi2") == 8
    assert out.count("spinnaker2/spinnaker2") == 4
    assert "akida/akd1000" in out and "/dev/akida0" in out and "unhealthy" in out
    assert "127/128" in out  # the fused Loihi core
    assert "ipv4://192.168.240.9" in out
    assert "Totals: 3 boards, 13 chips (1 unhealthy), 1,711/1,712 cores usable" in out


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
    assert "boards[0]: mesh [2, 2, 1] holds 4 chips, but chips is 8" in result.stderr
    assert "Traceback" not in result.output


def test_missing_file_is_a_short_error(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["inventory", "--node-config", str(tmp_path / "nope.yaml")], env=WIDE)
    assert result.exit_code == 2
    assert "file not found" in result.stderr
