"""Bad node configs are rejected with the file, the field path and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from snn_dra.driver.backends import NodeConfigError, load_node_config

GOOD_BOARD: dict[str, Any] = {"family": "loihi2", "model": "kapoho-point", "chips": 8}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def rejected(tmp_path: Path, data: Any) -> NodeConfigError:
    path = write(tmp_path, data)
    with pytest.raises(NodeConfigError) as info:
        load_node_config(path)
    assert str(path) in str(info.value)
    return info.value


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_node_config(write(tmp_path, {"boards": [GOOD_BOARD]}))
    assert config.boards[0].chips == 8


def test_unknown_field_names_the_path_and_the_allowed_fields(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "fusedCore": {1: [2]}}]})
    (loc, msg), *_ = err.problems
    assert loc == "boards[0].fusedCore"
    assert "unknown field" in msg and "fusedCores" in msg and "unhealthyChips" in msg


def test_unknown_top_level_field(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [GOOD_BOARD], "publsh": {}})
    assert err.problems[0][0] == "publsh"
    assert "allowed fields: apiVersion, kind, backend" in err.problems[0][1]


def test_mesh_product_mismatch(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "mesh": [2, 2, 1]}]})
    [(loc, msg)] = err.problems
    assert (loc, msg.split(";")[0]) == ("boards[0].mesh", "mesh [2, 2, 1] holds 4 chips, but chips is 8")


def test_chip_index_out_of_range(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "unhealthyChips": [8]}]})
    [(loc, msg)] = err.problems
    assert (loc, msg.split(";")[0]) == ("boards[0].unhealthyChips", "chip index 8 is outside 0..7 (chips: 8)")
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "fusedCores": {9: [1]}}]})
    [(loc, msg)] = err.problems
    assert (loc, msg.split(";")[0]) == ("boards[0].fusedCores", "chip index 9 is outside 0..7 (chips: 8)")


def test_core_index_out_of_range_for_the_family(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{"family": "akida", "model": "c", "chips": 1, "fusedCores": {0: [80]}}]})
    assert err.problems == [("boards[0].fusedCores.0", "core 80 is outside 0..79 of a akd1000 chip")]


def test_fusing_every_core_is_refused(tmp_path: Path) -> None:
    board = {"family": "akida", "model": "c", "chipModel": "akd1500", "chips": 1, "fusedCores": {0: list(range(32))}}
    err = rejected(tmp_path, {"boards": [board]})
    assert "fuses every core" in err.problems[0][1]


def test_unknown_family(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "family": "truenorth"}]})
    assert err.problems == [("boards[0].family", "Input should be 'loihi2', 'spinnaker2' or 'akida'")]


def test_chip_model_of_another_family(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "chipModel": "akd1000"}]})
    assert err.problems == [("boards[0].chipModel", "chip model 'akd1000' is not a loihi2 chip; allowed: loihi2")]


def test_address_on_a_pcie_board(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{"family": "akida", "model": "c", "chips": 1, "address": "10.0.0.1"}]})
    assert err.problems[0][0] == "boards[0].address"


def test_simulated_backend_needs_boards(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"backend": "simulated"})
    assert "needs at least one entry in boards" in err.problems[0][1]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    err = rejected(tmp_path, {"boards": [{**GOOD_BOARD, "chips": 0}, {**GOOD_BOARD, "family": "x"}]})
    assert [loc for loc, _ in err.problems] == ["boards[0].chips", "boards[1].family"]


def test_not_yaml_and_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    err = rejected(tmp_path, "boards: [\n")
    assert "not valid YAML at line" in err.problems[0][1]
    err = rejected(tmp_path, "- just\n- a list\n")
    assert "expected a mapping" in err.problems[0][1]
    with pytest.raises(NodeConfigError, match="file not found"):
        load_node_config(tmp_path / "absent.yaml")
