"""`snn-dra split plan`: model validation, stage cutting and sizing, emitted manifests (offline)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from snn_dra.api.split import SplitModel
from snn_dra.driver.backends.families import spec_for
from snn_dra.driver.cli import app
from snn_dra.driver.split.loading import SplitModelError, load_model, parse_model
from snn_dra.driver.split.manifests import render
from snn_dra.driver.split.planner import Level, PlanError, device_units, plan_model
from snn_dra.driver.validation import validate_object

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "deploy" / "examples" / "split").glob("*.yaml"))
runner = CliRunner()


def model(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "family": "loihi2",
        "layers": [
            {"name": "a", "neurons": 8192, "synapses": 0, "spikeRateKEPS": 500},
            {"name": "b", "neurons": 8192, "synapses": 100_000, "spikeRateKEPS": 10},
            {"name": "c", "neurons": 8192, "synapses": 100_000, "spikeRateKEPS": 900},
            {"name": "d", "neurons": 100, "synapses": 1000},
        ],
        "stages": 2,
    }
    base.update(spec)
    return {"apiVersion": "snn.dra.dev/v1alpha1", "kind": "SplitModel", "metadata": {"name": "m"}, "spec": base}


def problems(data: Any) -> dict[str, str]:
    with pytest.raises(SplitModelError) as info:
        parse_model(data, "m.yaml")
    assert "invalid split model m.yaml" in str(info.value)
    return dict(info.value.problems)


# --- the model file ---------------------------------------------------------------------------------


def test_examples_cover_one_chip_one_node_and_several_nodes() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"keyword-spotter", "gesture-net", "cortical-column", "split-learning", "akida-edge"} <= names
    plans = {p.stem: plan_model(load_model(p)) for p in EXAMPLES}
    assert plans["keyword-spotter"].groups[0].levels == (Level.CHIP,)
    gesture = plans["gesture-net"]
    assert sum(s.allocated_cores for s in gesture.stages) > gesture.chip.nominal_cores  # does not fit one chip
    assert len(gesture.groups) == 1 and Level.CHIP not in gesture.groups[0].levels
    column = plans["cortical-column"]
    assert len(column.groups) >= 2  # does not fit one node
    assert sum(s.count for s in column.stages if s.unit.type == "chip") > column.chips_per_node
    assert [g.name for g in plans["split-learning"].groups] == ["sl-edge", "sl-server"]


def test_a_model_too_big_for_its_scope_is_refused_with_the_fix() -> None:
    gesture = yaml.safe_load((REPO / "deploy/examples/split/gesture-net.yaml").read_text())
    gesture["spec"]["placement"] = {"scope": "chip"}
    with pytest.raises(PlanError, match=r"more than one loihi2 chip .* use spec.placement.scope: node"):
        plan_model(parse_model(gesture))
    column = yaml.safe_load((REPO / "deploy/examples/split/cortical-column.yaml").read_text())
    column["spec"]["placement"] = {"scope": "node"}
    with pytest.raises(
        PlanError, match=r"needs at least 67 spinnaker2 chips, but a node has 48 .*; use spec.placement.scope: nodes"
    ):
        plan_model(parse_model(column))


def test_field_errors_name_the_field() -> None:
    bad = model()
    bad["spec"]["layers"][1]["neurons"] = 0
    bad["spec"]["layers"][2]["spikeRate"] = 3
    bad["spec"]["placement"] = {"scope": "rack"}
    found = problems(bad)
    assert "greater than or equal to 1" in found["spec.layers[1].neurons"]
    assert "unknown field" in found["spec.layers[2].spikeRate"]
    assert "'chip', 'node' or 'nodes'" in found["spec.placement.scope"]


def test_strict_types_and_cross_field_rules() -> None:
    assert "valid integer" in problems(model(stages="2"))["spec.stages"]
    assert "exactly one of stages" in problems(model(stageLimits={"cores": 4}))["spec"]
    assert "only 4 layers" in problems(model(stages=5))["spec"]
    dup = model()
    dup["spec"]["layers"][1]["name"] = "a"
    assert "repeated: a" in problems(dup)["spec"]
    assert "two groups" in problems(model(workload="splitLearning"))["spec"]
    assert "required field is missing" in problems(model(family=None) | {"spec": {"layers": []}})["spec.family"]
    assert problems([1, 2]) == {"": "expected a mapping of fields, got list"}


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(SplitModelError, match="file not found"):
        load_model(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed\n")
    with pytest.raises(SplitModelError, match=r"not valid YAML at line 2"):
        load_model(bad)


# --- cutting and sizing -----------------------------------------------------------------------------


def test_cut_goes_where_the_fewest_spikes_flow() -> None:
    # b -> c carries 10 KEPS, a -> b 500, c -> d 900: two equal-sized stages can cut after a or after b;
    # the planner takes the cheap cut.
    plan = plan_model(parse_model(model()))
    assert [s.layers for s in plan.stages] == [("a", "b"), ("c", "d")]
    assert plan.stages[0].out_rate_keps == 10 and plan.stages[1].out_rate_keps == 0


def test_stage_limits_give_the_fewest_stages_within_the_limits() -> None:
    plan = plan_model(parse_model(model(stages=None, stageLimits={"neurons": 16384})))
    assert [s.layers for s in plan.stages] == [("a", "b"), ("c", "d")]
    assert all(s.demand.neurons <= 16384 for s in plan.stages)
    single = plan_model(parse_model(model(stages=None, stageLimits={"neurons": 8192})))
    assert len(single.stages) == 4  # d alone would fit with c, but c already fills the limit


def test_a_layer_larger_than_every_allowed_device_is_refused() -> None:
    too_big = model(deviceTypes=["neuronCore", "coreGroup"])
    too_big["spec"]["layers"][0]["neurons"] = 8192 * 129
    with pytest.raises(PlanError, match=r"layer a \(spec.layers\[0\]\) needs 1056768 neurons.*fits no allowed"):
        plan_model(parse_model(too_big))
    limited = model(stages=None, stageLimits={"cores": 1})
    limited["spec"]["layers"][1]["synapses"] = 10**6
    with pytest.raises(PlanError, match=r"layer b .* exceeds spec.stageLimits"):
        plan_model(parse_model(limited))


def test_claim_device_limit_is_enforced() -> None:
    layers = [{"name": f"l{i}", "neurons": 8192 * 16 * 4} for i in range(9)]  # 9 stages of 4 core groups
    with pytest.raises(PlanError, match=r"needs 36 devices in one claim; a claim holds at most 32"):
        plan_model(parse_model(model(layers=layers, stages=9, deviceTypes=["coreGroup"])))


layer = st.fixed_dictionaries(
    {
        "neurons": st.integers(1, 3_000_000),
        "synapses": st.integers(0, 40_000_000),
        "spikeRateKEPS": st.floats(0, 10_000, allow_nan=False),
    }
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(["loihi2", "spinnaker2", "akida"]),
    layers=st.lists(layer, min_size=1, max_size=8),
    stages=st.integers(1, 8),
    types=st.sampled_from([["neuronCore", "coreGroup", "chip"], ["coreGroup", "chip"], ["chip"]]),
    bps=st.integers(1, 4),
)
def test_planner_never_emits_a_stage_that_exceeds_a_device(
    family: str, layers: list[dict[str, Any]], stages: int, types: list[str], bps: int
) -> None:
    named = [{"name": f"l{i}", **layer} for i, layer in enumerate(layers)]
    data = model(family=family, layers=named, stages=min(stages, len(named)), deviceTypes=types,
                 bytesPerSynapse=bps, placement={"scope": "nodes", "chipsPerNode": 4096})  # fmt: skip
    try:
        plan = plan_model(parse_model(data))
    except PlanError:
        return  # refusing is allowed; emitting an oversized stage is not
    chip = spec_for(plan.chip.family)
    units = device_units(chip)
    covered = [name for s in plan.stages for name in s.layers]
    assert covered == [layer["name"] for layer in named]
    for s in plan.stages:
        unit = units[s.unit.type]
        assert str(s.unit.type) in types
        assert s.per_device.cores <= unit.cores
        assert s.per_device.neurons <= unit.neurons
        assert s.per_device.synapse_memory <= unit.synapse_memory
        assert s.count * s.per_device.neurons >= s.demand.neurons
        assert s.count * s.per_device.synapse_memory >= s.demand.synapse_memory
        assert s.demand.cores == max(1, math.ceil(s.demand.neurons / chip.neurons_per_core),
                                     math.ceil(s.demand.synapse_memory / chip.synapse_memory_per_core))  # fmt: skip
    for g in plan.groups:
        assert sum(s.count for s in g.stages) <= 32


# --- manifests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_emitted_manifests_pass_upstream_validation(path: Path) -> None:
    plan = plan_model(load_model(path))
    docs = render(plan)
    for doc in docs:
        if doc["apiVersion"].startswith("resource.k8s.io"):
            assert validate_object(doc, None, "1.37") == [], doc["metadata"]["name"]
            assert validate_object(doc, None, "1.34") == [], doc["metadata"]["name"]
    templates = [d for d in docs if d["kind"] == "ResourceClaimTemplate"]
    pods = [d for d in docs if d["kind"] == "Pod"]
    assert len(templates) == len(pods) == len(plan.groups)
    for template, pod, group in zip(templates, pods, plan.groups, strict=True):
        requests = template["spec"]["spec"]["devices"]["requests"]
        assert [r["name"] for r in requests] == [s.name for s in group.stages]
        wired = {c["request"] for container in pod["spec"]["containers"] for c in container["resources"]["claims"]}
        assert wired == {s.name for s in group.stages}
        assert pod["spec"]["resourceClaims"] == [
            {"name": "stages", "resourceClaimTemplateName": template["metadata"]["name"]}
        ]
        for r, stage in zip(requests, group.stages, strict=True):
            subs = r.get("firstAvailable") or [r["exactly"]]
            assert [s.get("name") for s in subs if "name" in s] == [str(lvl) for lvl in group.levels]
            assert all(s["count"] == stage.count for s in subs)


def test_constraints_go_from_tight_to_loose() -> None:
    plan = plan_model(load_model(REPO / "deploy/examples/split/split-learning.yaml"))
    server = [d for d in render(plan) if d["kind"] == "ResourceClaimTemplate"][1]
    constraints = server["spec"]["spec"]["devices"]["constraints"]
    by_key = {c["matchAttribute"]: c["requests"] for c in constraints}
    assert by_key["snn.dra.dev/chipID"] == ["stage1/chip", "stage2/chip"]
    assert by_key["snn.dra.dev/chipRegion"] == ["stage1/chip", "stage1/region", "stage2/chip", "stage2/region"]
    assert "stage2/board" in by_key["snn.dra.dev/boardID"] and "stage2/node" not in by_key["snn.dra.dev/boardID"]


def test_cli_prints_manifests_on_stdout_and_the_table_on_stderr() -> None:
    result = runner.invoke(app, ["split", "plan", str(REPO / "deploy/examples/split/gesture-net.yaml")])
    assert result.exit_code == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["ResourceClaimTemplate", "Pod"]
    assert "&id" not in result.stdout
    for text in ("STAGE", "conv1, conv2", "1 x chip", "3 x coreGroup", "4000 KEPS", "region > board > node"):
        assert text in result.stderr
    as_json = runner.invoke(app, ["split", "plan", str(REPO / "deploy/examples/split/kws.yaml"), "-o", "json"])
    assert as_json.exit_code == 2 and "file not found" in as_json.stderr


def test_cli_reports_model_errors(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text(yaml.safe_dump(model(stages=0)))
    result = runner.invoke(app, ["split", "plan", str(bad)])
    assert result.exit_code == 2
    assert "spec.stages: Input should be greater than or equal to 1" in result.stderr
    assert result.stdout == ""


def test_schema_round_trips_the_examples() -> None:
    for path in EXAMPLES:
        loaded = load_model(path)
        assert SplitModel.model_validate_json(loaded.model_dump_json(by_alias=True)) == loaded


def test_names_fit_kubernetes_names_and_label_values() -> None:
    assert "String should match pattern" in problems(model() | {"metadata": {"name": "9lives"}})["metadata.name"]
    assert "at most 32 characters" in problems(model() | {"metadata": {"name": "m" * 33}})["metadata.name"]
    groups = {"scope": "nodes", "groups": [{"name": "e" * 25, "stages": 1}, {"name": "s", "stages": 1}]}
    assert "at most 24 characters" in problems(model(placement=groups))["spec.placement.groups[0].name"]
    longest = model(
        placement={"scope": "nodes", "groups": [{"name": "e" * 24, "stages": 1}, {"name": "s", "stages": 1}]}
    )
    longest["metadata"]["name"] = "m" * 32
    for doc in render(plan_model(parse_model(longest))):
        if doc["apiVersion"].startswith("resource.k8s.io"):
            assert validate_object(doc, None, "1.37") == []
        assert all(len(v) <= 63 for v in doc["metadata"]["labels"].values())
