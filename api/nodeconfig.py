"""Node configuration: which hardware a node has (simulated backend) and which levels it publishes.

Operators write this file (one per node class, mounted from a ConfigMap), so every field is
validated strictly and an unknown field is an error rather than a silently ignored typo. Checks that
relate two fields are field validators on the later field (reading the earlier one from
``info.data``), never model validators: pydantic skips a model validator as soon as any field fails,
and an operator should see every problem of the file in one run, each at its own path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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

    @field_validator("levels")
    @classmethod
    def _unique_levels(cls, levels: list[DeviceType]) -> list[DeviceType]:
        twice = sorted({str(x) for x in levels if levels.count(x) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} more than once; list each level once")
        return levels


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

    @field_validator("mesh")
    @classmethod
    def _mesh_holds_chips(cls, mesh: tuple[int, int, int] | None, info: ValidationInfo) -> tuple[int, int, int] | None:
        chips = info.data.get("chips")
        if mesh is not None and chips is not None and mesh[0] * mesh[1] * mesh[2] != chips:
            held = mesh[0] * mesh[1] * mesh[2]
            raise ValueError(
                f"mesh {list(mesh)} holds {held} chips, but chips is {chips}; make x * y * z equal chips "
                "or leave mesh out for the family's layout"
            )
        return mesh

    @field_validator("fused_cores")
    @classmethod
    def _fused_cores(cls, fused: dict[int, list[int]], info: ValidationInfo) -> dict[int, list[int]]:
        problems = _outside("chip index", list(fused), info.data.get("chips"))
        for chip, cores in fused.items():
            if any(core < 0 for core in cores) or len(set(cores)) != len(cores):
                problems.append(f"[{chip}] must list distinct core indices >= 0, got {cores}")
        if problems:
            raise ValueError("; ".join(problems))
        return fused

    @field_validator("unhealthy_chips")
    @classmethod
    def _unhealthy_chips(cls, chips: list[int], info: ValidationInfo) -> list[int]:
        problems = _outside("chip index", chips, info.data.get("chips"))
        if problems:
            raise ValueError("; ".join(problems))
        return chips


def _outside(what: str, indices: list[int], chips: int | None) -> list[str]:
    """One problem per index outside ``0..chips-1`` (none when ``chips`` itself failed validation)."""
    if chips is None:
        return []
    return [
        f"{what} {i} is outside 0..{chips - 1} (chips: {chips}); use 0-based chip positions on this board"
        for i in indices
        if not 0 <= i < chips
    ]


class NodeConfig(_Strict):
    """Top-level node configuration file."""

    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(default=CONFIG_API_VERSION, alias="apiVersion")
    kind: Literal["NodeConfig"] = "NodeConfig"
    backend: Literal["simulated", "sysfs"] = "simulated"
    system_id: str = Field(default="", alias="systemID", max_length=64)
    """Identifier of the multi-board system; empty = derived from the node name."""
    publish: PublishConfig = Field(default_factory=PublishConfig)
    boards: list[BoardConfig] = Field(default_factory=list, validate_default=True)
    sysfs_root: str = Field(default="/sys", alias="sysfsRoot")
    dev_root: str = Field(default="/dev", alias="devRoot")

    @field_validator("boards")
    @classmethod
    def _simulated_needs_boards(cls, boards: list[BoardConfig], info: ValidationInfo) -> list[BoardConfig]:
        if info.data.get("backend") == "simulated" and not boards:
            raise ValueError(
                "backend 'simulated' needs at least one entry in boards (e.g. `- {family: loihi2, model: "
                "kapoho-point, chips: 8}`); for real hardware set backend: sysfs"
            )
        return boards
