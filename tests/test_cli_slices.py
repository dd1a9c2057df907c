"""`snn-dra slices`: kubectl-shaped output, byte-for-byte determinism, defaults and errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from snn_dra.driver.cli import app

REPO = Path(__file__).resolve().parent.parent
KAPOHO = REPO / "deploy" / "node-configs" / "kapoho-point.yaml"
AKIDA = REPO / "deploy" / "node-configs" / "akida-pcie.yaml"
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["slices", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_json_is_a_v1_list_of_resourceslices() -> None:
    code, out, _ = run("--node-config", str(AKIDA), "--node-name", "n1", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List"
    assert doc["items"] and all(i["kind"] == "ResourceSlice" for i in doc["items"])
    assert {i["spec"]["nodeName"] for i in doc["items"]} == {"n1"}
    assert doc["items"][0]["metadata"]["generateName"] == "00000-snn.dra.dev-n1-"


def test_output_is_byte_identical_for_the_same_node() -> None:
    first = run("--node-config", str(KAPOHO), "--node-name", "n1", "-o", "json")[1]
    second = run("--node-config", str(KAPOHO), "--node-name", "n1", "-o", "json")[1]
    assert first == second
    assert run("--node-config", str(KAPOHO), "--node-name", "n2", "-o", "json")[1] != first
    y1 = run("--node-config", str(AKIDA), "--node-name", "n1", "-o", "yaml")[1]
    assert y1 == run("--node-config", str(AKIDA), "--node-name", "n1", "-o", "yaml")[1]
    as_json = run("--node-config", str(AKIDA), "--node-name", "n1", "-o", "json")[1]
    assert yaml.load(y1, Loader=yaml.CSafeLoader) == json.loads(as_json)


def test_yaml_is_the_default_and_node_name_comes_from_env() -> None:
    code, out, _ = run("--node-config", str(AKIDA), env={"NODE_NAME": "from-env"})
    assert code == 0
    doc = yaml.load(out, Loader=yaml.CSafeLoader)
    assert doc["kind"] == "List"
    assert {i["spec"]["pool"]["name"] for i in doc["items"]} == {"from-env"}


def test_table_mirrors_kubectl_columns_with_device_counts() -> None:
    code, out, _ = run("--node-config", str(KAPOHO), "--node-name", "n1", "-o", "table")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:5] == ["NAME", "NODE", "DRIVER", "POOL", "AGE"]
    assert {"CORES", "GROUPS", "CHIPS", "ROUTERS", "QUEUES"} <= set(header)
    assert "00000-snn.dra.dev-n1-" in out and "<unpublished>" in out
    assert "1019 cores, 64 groups, 8 chips, 8 routers, 24 queues" in out  # 1,024 NCs minus 5 fused


def test_1_34_profile_refuses_a_layout_it_cannot_express() -> None:
    code, _, err = run("--node-config", str(KAPOHO), "--node-name", "n1", "--profile", "1.34")
    assert code == 2
    assert "Kubernetes 1.34" in err and "128" in err


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: snn.dra.dev/v1alpha1\nkind: NodeConfig\nboards: []\n")
    code, out, err = run("--node-config", str(bad), "--node-name", "n1")
    assert code == 2 and out == ""
    assert "error:" in err and str(bad) in err
    code, _, err = run("--node-config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "not found" in err


def test_too_many_tiles_is_reported_with_the_limit(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny-groups.yaml"
    cfg.write_text(
        "apiVersion: snn.dra.dev/v1alpha1\nkind: NodeConfig\n"
        "publish:\n  levels: [chip, coreGroup]\n  coreGroup: {width: 1, height: 1}\n"
        "boards:\n  - {family: loihi2, model: oheo-gulch, chips: 1}\n"
    )
    code, _, err = run("--node-config", str(cfg), "--node-name", "n1")
    assert code == 2
    assert "128 core groups" in err and "counter sets" in err


def test_table_fits_an_80_column_terminal() -> None:
    import io

    from rich.console import Console

    from snn_dra.driver.backends import load_backend, load_node_config
    from snn_dra.driver.cli.slices import render_table
    from snn_dra.driver.model import build_model
    from snn_dra.driver.slices import build_slices

    config = load_node_config(KAPOHO)
    built = build_slices(build_model(load_backend(config, "snn-node-0").discover(), config.publish), "snn-node-0")
    buffer = io.StringIO()
    render_table(built, Console(file=buffer, width=80, no_color=True))
    out = buffer.getvalue()
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "names are INDEX-snn.dra.dev-snn-node-0-<suffix>" in " ".join(out.split())
    header = next(i for i, line in enumerate(lines) if line.startswith("INDEX"))
    assert lines[header].split() == ["INDEX", "CORES", "GROUPS", "CHIPS", "ROUTERS", "QUEUES", "COUNTER", "SETS"]
    indices = [line.split()[0] for line in lines[header + 1 : header + 1 + len(built)]]
    assert indices == [s["metadata"]["generateName"].split("-", 1)[0] for s in built]
    assert "1019 cores, 64 groups, 8 chips, 8 routers, 24 queues" in out
