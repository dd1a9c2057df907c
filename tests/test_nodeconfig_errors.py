"""Node-config validation reports every problem of a file in one run, each at its path with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snn_dra.driver.backends import NodeConfigError, load_node_config
from snn_dra.driver.cli import app

MANY_PROBLEMS = """\
apiVersion: snn.dra.dev/v1alpha1
kind: NodeConfig
publsh: {levels: [chip]}
publish: {levels: [chip, chip, coreGroup]}
boards:
  - {family: loihi2, model: kp, chips: 8, mesh: [2, 2, 1], fusedCores: {9: [1]}, unhealthyChips: [8, 3]}
  - {family: loihi3, model: kp, chips: 0}
  - {family: akida, model: x, chips: 1, fusedCores: {0: [200]}, ethernetInterface: eth0}
  - {family: akida, chips: 1}
"""


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(NodeConfigError) as info:
        load_node_config(path)
    return info.value.problems


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MANY_PROBLEMS)
    assert [loc for loc, _ in problems] == [
        "boards[0].mesh",
        "boards[0].fusedCores",
        "boards[0].unhealthyChips",
        "boards[1].family",
        "boards[1].chips",
        "boards[2].fusedCores.0",
        "boards[2].ethernetInterface",
        "boards[3].model",
        "publish.levels",
        "publsh",
    ]
    messages = dict(problems)
    assert "make x * y * z equal chips or leave mesh out" in messages["boards[0].mesh"]
    assert messages["boards[0].unhealthyChips"].count("is outside 0..7") == 1
    assert "chip index 8" in messages["boards[0].unhealthyChips"]
    assert messages["boards[3].model"] == "required field is missing; add it"
    assert messages["publish.levels"].startswith("Value error") is False
    assert "lists chip more than once; list each level once" in messages["publish.levels"]
    assert "allowed fields: apiVersion, kind, backend" in messages["publsh"]


def test_cross_field_checks_run_even_when_other_fields_fail(tmp_path: Path) -> None:
    text = "backend: simulated\nsysfsRoot: 5\nboards: []\n"
    problems = dict(_problems(tmp_path, text))
    assert set(problems) == {"boards", "sysfsRoot"}
    assert "needs at least one entry in boards" in problems["boards"] and "backend: sysfs" in problems["boards"]


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n", "---\n"])
def test_an_empty_file_says_it_is_empty(tmp_path: Path, text: str) -> None:
    [(loc, msg)] = _problems(tmp_path, text)
    assert loc == ""
    assert msg.startswith("the file is empty (no YAML document)") and "deploy/node-configs/" in msg


def test_the_cli_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(MANY_PROBLEMS)
    result = CliRunner().invoke(app, ["inventory", "--node-config", str(path), "--node-name", "n"],
                                env={"COLUMNS": "200", "NO_COLOR": "1"})  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == 10, result.stderr
    assert "Traceback" not in result.output
