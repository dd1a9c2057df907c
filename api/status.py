"""``snn-dra status -o json``: what each chip gives out and what is left, as scripts read it.

Figures come from the live ResourceSlices and the allocations in ResourceClaims (``status.allocation``);
nothing here comes from a node. Cores are counted by the ``coreCount`` attribute of the devices that
cover them (a claim on a core group or a whole chip holds all of its cores); the core picture is one
character per core of the chip's core mesh, row ``coreY`` = 0 first. The shape is versioned by
``apiVersion``/``kind`` so that scripts can tell when it changes.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from snn_dra.api.attributes import CONFIG_API_VERSION

FREE: Final = "."
"""Picture cell: a usable core no claim holds."""
TAINTED: Final = "x"
"""Picture cell: a core of a tainted device that no claim holds."""
ABSENT: Final = "-"
"""Picture cell: a position of the core mesh without a published core (fused off, or outside every group)."""
CLAIM_KEYS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwyz"
"""Picture cells of the claims of one chip, in claim order (``x`` is left out: it marks taints)."""
MORE_CLAIMS: Final = "*"
"""Picture cell of the claims after the last key of ``CLAIM_KEYS``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)


class Used(_Model):
    """An amount given out of a capacity."""

    used: int
    capacity: int


class ClaimRef(_Model):
    claim: str
    """``namespace/name`` of the ResourceClaim."""
    pods: list[str] = Field(default_factory=list)
    """Pods the claim is reserved for (``status.reservedFor``)."""


class ChipClaim(ClaimRef):
    """One claim's partitions on one chip."""

    key: str
    """The character that marks its cores in the picture."""
    devices: list[str]
    cores: int


class ShareHolder(ClaimRef):
    consumed: dict[str, int]
    """Capacity name -> amount this claim's allocation consumes (``consumedCapacity``)."""


class SharedDevice(_Model):
    """A spike router or event queue handed out by consumable capacity."""

    name: str
    type: str
    capacity: dict[str, Used]
    holders: list[ShareHolder] = Field(default_factory=list)
    tainted: bool = False


class ChipStatus(_Model):
    chip_id: str = Field(alias="chipID")
    model: str
    board_id: str = Field(alias="boardID")
    pool: str
    core_mesh: tuple[int, int] = Field(alias="coreMesh")
    """Width and height of the core mesh, in cores."""
    cores: Used
    """Usable cores and how many of them claims hold."""
    cores_free: int = Field(alias="coresFree")
    """Usable cores that are neither held nor tainted."""
    cores_tainted: int = Field(alias="coresTainted")
    """Usable cores of tainted devices that no claim holds."""
    core_groups: int = Field(alias="coreGroups")
    """Published coreGroup devices."""
    core_groups_free: int = Field(alias="coreGroupsFree")
    """Core groups with no held core and no taint: what a new coreGroup claim could get now."""
    whole_chip_free: bool | None = Field(alias="wholeChipFree")
    """Whether a claim could get the whole chip now; None when the chip level is not published."""
    router: Used | None = None
    """Event throughput (MEPS) of the chip's spike router given out to claims."""
    queue_depth: Used | None = Field(default=None, alias="queueDepth")
    """Event-queue slots given out, summed over the chip's queues."""
    tainted_devices: list[str] = Field(default_factory=list, alias="taintedDevices")
    claims: list[ChipClaim] = Field(default_factory=list)
    shared: list[SharedDevice] = Field(default_factory=list)
    picture: list[str]
    """One string per core-mesh row (coreY 0 first), one character per core: a claim's key, '.' free,
    'x' tainted, '-' no published core."""


class NodeStatus(_Model):
    name: str
    """``spec.nodeName`` of the pool's slices (the pool name for slices without one)."""
    chips: list[ChipStatus]


class ClusterStatus(_Model):
    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(default=CONFIG_API_VERSION, alias="apiVersion")
    kind: Literal["Status"] = "Status"
    nodes: list[NodeStatus]
    other_allocations: list[str] = Field(default_factory=list, alias="otherAllocations")
    """Allocated ``pool/device`` results of this driver that no current slice publishes (stale allocations)."""
