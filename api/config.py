"""Opaque claim configuration ``snn.dra.dev/v1alpha1``, kind ``SNNConfig``.

A workload sets these in ``ResourceClaim.spec.devices.config[].opaque.parameters`` (or an admin in a
DeviceClass). The API server stores them unchecked, so this schema is the only gate before values turn
into container environment: strict types (no "1" for 1, no 1.0 for 1), unknown fields rejected, every
enumeration closed. Every field is optional so a class can set defaults and a claim override one field;
:func:`merge_configs` does that merge and :class:`EffectiveConfig` is the fully defaulted result.

Example::

    apiVersion: snn.dra.dev/v1alpha1
    kind: SNNConfig
    neuronModel: CUBA-LIF
    timestepMicroseconds: 1000
    learning: {enabled: true, rule: STDP}
    spikeEncoding: rate
    sharing: exclusive
    splitStage: {index: 0, name: encoder}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from snn_dra.api.attributes import CONFIG_API_VERSION

CONFIG_KIND: Final = "SNNConfig"

TIMESTEP_MIN_US: Final = 1
TIMESTEP_MAX_US: Final = 1_000_000
SPLIT_STAGE_MAX: Final = 255


class NeuronModel(StrEnum):
    """Neuron dynamics the chip's microcode/firmware is asked to run."""

    LIF = "LIF"
    CUBA_LIF = "CUBA-LIF"
    ADAPTIVE_LIF = "ALIF"
    IZHIKEVICH = "Izhikevich"
    SIGMA_DELTA = "SigmaDelta"
    RESONATE_AND_FIRE = "ResonateAndFire"


class SpikeEncoding(StrEnum):
    """How input values become spikes."""

    RATE = "rate"
    TEMPORAL = "temporal"
    DELTA = "delta"
    GRADED = "graded"
    POPULATION = "population"


class LearningRule(StrEnum):
    """On-chip plasticity rules."""

    STDP = "STDP"
    REWARD_STDP = "R-STDP"
    THREE_FACTOR = "ThreeFactor"


class SharingMode(StrEnum):
    """How the claim's containers use a device.

    ``exclusive``: one user. ``timeSliced``: the claim's containers take turns per timestep.
    ``shared``: concurrent users with their own share of capacity; only valid on shared devices
    (spikeRouter, eventQueue), which the Preparer checks against the allocated device.
    """

    EXCLUSIVE = "exclusive"
    SHARED = "shared"
    TIME_SLICED = "timeSliced"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Learning(_Strict):
    enabled: bool
    rule: LearningRule | None = None

    @model_validator(mode="after")
    def _rule_matches_enabled(self) -> Learning:
        if self.enabled and self.rule is None:
            raise ValueError(f"learning.rule is required when learning is enabled; allowed: {_values(LearningRule)}")
        if not self.enabled and self.rule is not None:
            raise ValueError("learning.rule is set but learning.enabled is false; drop the rule or enable learning")
        return self


class SplitStage(_Strict):
    """Which stage of a split model runs on the claim's devices."""

    index: Annotated[int, Field(ge=0, le=SPLIT_STAGE_MAX)]
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] | None = None


class SNNConfig(_Strict):
    """One opaque config object as written in a claim or a class."""

    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["SNNConfig"]
    neuron_model: NeuronModel | None = Field(default=None, alias="neuronModel")
    timestep_us: Annotated[int, Field(ge=TIMESTEP_MIN_US, le=TIMESTEP_MAX_US)] | None = Field(
        default=None, alias="timestepMicroseconds"
    )
    learning: Learning | None = None
    spike_encoding: SpikeEncoding | None = Field(default=None, alias="spikeEncoding")
    sharing: SharingMode | None = None
    split_stage: SplitStage | None = Field(default=None, alias="splitStage")


_MERGED_FIELDS: Final = ("neuron_model", "timestep_us", "learning", "spike_encoding", "sharing", "split_stage")


class EffectiveConfig(_Strict):
    """The merged, defaulted configuration of one device; what reaches the container."""

    neuron_model: NeuronModel = Field(default=NeuronModel.LIF, alias="neuronModel")
    timestep_us: int = Field(default=1000, alias="timestepMicroseconds")
    learning: Learning = Field(default_factory=lambda: Learning(enabled=False))
    spike_encoding: SpikeEncoding = Field(default=SpikeEncoding.RATE, alias="spikeEncoding")
    sharing: SharingMode = SharingMode.EXCLUSIVE
    split_stage: SplitStage | None = Field(default=None, alias="splitStage")

    def env(self) -> list[tuple[str, str]]:
        """Environment entries (suffix, value) in a fixed order; values come only from validated fields."""
        out = [
            ("NEURON_MODEL", self.neuron_model.value),
            ("TIMESTEP_US", str(self.timestep_us)),
            ("LEARNING", "true" if self.learning.enabled else "false"),
        ]
        if self.learning.rule is not None:
            out.append(("LEARNING_RULE", self.learning.rule.value))
        out += [("SPIKE_ENCODING", self.spike_encoding.value), ("SHARING", self.sharing.value)]
        if self.split_stage is not None:
            out.append(("SPLIT_STAGE_INDEX", str(self.split_stage.index)))
            if self.split_stage.name is not None:
                out.append(("SPLIT_STAGE_NAME", self.split_stage.name))
        return out


class ConfigError(ValueError):
    """An opaque config broke the schema; the message names each field, the problem and the allowed values."""


def _values(enum: type[StrEnum]) -> str:
    return ", ".join(m.value for m in enum)


_ALLOWED_FIELDS: Final[dict[tuple[str, ...], str]] = {
    (): "apiVersion, kind, neuronModel, timestepMicroseconds, learning, spikeEncoding, sharing, splitStage",
    ("learning",): "enabled, rule",
    ("splitStage",): "index, name",
}


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(str(p) for p in err.get("loc", ()))
    field = ".".join(loc) or "<parameters>"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = _ALLOWED_FIELDS.get(loc[:-1], "")
        return f"{field}: unknown field; allowed fields: {allowed}"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{field}: {msg}"


def parse_config(parameters: Any) -> SNNConfig:
    """Validate one ``opaque.parameters`` value; raises :class:`ConfigError` listing every problem."""
    if not isinstance(parameters, Mapping):
        raise ConfigError(
            f"parameters must be a JSON object with apiVersion {CONFIG_API_VERSION} and kind {CONFIG_KIND}"
        )
    try:
        raw = json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"parameters are not plain JSON: {type(exc).__name__}") from None
    try:
        return SNNConfig.model_validate_json(raw)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors(include_url=False)]
        raise ConfigError("; ".join(problems)) from None


def merge_configs(configs: Iterable[SNNConfig]) -> EffectiveConfig:
    """Apply configs in order (class configs first, then claim configs): a field set later wins."""
    values: dict[str, Any] = {}
    for cfg in configs:
        for name in _MERGED_FIELDS:
            if name in cfg.model_fields_set and getattr(cfg, name) is not None:
                values[name] = getattr(cfg, name)
    return EffectiveConfig(**values)
