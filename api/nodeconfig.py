"""Node configuration: which hardware a node has (simulated backend) and which levels it publishes.

Operators write this file (one per node class, mounted from a ConfigMap), so every field is
validated strictly and an unknown field is an error rather than a silently ignored typo.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from snn_dra.api.attributes import CONFIG_API_VERSION, DeviceType, Family


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CoreGroupShape(_Strict):
    """Rectangle of cores that makes one coreGroup device, in cores of the chip's core mesh."""

    width: Annotated[int, Field(ge=1, le=64)]
    height: Annotated[int, Field(ge=1, le=64)]


class PublishConfig(_Strict):
    """Which levels of the hierarchy the node publishes."""

    levels: list[DeviceType] = Field(
        default_factory=lambda: [
            DeviceType.CHIP,
            DeviceType.CORE_GROUP,
            DeviceType.SPIKE_ROUTER,
            DeviceType.EVENT_QUEUE,
        ],
        min_length=1,
    )
    core_group: CoreGroupShape | None = Field(default=None, alias="coreGroup")
    """None: the family's natural group (Loihi-2-like 4x4 cores, SpiNNaker2 QPE, Akida node)."""

    @model_validator(mode="after")
    def _unique_levels(self) -> PublishConfig:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"publish.levels lists a level twice: {[str(x) for x in self.levels]}")
        return self


class BoardConfig(_Strict):
    """One board (or PCIe card) of chips of a single family."""

    family: Family
    model: str = Field(min_length=1, max_length=64)
    """Board model, e.g. ``kapoho-point``, ``spinnaker2-48``, ``akd1000-pcie``."""
    chip_model: str | None = Field(default=None, alias="chipModel", min_length=1, max_length=64)
    """Chip model (e.g. ``akd1500``); None = the family's default chip (loihi2, spinnaker2, akd1000)."""
    chips: Annotated[int, Field(ge=1, le=2048)]
    mesh: tuple[int, int, int] | None = None
    """Chip arrangement (x, y, z); None lets the backend pick the family's layout. Product must equal chips."""
    fused_cores: dict[int, list[int]] = Field(default_factory=dict, alias="fusedCores")
    """Chip index on this board -> core indices that are fused off (not usable)."""
    firmware_version: str = Field(
        default="1.0.0", alias="firmwareVersion", pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"
    )
    unhealthy_chips: list[int] = Field(default_factory=list, alias="unhealthyChips")
    """Chip indices the simulation reports as unhealthy (drives taints and the health stream)."""
    ethernet_interface: str | None = Field(default=None, alias="ethernetInterface", pattern=r"^[A-Za-z0-9_.:-]{1,15}$")
    """Host interface facing an Ethernet-attached board; None = family default (Loihi: enp2s0)."""
    address: str | None = Field(default=None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:-]+$")
    """Board IP address or host name (SpiNNaker2); None = 192.168.240.(1 + 8 * board position)."""

    @model_validator(mode="after")
    def _check(self) -> BoardConfig:
        if self.mesh is not None and self.mesh[0] * self.mesh[1] * self.mesh[2] != self.chips:
            held = self.mesh[0] * self.mesh[1] * self.mesh[2]
            raise ValueError(f"mesh {list(self.mesh)} holds {held} chips, but chips is {self.chips}")
        for name, indices in (("fusedCores", list(self.fused_cores)), ("unhealthyChips", self.unhealthy_chips)):
            for chip in indices:
                if not 0 <= chip < self.chips:
                    raise ValueError(f"{name}: chip index {chip} is outside 0..{self.chips - 1} (chips: {self.chips})")
        for chip, cores in self.fused_cores.items():
            if any(core < 0 for core in cores) or len(set(cores)) != len(cores):
                raise ValueError(f"fusedCores[{chip}] must list distinct core indices >= 0, got {cores}")
        return self


class NodeConfig(_Strict):
    """Top-level node configuration file."""

    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(default=CONFIG_API_VERSION, alias="apiVersion")
    kind: Literal["NodeConfig"] = "NodeConfig"
    backend: Literal["simulated", "sysfs"] = "simulated"
    system_id: str = Field(default="", alias="systemID", max_length=64)
    """Identifier of the multi-board system; empty = derived from the node name."""
    publish: PublishConfig = Field(default_factory=PublishConfig)
    boards: list[BoardConfig] = Field(default_factory=list)
    sysfs_root: str = Field(default="/sys", alias="sysfsRoot")
    dev_root: str = Field(default="/dev", alias="devRoot")

    @model_validator(mode="after")
    def _check(self) -> NodeConfig:
        if self.backend == "simulated" and not self.boards:
            raise ValueError("backend 'simulated' needs at least one entry in boards")
        return self
