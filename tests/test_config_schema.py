"""Opaque config snn.dra.dev/v1alpha1: strict types, closed enums, errors naming field and allowed values."""

from __future__ import annotations

import pytest
from prepare_helpers import snn

from snn_dra.api.config import (
    ConfigError,
    EffectiveConfig,
    LearningRule,
    NeuronModel,
    SharingMode,
    SpikeEncoding,
    merge_configs,
    parse_config,
)


def test_full_config_parses() -> None:
    cfg = parse_config(
        snn(
            neuronModel="CUBA-LIF",
            timestepMicroseconds=250,
            learning={"enabled": True, "rule": "R-STDP"},
            spikeEncoding="delta",
            sharing="timeSliced",
            splitStage={"index": 2, "name": "decoder"},
        )
    )
    assert cfg.neuron_model is NeuronModel.CUBA_LIF
    assert cfg.timestep_us == 250
    assert cfg.learning is not None and cfg.learning.rule is LearningRule.REWARD_STDP
    assert cfg.spike_encoding is SpikeEncoding.DELTA
    assert cfg.sharing is SharingMode.TIME_SLICED
    assert cfg.split_stage is not None and cfg.split_stage.name == "decoder"


def test_minimal_config_defaults() -> None:
    eff = merge_configs([parse_config(snn())])
    assert eff == EffectiveConfig()
    assert eff.env() == [
        ("NEURON_MODEL", "LIF"),
        ("TIMESTEP_US", "1000"),
        ("LEARNING", "false"),
        ("SPIKE_ENCODING", "rate"),
        ("SHARING", "exclusive"),
    ]


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        (snn(neuronModel="HodgkinHuxley"), ["neuronModel", "'LIF'", "'Izhikevich'"]),
        (snn(spikeEncoding="morse"), ["spikeEncoding", "'rate'", "'graded'"]),
        (snn(sharing="everyone"), ["sharing", "'exclusive'", "'timeSliced'"]),
        (snn(timestepMicroseconds=0), ["timestepMicroseconds", "greater than or equal to 1"]),
        (snn(timestepMicroseconds=1_000_001), ["timestepMicroseconds", "less than or equal to 1000000"]),
        (snn(timestepMicroseconds="1000"), ["timestepMicroseconds", "integer"]),
        (snn(timestepMicroseconds=1000.0), ["timestepMicroseconds", "integer"]),
        (snn(learning={"enabled": "true"}), ["learning.enabled", "boolean"]),
        (snn(learning={"enabled": True}), ["learning", "rule is required", "STDP, R-STDP, ThreeFactor"]),
        (snn(learning={"enabled": False, "rule": "STDP"}), ["learning", "enabled is false"]),
        (snn(splitStage={"index": 256}), ["splitStage.index", "255"]),
        (snn(splitStage={"index": 1, "name": "Bad_Name"}), ["splitStage.name", "pattern"]),
        (snn(neuronModell="LIF"), ["neuronModell", "unknown field", "neuronModel"]),
        (snn(learning={"enabled": False, "rate": 1}), ["learning.rate", "unknown field", "enabled, rule"]),
        ({"apiVersion": "snn.dra.dev/v1", "kind": "SNNConfig"}, ["apiVersion", "snn.dra.dev/v1alpha1"]),
        ({"apiVersion": "snn.dra.dev/v1alpha1", "kind": "GpuConfig"}, ["kind", "SNNConfig"]),
        ({"kind": "SNNConfig"}, ["apiVersion", "required"]),
        ([1, 2], ["JSON object", "snn.dra.dev/v1alpha1"]),
        ("text", ["JSON object"]),
    ],
)
def test_bad_config_names_field_and_allowed(params: object, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(params)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def test_every_problem_is_reported() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(snn(neuronModel="x", spikeEncoding="y", extra=1))
    text = str(err.value)
    assert "neuronModel" in text and "spikeEncoding" in text and "extra" in text


def test_merge_later_field_wins_and_unset_fields_keep_earlier() -> None:
    first = parse_config(snn(neuronModel="Izhikevich", timestepMicroseconds=10))
    second = parse_config(snn(timestepMicroseconds=20))
    eff = merge_configs([first, second])
    assert eff.neuron_model is NeuronModel.IZHIKEVICH
    assert eff.timestep_us == 20
    assert merge_configs([second, first]).timestep_us == 10


def test_env_includes_learning_rule_and_split_stage() -> None:
    eff = merge_configs(
        [parse_config(snn(learning={"enabled": True, "rule": "STDP"}, splitStage={"index": 3, "name": "s3"}))]
    )
    env = dict(eff.env())
    assert env["LEARNING"] == "true" and env["LEARNING_RULE"] == "STDP"
    assert env["SPLIT_STAGE_INDEX"] == "3" and env["SPLIT_STAGE_NAME"] == "s3"
