"""A call whose deadline has passed (or whose caller is gone) never takes the serialization lock and never runs.

The kubelet gives each call 45 s and then stops listening; work done after that changes the node's state
behind its back (a device prepared that nobody was told about). The job may wait for a worker thread or for
the lock; both waits are re-checked against the deadline, and a free lock is not taken after the deadline.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from plugin_support import Result, channel, running_server, short_dir

from snn_dra.api.kubelet.dra.v1 import api_pb2 as v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as v1_grpc
from snn_dra.driver.plugin.dra import ClaimService
from snn_dra.driver.plugin.lock import LockTimeoutError, SerializationLock
from snn_dra.driver.plugin.preparer import ClaimRef


class AbortedError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


class Context:
    """The part of ``grpc.aio.ServicerContext`` ClaimService uses: the remaining time and abort."""

    def __init__(self, seconds: float | None) -> None:
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AbortedError(code, details)


class BlockingPreparer:
    """Records every call; a call for uid "block" waits until released (it occupies the only worker)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def prepare(self, claims: Sequence[Any]) -> dict[str, Result]:
        uids = [c.uid for c in claims]
        self.calls.append("prepare:" + ",".join(uids))
        if "block" in uids:
            self.entered.set()
            assert self.release.wait(30)
        return {u: Result() for u in uids}

    def unprepare(self, claims: Sequence[Any]) -> dict[str, str]:
        self.calls.append("unprepare:" + ",".join(c.uid for c in claims))
        return {c.uid: "" for c in claims}


def _claim(uid: str) -> list[ClaimRef]:
    return [ClaimRef("ns", f"c-{uid}", uid)]


async def _wait(condition: Any, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("method", ["prepare", "unprepare"])
def test_a_call_queued_past_its_deadline_never_runs(method: str) -> None:
    """One worker busy; the next call's deadline passes while it queues; once the worker frees, it must not run."""
    prep = BlockingPreparer()
    service = ClaimService(prep, SerializationLock(None), workers=1)

    async def scenario() -> None:
        first = asyncio.ensure_future(service.prepare("v1.NodePrepareResources", _claim("block"), Context(45)))
        await _wait(prep.entered.is_set, "the first call to occupy the worker")
        late_ctx = Context(0.2)
        call = service.prepare if method == "prepare" else service.unprepare
        late = asyncio.ensure_future(call(f"v1.Node{method.title()}Resources", _claim("late"), late_ctx))
        await _wait(late_ctx.expired, "the second call's deadline to pass")
        prep.release.set()
        assert (await first)["block"] == ([], "")
        with pytest.raises(AbortedError) as err:
            await late
        assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "deadline passed while it waited for a worker" in str(err.value)
        # FIFO with one worker: this call runs after the late job was picked up and refused.
        await service.unprepare("v1.NodeUnprepareResources", _claim("after"), Context(45))

    try:
        asyncio.run(scenario())
    finally:
        service.close()
    assert prep.calls == ["prepare:block", "unprepare:after"]


def test_a_call_whose_deadline_passed_waiting_for_the_lock_does_not_take_it() -> None:
    """Another plugin instance holds the file lock past the deadline; releasing it must not let the call run."""
    with short_dir() as base:
        lock_path = base / "serialize.lock"
        prep = BlockingPreparer()
        service = ClaimService(prep, SerializationLock(lock_path), workers=2)
        other = SerializationLock(lock_path)

        async def scenario() -> None:
            ctx = Context(0.3)
            with other.hold():
                call = asyncio.ensure_future(service.prepare("v1.NodePrepareResources", _claim("late"), ctx))
                await _wait(ctx.expired, "the call's deadline to pass")
            with pytest.raises(AbortedError) as err:
                await call
            assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

        try:
            asyncio.run(scenario())
        finally:
            service.close()
            other.close()
        assert prep.calls == []


def test_a_cancelled_call_that_has_not_started_is_dropped() -> None:
    """The kubelet hangs up (no deadline given): the queued job sees the cancellation and does nothing."""
    prep = BlockingPreparer()
    service = ClaimService(prep, SerializationLock(None), workers=1)

    async def scenario() -> None:
        first = asyncio.ensure_future(service.prepare("v1.NodePrepareResources", _claim("block"), Context(None)))
        await _wait(prep.entered.is_set, "the first call to occupy the worker")
        gone = asyncio.ensure_future(service.prepare("v1.NodePrepareResources", _claim("gone"), Context(None)))
        await asyncio.sleep(0)  # let it queue its job
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        prep.release.set()
        await first
        await service.unprepare("v1.NodeUnprepareResources", _claim("after"), Context(None))

    try:
        asyncio.run(scenario())
    finally:
        service.close()
    assert prep.calls == ["prepare:block", "unprepare:after"]


def test_a_free_lock_is_not_taken_after_the_deadline(tmp_path: Path) -> None:
    lock = SerializationLock(tmp_path / "serialize.lock")
    try:
        with pytest.raises(LockTimeoutError, match="deadline passed"):
            lock.acquire(time.monotonic() - 0.001)
        with lock.hold(time.monotonic() + 5):  # and it was left free
            pass
    finally:
        lock.close()


def test_over_grpc_an_expired_call_is_deadline_exceeded_and_the_next_one_runs() -> None:
    """End to end over the unix socket: the kubelet's client sees DEADLINE_EXCEEDED, the preparer never runs."""
    prep = BlockingPreparer()
    with short_dir() as base, running_server(base, prep) as server, channel(server.paths.dra) as ch:
        stub = v1_grpc.DRAPluginStub(ch)
        other = SerializationLock(server.paths.lock)
        with other.hold(), pytest.raises(grpc.RpcError) as err:
            stub.NodePrepareResources(
                v1.NodePrepareResourcesRequest(claims=[v1.Claim(namespace="ns", name="c", uid="late")]), timeout=0.3
            )
        other.close()
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        resp = stub.NodePrepareResources(
            v1.NodePrepareResourcesRequest(claims=[v1.Claim(namespace="ns", name="c", uid="next")]), timeout=45
        )
        assert resp.claims["next"].error == ""
    assert prep.calls == ["prepare:next"]
