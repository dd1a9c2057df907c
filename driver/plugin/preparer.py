"""The shape of the claim preparer the DRA service delegates to (``snn_dra.driver.prepare`` implements it).

Declared structurally so the gRPC layer does not depend on how preparation is done: the real preparer, a
test double, or a future out-of-process one all fit as long as they answer per claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """A claim as the kubelet names it in NodePrepareResources/NodeUnprepareResources."""

    namespace: str
    name: str
    uid: str


class PreparedDeviceLike(Protocol):
    @property
    def requests(self) -> Sequence[str]: ...
    @property
    def pool(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def cdi_device_ids(self) -> Sequence[str]: ...
    @property
    def share_id(self) -> str | None: ...


class ClaimResultLike(Protocol):
    @property
    def devices(self) -> Sequence[PreparedDeviceLike]: ...
    @property
    def error(self) -> str: ...


class Preparer(Protocol):
    """Synchronous; called in a worker thread while the serialization lock is held.

    ``claims`` holds objects with ``namespace``, ``name`` and ``uid`` attributes. Results are keyed by claim UID.
    Raising means "the whole call failed" (a bug or an unreachable dependency); per-claim problems are results.
    """

    def prepare(self, claims: Sequence[Any]) -> Mapping[str, ClaimResultLike]: ...

    def unprepare(self, claims: Sequence[Any]) -> Mapping[str, str]: ...
