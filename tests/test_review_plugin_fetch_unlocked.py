"""Review fix: claims are read from the API server before the serialization lock is taken."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from plugin_support import channel, running_server, short_dir
from prepare_helpers import FakeClaimSource, claim, make_preparer, ref, result

from snn_dra.api.kubelet.dra.v1 import api_pb2 as v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as v1_grpc
from snn_dra.driver.plugin.preparer import TwoPhasePreparer


class _SlowSource(FakeClaimSource):
    """A claim source whose reads hang until released (an API server that answers slowly)."""

    def __init__(self, *claims: Mapping[str, Any]) -> None:
        super().__init__(*claims)
        self.reading = threading.Event()
        self.release = threading.Event()

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        self.reading.set()
        assert self.release.wait(30)
        return super().get(namespace, name)


@pytest.fixture
def base() -> Iterator[Path]:
    with short_dir() as path:
        yield path


def _claim_msg(obj: Mapping[str, Any]) -> v1.Claim:
    r = ref(obj)
    return v1.Claim(namespace=r.namespace, name=r.name, uid=r.uid)


def test_a_slow_claim_read_does_not_hold_the_lock(base: Path) -> None:
    slow = claim("slow", results=[result("n1-c0-group-0")])
    source = _SlowSource(slow)
    preparer = make_preparer(base / "driver", source)
    assert isinstance(preparer, TwoPhasePreparer)
    answers: list[Any] = []
    with running_server(base, preparer) as server, channel(server.paths.dra) as ch:
        stub = v1_grpc.DRAPluginStub(ch)

        def prepare() -> None:
            answers.append(stub.NodePrepareResources(v1.NodePrepareResourcesRequest(claims=[_claim_msg(slow)])))

        t = threading.Thread(target=prepare)
        t.start()
        try:
            assert source.reading.wait(10)
            other = claim("other")
            un = stub.NodeUnprepareResources(
                v1.NodeUnprepareResourcesRequest(claims=[_claim_msg(other)]), timeout=5
            )  # would hit DEADLINE_EXCEEDED if the read held the lock
            assert un.claims[ref(other).uid].error == ""
        except grpc.RpcError as exc:
            pytest.fail(f"Unprepare waited for a claim read: {exc.code()} {exc.details()}")
        finally:
            source.release.set()
            t.join(30)
    assert answers and answers[0].claims[ref(slow).uid].error == ""
    assert [d.device_name for d in answers[0].claims[ref(slow).uid].devices] == ["n1-c0-group-0"]


def test_prepare_still_does_both_phases(tmp_path: Path) -> None:
    c1 = claim("c1", results=[result("n1-c0-group-0")])
    p = make_preparer(tmp_path, FakeClaimSource(c1))
    fetched = p.fetch([ref(c1)])
    assert not fetched.results and [r for r, _ in fetched.claims] == [ref(c1)]
    assert not (tmp_path / "state").exists(), "fetch touches no local state"
    assert p.prepare_fetched(fetched) == p.prepare([ref(c1)])
