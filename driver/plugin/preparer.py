"""The shape of the claim preparer the DRA service delegates to (``snn_dra.driver.prepare`` implements it).

Declared structurally so the gRPC layer does not depend on how preparation is done: the real preparer, a
test double, or a future out-of-process one all fit as long as they answer per claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


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


@runtime_checkable
class TwoPhasePreparer(Preparer, Protocol):
    """A preparer that reads claims from the API server before the serialization lock is taken.

    ``fetch`` runs WITHOUT the lock (reading claims can take seconds and must not hold up other calls, as
    the Go library reads claims before locking); ``prepare_fetched`` then runs under the lock with what
    ``fetch`` returned. ``prepare(claims)`` must stay equivalent to ``prepare_fetched(fetch(claims))``.
    """

    def fetch(self, claims: Sequence[Any]) -> Any: ...

    def prepare_fetched(self, fetched: Any) -> Mapping[str, ClaimResultLike]: ...
