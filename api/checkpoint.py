"""On-disk checkpoint of prepared claims (``checkpoint.json`` in the plugin data dir), version 1.

The file outlives the plugin process (and, on persistent disk, a node reboot), so it is versioned and
parsed strictly. Claims are kept as separately validated entries keyed by UID: a damaged entry is set
aside without losing the others. Each entry carries the exact CDI spec it wrote, so a spec lost with a
tmpfs ``/var/run/cdi`` is rewritten byte-for-byte without re-deriving anything.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

CHECKPOINT_VERSION: Final = 1


class ClaimState(StrEnum):
    """Two-phase progress of one claim (the NVIDIA driver's PrepareStarted/PrepareCompleted)."""

    PREPARE_STARTED = "PrepareStarted"
    """Intent recorded, CDI spec may be partially written; rolled back by the next call."""
    PREPARE_COMPLETED = "PrepareCompleted"
    """CDI spec written and result returned (or about to be) to the kubelet."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CheckpointDevice(_Strict):
    requests: list[str]
    """Base request names (``/sub`` stripped), as returned to the kubelet."""
    pool: str
    device: str
    cdi_device_ids: list[str] = Field(alias="cdiDeviceIDs")
    share_id: str | None = Field(default=None, alias="shareID")
    admin_access: bool = Field(default=False, alias="adminAccess")
    chip_id: str = Field(alias="chipID")
    cores: list[int]
    """Core indices the device covers on its chip; used to refuse overlaps between claims."""
    shared: bool = False


class CheckpointClaim(_Strict):
    namespace: str
    name: str
    uid: str
    state: ClaimState
    devices: list[CheckpointDevice]
    config_hash: str = Field(alias="configHash")
    """sha256 of the merged, validated configs of every device (canonical JSON)."""
    cdi_spec_file: str = Field(alias="cdiSpecFile")
    """Base name of the spec in the CDI dir (never a path)."""
    cdi_spec: dict[str, Any] = Field(alias="cdiSpec")
    """The exact spec JSON written, for rewriting after a wipe."""


class Checkpoint(_Strict):
    """File layout. ``claims`` values are validated one by one as :class:`CheckpointClaim`."""

    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(default="snn.dra.dev/v1alpha1", alias="apiVersion")
    kind: Literal["Checkpoint"] = "Checkpoint"
    version: Literal[1] = CHECKPOINT_VERSION
    boot_id: str = Field(default="", alias="bootID")
    """Kernel boot id when the file was written; a different one at load means the node rebooted."""
    claims: dict[str, dict[str, Any]] = Field(default_factory=dict)
