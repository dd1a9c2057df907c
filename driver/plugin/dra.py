"""The DRA node service (``DRAPlugin`` v1 and v1beta1): NodePrepareResources and NodeUnprepareResources.

Both versions share one implementation and differ only in the response type (v1 carries ``share_id``).
The kubelet ignores a whole response that comes with a gRPC error, so per-claim failures go into the
claim's ``error`` (a claim missing namespace, name or uid included) and a gRPC error is kept for a missed
deadline or a preparer crash.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from typing_extensions import override

from snn_dra.api.kubelet.dra.v1 import api_pb2 as dra_v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as dra_v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as dra_v1beta1
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as dra_v1beta1_grpc
from snn_dra.driver.plugin.lock import LockTimeoutError, SerializationLock
from snn_dra.driver.plugin.preparer import (
    ClaimRef,
    ClaimResultLike,
    PreparedDeviceLike,
    Preparer,
    TwoPhasePreparer,
)

log = logging.getLogger("snn_dra.plugin.dra")

_request_ids = itertools.count(1)
"""Process-wide, like the Go library's requestID, so log lines of one call can be grepped together."""

T = TypeVar("T")


class CallExpiredError(TimeoutError):
    """The caller's deadline passed (or it cancelled) before the work started; answered DEADLINE_EXCEEDED."""


def base_request_names(requests: Sequence[str]) -> list[str]:
    """Strip ``/<subrequest>`` (firstAvailable) and de-duplicate: the kubelet matches containers by base name."""
    out: list[str] = []
    for name in requests:
        base = name.split("/", 1)[0]
        if base not in out:
            out.append(base)
    return out


def _claims_text(claims: Sequence[ClaimRef]) -> str:
    return ", ".join(f"{c.namespace}/{c.name}({c.uid})" for c in claims)


class ClaimService:
    """Runs the preparer in worker threads under the serialization lock, within the caller's deadline.

    A :class:`TwoPhasePreparer` reads its claims from the API server before the lock is taken, so one slow
    read never stalls another pod's Prepare or Unprepare.
    """

    def __init__(self, preparer: Preparer, lock: SerializationLock, workers: int = 4) -> None:
        self._preparer = preparer
        self._lock = lock
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snn-dra-prepare")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _run(self, context: Any, fn: Callable[[], T], *, locked: bool) -> T:
        """Run ``fn`` in a worker thread, under the lock if ``locked``, only while the caller still waits.

        The deadline and cancellation are checked when the worker picks the job up (it may have queued
        behind busy workers), and again once the lock is held: a call whose kubelet has given up must not
        change the node's state after the fact. A missed deadline raises :class:`CallExpiredError`.
        """
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        gone = threading.Event()

        def check(where: str) -> None:
            if gone.is_set():
                raise CallExpiredError(f"the caller cancelled the call {where}; nothing was done")
            if deadline is not None and time.monotonic() >= deadline:
                raise CallExpiredError(f"the call's deadline passed {where}; nothing was done")

        def run() -> T:
            check("while it waited for a worker")
            if not locked:
                return fn()
            with self._lock.hold(deadline):
                check("while it waited for the serialization lock")
                return fn()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except asyncio.CancelledError:
            gone.set()
            raise

    async def _prepare_claims(
        self, rid: int, method: str, context: Any, claims: list[ClaimRef]
    ) -> Mapping[str, ClaimResultLike]:
        """Claims are read before the lock when the preparer can split the work, else all under the lock."""
        preparer = self._preparer
        if isinstance(preparer, TwoPhasePreparer):
            fetched = await self._call(rid, method, context, lambda: preparer.fetch(claims), locked=False)
            return await self._call(rid, method, context, lambda: preparer.prepare_fetched(fetched))
        return await self._call(rid, method, context, lambda: preparer.prepare(claims))

    async def prepare(self, method: str, claims: list[ClaimRef], context: Any) -> dict[str, tuple[list[Any], str]]:
        """Per claim UID: (devices, error). Every requested claim gets an entry."""
        rid = next(_request_ids)
        # An empty call is the liveness probe's (every few seconds): keep it out of the INFO log.
        level = logging.INFO if claims else logging.DEBUG
        log.log(level, "rid=%d %s claims=[%s]", rid, method, _claims_text(claims))
        started = time.monotonic()
        bad = _malformed(claims, ("namespace", "name", "uid"))
        good = [c for c in claims if c.uid not in bad]
        results: Mapping[str, ClaimResultLike] = await self._prepare_claims(rid, method, context, good) if good else {}
        out: dict[str, tuple[list[Any], str]] = {uid: ([], err) for uid, err in bad.items()}
        for claim in good:
            result = results.get(claim.uid)
            if result is None:
                out[claim.uid] = ([], f"driver returned no result for claim {claim.namespace}/{claim.name}")
            elif result.error:
                out[claim.uid] = ([], result.error)
            else:
                out[claim.uid] = (list(result.devices), "")
        failed = {uid: err for uid, (_, err) in out.items() if err}
        log.log(
            level,
            "rid=%d %s done in %.3fs: %d prepared, %d failed%s",
            rid, method, time.monotonic() - started, len(out) - len(failed), len(failed),
            "".join(f"; {uid}: {err}" for uid, err in failed.items()),
        )  # fmt: skip
        return out

    async def unprepare(self, method: str, claims: list[ClaimRef], context: Any) -> dict[str, str]:
        rid = next(_request_ids)
        log.info("rid=%d %s claims=[%s]", rid, method, _claims_text(claims))
        started = time.monotonic()
        bad = _malformed(claims, ("uid",))  # unprepare works from the checkpoint by uid alone
        good = [c for c in claims if c.uid]
        results: Mapping[str, str] = (
            await self._call(rid, method, context, lambda: self._preparer.unprepare(good)) if good else {}
        )
        out = dict(bad)
        out.update(
            (c.uid, results.get(c.uid, f"driver returned no result for claim {c.namespace}/{c.name}")) for c in good
        )
        failed = {uid: err for uid, err in out.items() if err}
        log.info(
            "rid=%d %s done in %.3fs: %d unprepared, %d failed%s",
            rid, method, time.monotonic() - started, len(out) - len(failed), len(failed),
            "".join(f"; {uid}: {err}" for uid, err in failed.items()),
        )  # fmt: skip
        return out

    async def _call(self, rid: int, method: str, context: Any, fn: Callable[[], T], *, locked: bool = True) -> T:
        try:
            return await self._run(context, fn, locked=locked)
        except (LockTimeoutError, CallExpiredError) as exc:
            log.warning("rid=%d %s: %s", rid, method, exc)
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"{method}: {exc}")
            raise  # abort raises; this keeps type checkers and readers sure we never fall through
        except asyncio.CancelledError:
            log.warning("rid=%d %s cancelled (caller gone or deadline passed); a job not yet started is dropped, "
                        "one already running finishes", rid, method)  # fmt: skip
            raise
        except Exception as exc:
            log.exception("rid=%d %s failed", rid, method)
            await context.abort(grpc.StatusCode.INTERNAL, f"{method} failed: {type(exc).__name__}: {exc}")
            raise


def _claims_from_request(request: Any) -> list[ClaimRef]:
    return [ClaimRef(namespace=c.namespace, name=c.name, uid=c.uid) for c in request.claims]


def _malformed(claims: Sequence[ClaimRef], required: tuple[str, ...]) -> dict[str, str]:
    """Per-claim errors for claims missing a required field, keyed by the uid the kubelet sent.

    A malformed claim must not fail the whole call (the kubelet would then drop the answers of the good
    claims too). The kubelet looks each answer up by the uid it sent, so even an empty uid gets its entry
    under ``""``; several claims without a uid share that one entry and its text names all of them.
    """
    out: dict[str, str] = {}
    for i, c in enumerate(claims):
        missing = [f for f in required if not getattr(c, f)]
        if missing:
            text = (
                f"claims[{i}] ({c.namespace or '?'}/{c.name or '?'}): {', '.join(missing)} must be set "
                f"({', '.join(required)} {'is' if len(required) == 1 else 'are all'} required)"
            )
            out[c.uid] = f"{out[c.uid]}; {text}" if c.uid in out else text
    return out


def _device_v1(dev: PreparedDeviceLike) -> dra_v1.Device:
    out = dra_v1.Device(
        request_names=base_request_names(dev.requests),
        pool_name=dev.pool,
        device_name=dev.device,
        cdi_device_ids=list(dev.cdi_device_ids),
    )
    if dev.share_id is not None:
        out.share_id = dev.share_id
    return out


def _device_v1beta1(dev: PreparedDeviceLike) -> dra_v1beta1.Device:
    return dra_v1beta1.Device(
        request_names=base_request_names(dev.requests),
        pool_name=dev.pool,
        device_name=dev.device,
        cdi_device_ids=list(dev.cdi_device_ids),
    )


class DraV1Servicer(dra_v1_grpc.DRAPluginServicer):
    """``k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin`` (kubelet 1.34+)."""

    def __init__(self, service: ClaimService) -> None:
        self._service = service

    @override
    async def NodePrepareResources(
        self, request: dra_v1.NodePrepareResourcesRequest, context: Any
    ) -> dra_v1.NodePrepareResourcesResponse:
        claims = _claims_from_request(request)
        results = await self._service.prepare("v1.NodePrepareResources", claims, context)
        response = dra_v1.NodePrepareResourcesResponse()
        for uid, (devices, error) in results.items():
            response.claims[uid].error = error
            response.claims[uid].devices.extend(_device_v1(d) for d in devices)
        return response

    @override
    async def NodeUnprepareResources(
        self, request: dra_v1.NodeUnprepareResourcesRequest, context: Any
    ) -> dra_v1.NodeUnprepareResourcesResponse:
        claims = _claims_from_request(request)
        results = await self._service.unprepare("v1.NodeUnprepareResources", claims, context)
        response = dra_v1.NodeUnprepareResourcesResponse()
        for uid, error in results.items():
            response.claims[uid].error = error
        return response


class DraV1Beta1Servicer(dra_v1beta1_grpc.DRAPluginServicer):
    """``k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin`` (kubelet 1.32+, still accepted by 1.37)."""

    def __init__(self, service: ClaimService) -> None:
        self._service = service

    @override
    async def NodePrepareResources(
        self, request: dra_v1beta1.NodePrepareResourcesRequest, context: Any
    ) -> dra_v1beta1.NodePrepareResourcesResponse:
        claims = _claims_from_request(request)
        results = await self._service.prepare("v1beta1.NodePrepareResources", claims, context)
        response = dra_v1beta1.NodePrepareResourcesResponse()
        for uid, (devices, error) in results.items():
            response.claims[uid].error = error
            response.claims[uid].devices.extend(_device_v1beta1(d) for d in devices)
        return response

    @override
    async def NodeUnprepareResources(
        self, request: dra_v1beta1.NodeUnprepareResourcesRequest, context: Any
    ) -> dra_v1beta1.NodeUnprepareResourcesResponse:
        claims = _claims_from_request(request)
        results = await self._service.unprepare("v1beta1.NodeUnprepareResources", claims, context)
        response = dra_v1beta1.NodeUnprepareResourcesResponse()
        for uid, error in results.items():
            response.claims[uid].error = error
        return response
