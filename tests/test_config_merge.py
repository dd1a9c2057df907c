"""Config merging in the Preparer: FromClass before FromClaim, later wins, other drivers ignored, request scoping."""

from __future__ import annotations

from pathlib import Path

from prepare_helpers import (
    FakeClaimSource,
    claim,
    env_of,
    make_preparer,
    opaque,
    ref,
    result,
    snn,
)


def _env(tmp_path: Path, c: dict, suffix: str) -> dict[str, str]:
    import json

    uid = c["metadata"]["uid"]
    out = make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    assert out[uid].error == "", out[uid].error
    spec = json.loads((tmp_path / "cdi" / f"snn.dra.dev-snn_{uid}.json").read_text())
    return env_of(spec, f"{uid}-{suffix}")


def test_class_config_applies_before_claim_config_even_if_listed_later(tmp_path: Path) -> None:
    c = claim(
        results=[result("n1-c0")],
        config=[
            opaque(snn(neuronModel="Izhikevich"), source="FromClaim"),
            opaque(snn(neuronModel="ALIF", timestepMicroseconds=50), source="FromClass"),
        ],
    )
    env = _env(tmp_path, c, "n1-c0")
    assert env["SNN_DRA_N1_C0_NEURON_MODEL"] == "Izhikevich"  # claim beats class
    assert env["SNN_DRA_N1_C0_TIMESTEP_US"] == "50"  # class default survives where the claim is silent


def test_later_claim_config_wins(tmp_path: Path) -> None:
    c = claim(
        results=[result("n1-c0")],
        config=[opaque(snn(spikeEncoding="delta")), opaque(snn(spikeEncoding="graded"))],
    )
    assert _env(tmp_path, c, "n1-c0")["SNN_DRA_N1_C0_SPIKE_ENCODING"] == "graded"


def test_configs_of_other_drivers_are_ignored_even_if_not_ours(tmp_path: Path) -> None:
    c = claim(
        results=[result("n1-c0")],
        config=[
            opaque({"anything": ["goes", 1]}, driver="gpu.example.com"),
            opaque(snn(neuronModel="SigmaDelta")),
            opaque("not even an object", driver="other.example.com"),
        ],
    )
    assert _env(tmp_path, c, "n1-c0")["SNN_DRA_N1_C0_NEURON_MODEL"] == "SigmaDelta"


def test_request_scoped_configs_apply_only_to_their_requests(tmp_path: Path) -> None:
    c = claim(
        results=[result("n1-c0-group-0", "enc/small"), result("n1-c0-group-1", "dec")],
        config=[
            opaque(snn(splitStage={"index": 0, "name": "encoder"}), requests=["enc"]),
            opaque(snn(splitStage={"index": 1, "name": "decoder"}), requests=["dec"]),
            opaque(snn(learning={"enabled": True, "rule": "STDP"})),  # unscoped: every device
            opaque(snn(timestepMicroseconds=7), requests=["enc/small"]),  # subrequest name matches too
        ],
    )
    enc = _env(tmp_path, c, "n1-c0-group-0")
    uid = c["metadata"]["uid"]
    import json

    spec = json.loads((tmp_path / "cdi" / f"snn.dra.dev-snn_{uid}.json").read_text())
    dec = env_of(spec, f"{uid}-n1-c0-group-1")
    assert enc["SNN_DRA_N1_C0_GROUP_0_SPLIT_STAGE_NAME"] == "encoder"
    assert enc["SNN_DRA_N1_C0_GROUP_0_TIMESTEP_US"] == "7"
    assert dec["SNN_DRA_N1_C0_GROUP_1_SPLIT_STAGE_NAME"] == "decoder"
    assert dec["SNN_DRA_N1_C0_GROUP_1_TIMESTEP_US"] == "1000"
    assert enc["SNN_DRA_N1_C0_GROUP_0_LEARNING_RULE"] == dec["SNN_DRA_N1_C0_GROUP_1_LEARNING_RULE"] == "STDP"


def test_invalid_config_scoped_elsewhere_still_fails_the_claim(tmp_path: Path) -> None:
    c = claim(results=[result("n1-c0")], config=[opaque(snn(sharing="all"), requests=["other"])])
    out = make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    err = out[c["metadata"]["uid"]].error
    assert "default/c1" in err and "config[0].opaque.parameters" in err and "sharing" in err


def test_bad_source_and_requests_are_named(tmp_path: Path) -> None:
    bad_source = opaque(snn())
    bad_source["source"] = "FromNowhere"
    bad_requests = opaque(snn(), requests=["x"])
    bad_requests["requests"] = "x"
    c = claim(results=[result("n1-c0")], config=[bad_source, bad_requests])
    err = make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])[c["metadata"]["uid"]].error
    assert "config[0].source" in err and "FromClass, FromClaim" in err
    assert "config[1].requests" in err
