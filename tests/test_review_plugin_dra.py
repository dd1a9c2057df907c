"""Review fix: a malformed claim in a kubelet request gets its own error instead of failing the whole call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import Dev, FixedPreparer, Result, channel, running_server, short_dir

from snn_dra.api.kubelet.dra.v1 import api_pb2 as v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as v1beta1
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as v1beta1_grpc


@pytest.fixture
def base() -> Iterator[Path]:
    with short_dir() as path:
        yield path


def _preparer() -> FixedPreparer:
    device = Dev(("r",), "node-a", "chip0", ("snn.dra.dev/snn=a",))
    return FixedPreparer(results={"uid-a": Result(devices=(device,))})


def test_prepare_answers_good_claims_and_gives_malformed_ones_an_error(base: Path) -> None:
    prep = _preparer()
    claims = [
        v1.Claim(namespace="ns", name="good", uid="uid-a"),
        v1.Claim(namespace="ns", name="", uid="uid-b"),  # name missing
        v1.Claim(namespace="", name="c", uid=""),  # namespace and uid missing
    ]
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        resp = v1_grpc.DRAPluginStub(ch).NodePrepareResources(v1.NodePrepareResourcesRequest(claims=claims))
    assert set(resp.claims) == {"uid-a", "uid-b", ""}
    assert not resp.claims["uid-a"].error and [d.device_name for d in resp.claims["uid-a"].devices] == ["chip0"]
    assert "claims[1] (ns/?): name must be set" in resp.claims["uid-b"].error
    assert "claims[2] (?/c): namespace, uid must be set" in resp.claims[""].error
    assert prep.calls == [("prepare", ["uid-a"])], "only well-formed claims reach the preparer"


def test_prepare_with_only_malformed_claims_does_not_call_the_preparer(base: Path) -> None:
    prep = _preparer()
    claims = [v1beta1.Claim(namespace="ns", name="x", uid=""), v1beta1.Claim(namespace="ns", name="y", uid="")]
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        resp = v1beta1_grpc.DRAPluginStub(ch).NodePrepareResources(v1beta1.NodePrepareResourcesRequest(claims=claims))
    error = resp.claims[""].error
    assert "claims[0] (ns/x)" in error and "claims[1] (ns/y)" in error
    assert prep.calls == []


def test_unprepare_needs_only_the_uid(base: Path) -> None:
    prep = _preparer()
    claims = [v1.Claim(namespace="", name="", uid="uid-a"), v1.Claim(namespace="ns", name="z", uid="")]
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        resp = v1_grpc.DRAPluginStub(ch).NodeUnprepareResources(v1.NodeUnprepareResourcesRequest(claims=claims))
    assert resp.claims["uid-a"].error == ""
    assert "claims[1] (ns/z): uid must be set" in resp.claims[""].error
    assert prep.calls == [("unprepare", ["uid-a"])]
