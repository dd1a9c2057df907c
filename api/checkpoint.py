"""On-disk checkpoint of prepared claims (``checkpoint.json`` in the plugin data dir): a versioned schema.

The file outlives the plugin process (and, on persistent disk, a node reboot), and during a rolling update
two plugin versions read and write it in turn under the serialization lock. So it is versioned, and the
rule is: **read every known version, tolerate unknown fields, write one file at one version**.

Versions:

* **1** (v0.1.0): claims in ``PrepareStarted`` or ``PrepareCompleted``.
* **2**: adds the state ``Recovered`` (a claim held because damaged state could not rule out that it is in
  use; never rolled back, see ``driver/prepare.py``) and the entry field ``recoveredFrom`` (the evidence).

Reading converts every known version into these models (the current version is the one in-memory type);
a newer version is read as far as this code understands it: unknown fields are kept (``extra="allow"``) and
written back unchanged with their entry, an unknown ``state`` is read as ``Recovered`` (held, never rolled
back), so a file of the other live plugin is never mistaken for a corrupt one. Writing picks the **lowest
version that can hold the content** (the CDI ``cdiVersion`` rule): 1 unless an entry is ``Recovered``, so an
older plugin of a rolling update keeps reading the file in normal operation.

Why not the peers' ways: NVIDIA's driver writes each version to its own file side by side
(``checkpoint.json`` and ``checkpointv2.json``) so each version finds its own; every save then becomes two
writes that a kill can split, leaving two files that disagree and a rule needed for which one wins. The
example driver converts every stored version through an internal hub type (Kubernetes API conversion) but
decodes strictly, so a newer file with a field it does not know is an error, which in a rolling update is
exactly the file the other pod just wrote. One file keeps one atomic rename as the only truth; the hub
conversion is kept for known versions, tolerance replaces strictness for unknown ones.

Claims are kept as separately validated entries keyed by UID: a damaged entry is set aside without losing
the others. Each entry carries the exact CDI spec it wrote, so a spec lost with a tmpfs ``/var/run/cdi`` is
rewritten byte-for-byte without re-deriving anything.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

CHECKPOINT_VERSION: Final = 2
"""The newest version this code writes (only when the content needs it, see :func:`version_for`)."""
KNOWN_VERSIONS: Final = (1, 2)


class ClaimState(StrEnum):
    """Progress of one claim: two-phase prepare (NVIDIA's PrepareStarted/PrepareCompleted) plus Recovered."""

    PREPARE_STARTED = "PrepareStarted"
    """Intent recorded, CDI spec may be partially written; rolled back by the next call."""
    PREPARE_COMPLETED = "PrepareCompleted"
    """CDI spec written and result returned (or about to be) to the kubelet."""
    RECOVERED = "Recovered"
    """(version 2) Held after damaged state: the claim may be in use, so its devices stay taken. Re-planned on
    the claim's next Prepare, released on its Unprepare or once the API server shows the claim gone."""


VERSION_OF_STATE: Final = {
    ClaimState.PREPARE_STARTED: 1,
    ClaimState.PREPARE_COMPLETED: 1,
    ClaimState.RECOVERED: 2,
}


class _Tolerant(BaseModel):
    """Known fields are validated strictly by type; unknown ones (a newer writer's) are kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class CheckpointDevice(_Tolerant):
    requests: list[str]
    """Base request names (``/sub`` stripped), as returned to the kubelet (empty in a Recovered entry)."""
    pool: str
    device: str
    cdi_device_ids: list[str] = Field(alias="cdiDeviceIDs")
    share_id: str | None = Field(default=None, alias="shareID")
    admin_access: bool = Field(default=False, alias="adminAccess")
    chip_id: str = Field(alias="chipID")
    cores: list[int]
    """Core indices the device covers on its chip; used to refuse overlaps between claims."""
    shared: bool = False


class CheckpointClaim(_Tolerant):
    namespace: str
    name: str
    uid: str
    state: ClaimState
    devices: list[CheckpointDevice]
    config_hash: str = Field(alias="configHash")
    """sha256 of the merged, validated configs of every device (canonical JSON); "" in a Recovered entry."""
    cdi_spec_file: str = Field(alias="cdiSpecFile")
    """Base name of the spec in the CDI dir (never a path)."""
    cdi_spec: dict[str, Any] = Field(alias="cdiSpec")
    """The exact spec JSON written, for rewriting after a wipe."""
    recovered_from: str | None = Field(default=None, alias="recoveredFrom")
    """(version 2) For a Recovered entry: the evidence it was rebuilt from."""


class Checkpoint(_Tolerant):
    """File layout. ``claims`` values are validated one by one as :class:`CheckpointClaim`."""

    api_version: Literal["snn.dra.dev/v1alpha1"] = Field(default="snn.dra.dev/v1alpha1", alias="apiVersion")
    kind: Literal["Checkpoint"] = "Checkpoint"
    version: int = Field(default=1, ge=1)
    """Schema version of the writer's content; a file without it is version 1."""
    boot_id: str = Field(default="", alias="bootID")
    """Kernel boot id when the file was written; a different one at load means the node rebooted."""
    claims: dict[str, dict[str, Any]] = Field(default_factory=dict)


def version_for(claims: list[CheckpointClaim] | tuple[CheckpointClaim, ...]) -> int:
    """The lowest version that holds these entries (1 unless one is Recovered)."""
    return max((VERSION_OF_STATE[c.state] for c in claims), default=1)
