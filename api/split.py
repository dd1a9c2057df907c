"""Split-model description ``snn.dra.dev/v1alpha1``, kind ``SplitModel``: the input of ``snn-dra split``.

A user describes a spiking network as a chain of layers (neurons, incoming synapses, and the spike rate
each layer sends to the next), says how to cut it (a stage count, or limits per stage) and where the
stages may go. The planner turns it into stages that fit the published devices and into claims whose
constraints keep the stages close. Every field is checked strictly, so a typo is an error that names
the field, never a silently ignored key.

Example::

    apiVersion: snn.dra.dev/v1alpha1
    kind: SplitModel
    metadata: {name: keyword-spotter, namespace: snn-demo}
    spec:
      family: loihi2
      layers:
        - {name: input,  neurons: 4096,  synapses: 0,       spikeRateKEPS: 400}
        - {name: hidden, neurons: 16384, synapses: 4000000, spikeRateKEPS: 120}
        - {name: output, neurons: 512,   synapses: 800000}
      stages: 2
      placement: {scope: chip}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from snn_dra.api.attributes import DeviceType, Family

SPLIT_MODEL_KIND: Final = "SplitModel"
MAX_LAYERS: Final = 256
MAX_STAGES: Final = 32
"""A claim holds at most 32 requests (``DeviceRequestsMaxSize``): one request per stage."""
DNS_LABEL: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""Model and group names: they become object names, label values and (split learning) a Service name, which
must start with a letter; ``<model>-<group>`` stays within the 63 characters of a label value."""
STAGE_DEVICE_TYPES: Final = (DeviceType.NEURON_CORE, DeviceType.CORE_GROUP, DeviceType.CHIP)
"""Partition levels a stage can run on (routers and queues are shared plumbing, never a stage)."""


class Scope(StrEnum):
    """Where the stages of one model may go."""

    CHIP = "chip"
    """Every stage on one chip: spikes never leave the chip's mesh."""
    NODE = "node"
    """Every stage on one node, in one claim (chips of one board or system)."""
    NODES = "nodes"
    """Groups of stages on different nodes, one claim per group (e.g. split learning: edge and server)."""


class Workload(StrEnum):
    """What the emitted pods run."""

    SLEEP = "sleep"
    """Hold the devices (a placeholder for the user's own image and command)."""
    SPLIT_LEARNING = "splitLearning"
    """``snn-dra split learn``: the first group is the client (edge), the second the server."""


StageType = Literal["neuronCore", "coreGroup", "chip"]


def _all_stage_types() -> list[StageType]:
    return ["neuronCore", "coreGroup", "chip"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Layer(_Strict):
    """One layer of the network, in the order spikes flow."""

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
    neurons: Annotated[int, Field(ge=1, le=10**12)]
    synapses: Annotated[int, Field(ge=0, le=10**15)] = 0
    """Incoming synapses of the layer (weights stored next to its neurons)."""
    spike_rate_keps: Annotated[float, Field(ge=0, le=10**9)] = Field(default=0.0, alias="spikeRateKEPS")
    """Spikes per second this layer sends to the next one, in thousands (ignored on the last layer)."""


class StageLimits(_Strict):
    """Upper bounds for one stage; the planner uses as few stages as these allow."""

    neurons: Annotated[int, Field(ge=1)] | None = None
    synapse_memory: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="synapseMemory")
    """Bytes of synapse memory."""
    cores: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _any(self) -> StageLimits:
        if self.neurons is None and self.synapse_memory is None and self.cores is None:
            raise ValueError("set at least one of neurons, synapseMemory, cores")
        return self


class Group(_Strict):
    """Consecutive stages that share one node (one claim, one pod)."""

    name: Annotated[str, Field(min_length=1, max_length=24, pattern=NAME)]
    stages: Annotated[int, Field(ge=1, le=MAX_STAGES)]
    """How many consecutive stages, counted from where the previous group ended."""


class Placement(_Strict):
    scope: Scope = Scope.NODE
    groups: list[Group] | None = None
    """Only with scope ``nodes``: how the stages split over nodes, in order. Default: as many stages per
    node as ``chipsPerNode`` and the 32 devices of one claim allow."""
    chips_per_node: Annotated[int, Field(ge=1, le=4096)] | None = Field(default=None, alias="chipsPerNode")
    """Chips one node offers, to check scope ``node`` and pack scope ``nodes``; default: the family's board
    (loihi2 8, spinnaker2 48, akida 1)."""

    @model_validator(mode="after")
    def _groups_need_nodes(self) -> Placement:
        if self.groups is not None and self.scope != Scope.NODES:
            raise ValueError(f"groups are only allowed with scope 'nodes' (scope is {self.scope.value!r})")
        if self.groups is not None:
            names = [g.name for g in self.groups]
            if len(set(names)) != len(names):
                raise ValueError(f"group names must be unique: {names}")
        return self


class Metadata(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=32, pattern=NAME)]
    """Prefix of every emitted object name (kept short: request and pod names are built from it)."""
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] = "default"


class SplitModelSpec(_Strict):
    family: Family
    chip_model: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(default=None, alias="chipModel")
    """Chip model whose figures size the stages; None = the family's default chip."""
    layers: Annotated[list[Layer], Field(min_length=1, max_length=MAX_LAYERS)]
    stages: Annotated[int, Field(ge=1, le=MAX_STAGES)] | None = None
    stage_limits: StageLimits | None = Field(default=None, alias="stageLimits")
    bytes_per_synapse: Annotated[int, Field(ge=1, le=64)] = Field(default=1, alias="bytesPerSynapse")
    device_types: list[StageType] = Field(default_factory=_all_stage_types, alias="deviceTypes", min_length=1)
    """Device types a stage may use, smallest first; the planner takes the smallest that holds the stage."""
    placement: Placement = Field(default_factory=Placement)
    workload: Workload = Workload.SLEEP

    @model_validator(mode="after")
    def _check(self) -> SplitModelSpec:
        if (self.stages is None) == (self.stage_limits is None):
            raise ValueError("set exactly one of stages (a count) and stageLimits (limits per stage)")
        names = [layer.name for layer in self.layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"layer names must be unique; repeated: {', '.join(dupes)}")
        if self.stages is not None and self.stages > len(self.layers):
            raise ValueError(
                f"stages is {self.stages} but there are only {len(self.layers)} layers; a stage holds whole layers"
            )
        if len(set(self.device_types)) != len(self.device_types):
            raise ValueError(f"deviceTypes lists a type twice: {self.device_types}")
        if self.workload == Workload.SPLIT_LEARNING:
            groups = self.placement.groups
            if self.placement.scope != Scope.NODES or groups is None or len(groups) != 2:
                raise ValueError(
                    "workload splitLearning needs placement.scope 'nodes' with exactly two groups "
                    "(the client/edge side first, then the server side)"
                )
        return self


class SplitModel(_Strict):
    """One model document."""

    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["SplitModel"]
    metadata: Metadata
    spec: SplitModelSpec
