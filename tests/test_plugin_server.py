"""PluginServer in-process, called over its unix sockets with clients built from the .proto files.

The Preparer here is a fixed-result test double handed to the server object (never via the CLI), so these tests
pin the gRPC layer's own behaviour: every claim answered, per-claim errors, base request names, share_id only in
v1, gRPC errors only for overall failures, serialization across instances and deadlines, health streams.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from plugin_support import Dev, FixedPreparer, Result, channel, running_server, short_dir

from snn_dra.api.kubelet.dra.v1 import api_pb2 as v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as v1beta1
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as v1beta1_grpc
from snn_dra.api.kubelet.dra_health.v1 import api_pb2 as h1
from snn_dra.api.kubelet.dra_health.v1 import api_pb2_grpc as h1_grpc
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2 as h1a1
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2_grpc as h1a1_grpc
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc
from snn_dra.driver.plugin.health import DeviceHealthEntry, HealthStatus
from snn_dra.driver.plugin.lock import SerializationLock
from snn_dra.driver.plugin.server import PluginConfig, PluginServer


@pytest.fixture
def base() -> Iterator[Path]:
    with short_dir() as path:
        yield path


CDI_A = "snn.dra.dev/claim=uid-a-chip0"
CDI_B = "snn.dra.dev/claim=uid-a-router"


def _preparer() -> FixedPreparer:
    return FixedPreparer(
        results={
            "uid-a": Result(
                devices=(
                    Dev(("snn/big", "snn/small", "other"), "node-a", "chip0", (CDI_A,)),
                    Dev(("router",), "node-a", "router0", (CDI_B,), share_id="4f1c"),
                )
            ),
            "uid-b": Result(error="chip0 is unhealthy: taint snn.dra.dev/unhealthy"),
        }
    )


def _claims(module: object, *uids: str) -> list[object]:
    return [module.Claim(namespace="ns", name=f"claim-{u}", uid=u) for u in uids]  # type: ignore[attr-defined]


def test_v1_prepare_answers_every_claim(base: Path) -> None:
    prep = _preparer()
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        stub = v1_grpc.DRAPluginStub(ch)
        resp = stub.NodePrepareResources(
            v1.NodePrepareResourcesRequest(claims=_claims(v1, "uid-a", "uid-b", "uid-missing")), timeout=45
        )
    assert set(resp.claims) == {"uid-a", "uid-b", "uid-missing"}
    a = resp.claims["uid-a"]
    assert a.error == ""
    assert [list(d.request_names) for d in a.devices] == [["snn", "other"], ["router"]]
    assert [(d.pool_name, d.device_name, list(d.cdi_device_ids)) for d in a.devices] == [
        ("node-a", "chip0", [CDI_A]),
        ("node-a", "router0", [CDI_B]),
    ]
    assert not a.devices[0].HasField("share_id")
    assert a.devices[1].HasField("share_id") and a.devices[1].share_id == "4f1c"
    assert resp.claims["uid-b"].error.startswith("chip0 is unhealthy")
    assert list(resp.claims["uid-b"].devices) == []
    assert "no result for claim ns/claim-uid-missing" in resp.claims["uid-missing"].error
    assert prep.calls == [("prepare", ["uid-a", "uid-b", "uid-missing"])]


def test_v1beta1_prepare_and_unprepare(base: Path) -> None:
    prep = _preparer()
    prep.unprepare_errors["uid-b"] = "cdi spec busy"
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        stub = v1beta1_grpc.DRAPluginStub(ch)
        resp = stub.NodePrepareResources(v1beta1.NodePrepareResourcesRequest(claims=_claims(v1beta1, "uid-a")))
        un = stub.NodeUnprepareResources(
            v1beta1.NodeUnprepareResourcesRequest(claims=_claims(v1beta1, "uid-a", "uid-b"))
        )
    devices = resp.claims["uid-a"].devices
    assert [d.device_name for d in devices] == ["chip0", "router0"]
    assert "share_id" not in v1beta1.Device.DESCRIPTOR.fields_by_name
    # The v1beta1 bytes carry no field 5, even for the shared device.
    assert v1.Device.FromString(devices[1].SerializeToString()).HasField("share_id") is False
    assert {uid: r.error for uid, r in un.claims.items()} == {"uid-a": "", "uid-b": "cdi spec busy"}
    assert prep.calls[-1] == ("unprepare", ["uid-a", "uid-b"])


def test_v1_unprepare_has_entry_for_every_claim(base: Path) -> None:
    with running_server(base, _preparer()) as server, channel(server.paths.dra) as ch:
        un = v1_grpc.DRAPluginStub(ch).NodeUnprepareResources(
            v1.NodeUnprepareResourcesRequest(claims=_claims(v1, "gone-1", "gone-2"))
        )
    assert {uid: r.error for uid, r in un.claims.items()} == {"gone-1": "", "gone-2": ""}


def test_preparer_crash_is_a_grpc_error_and_malformed_claims_get_their_own_error(base: Path) -> None:
    prep = _preparer()
    prep.raise_on_prepare = RuntimeError("checkpoint unreadable")
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        stub = v1_grpc.DRAPluginStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.NodePrepareResources(v1.NodePrepareResourcesRequest(claims=_claims(v1, "uid-a")))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "checkpoint unreadable" in err.value.details()
        resp = stub.NodePrepareResources(v1.NodePrepareResourcesRequest(claims=[v1.Claim(namespace="ns", name="c")]))
        assert "claims[0] (ns/c): uid must be set" in resp.claims[""].error


def test_deadline_bounds_the_wait_for_the_lock(base: Path) -> None:
    prep = _preparer()
    with running_server(base, prep) as server, channel(server.paths.dra) as ch:
        other = SerializationLock(server.paths.lock)  # another plugin instance on the node holds the file lock
        with other.hold():
            with pytest.raises(grpc.RpcError) as err:
                v1_grpc.DRAPluginStub(ch).NodePrepareResources(
                    v1.NodePrepareResourcesRequest(claims=_claims(v1, "uid-a")), timeout=0.5
                )
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        other.close()
        resp = v1_grpc.DRAPluginStub(ch).NodePrepareResources(
            v1.NodePrepareResourcesRequest(claims=_claims(v1, "uid-a")), timeout=45
        )
    assert resp.claims["uid-a"].error == ""


def test_two_instances_serialize_through_the_file_lock(base: Path) -> None:
    """Rolling update: two servers on one plugin dir; their preparers must never run at the same time."""
    marker = base / "inside"
    entered = threading.Event()
    release = threading.Event()
    overlaps: list[str] = []

    def critical(kind: str) -> None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            overlaps.append(kind)
            return
        os.close(fd)
        entered.set()
        if not release.is_set():
            release.wait(30)
        marker.unlink()

    pa, pb = _preparer(), _preparer()
    pa.hook = pb.hook = critical
    with (
        running_server(base, pa, pod_uid="pod-old") as a,
        running_server(base, pb, pod_uid="pod-new") as b,
        channel(a.paths.dra) as cha,
        channel(b.paths.dra) as chb,
    ):
        assert a.paths.lock == b.paths.lock and a.paths.dra != b.paths.dra
        first = v1_grpc.DRAPluginStub(cha).NodePrepareResources.future(
            v1.NodePrepareResourcesRequest(claims=_claims(v1, "uid-a")), timeout=45
        )
        assert entered.wait(30)
        with pytest.raises(grpc.RpcError) as err:  # b cannot get in while a's preparer runs
            v1_grpc.DRAPluginStub(chb).NodePrepareResources(
                v1.NodePrepareResourcesRequest(claims=_claims(v1, "uid-a")), timeout=0.5
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert pb.calls == []
        release.set()
        assert first.result(timeout=30).claims["uid-a"].error == ""
        futures = [
            v1_grpc.DRAPluginStub(ch).NodeUnprepareResources.future(
                v1.NodeUnprepareResourcesRequest(claims=_claims(v1, f"u{i}")), timeout=45
            )
            for i in range(12)
            for ch in (cha, chb)
        ]
        for f in futures:
            f.result(timeout=45)
    assert overlaps == []
    assert len(pa.calls) + len(pb.calls) == 1 + 24


def test_registration_info_and_status(base: Path) -> None:
    with running_server(base, _preparer()) as server, channel(server.paths.registration) as ch:
        stub = reg_grpc.RegistrationStub(ch)
        info = stub.GetInfo(reg.InfoRequest(), timeout=1)
        assert (info.type, info.name, info.endpoint) == ("DRAPlugin", "snn.dra.dev", str(server.paths.dra))
        assert list(info.supported_versions) == [
            "v1.DRAPlugin",
            "v1beta1.DRAPlugin",
            "v1.DRAResourceHealth",
            "v1alpha1.DRAResourceHealth",
        ]
        stub.NotifyRegistrationStatus(reg.RegistrationStatus(plugin_registered=True))
        assert server.registration.state.registered is True
        with pytest.raises(grpc.RpcError) as err:
            stub.NotifyRegistrationStatus(reg.RegistrationStatus(plugin_registered=False, error="duplicate endpoint"))
        assert err.value.code() == grpc.StatusCode.UNKNOWN
        assert err.value.details() == "failed registration process: duplicate endpoint"
        assert server.registration.state.registered is False
        assert server.registration.state.error == "duplicate endpoint"


class _Devices:
    def __init__(self) -> None:
        self.entries = [
            DeviceHealthEntry("node-a", "chip0", HealthStatus.HEALTHY, 1_700_000_000, 30),
            DeviceHealthEntry("node-a", "chip1", HealthStatus.UNKNOWN, 1_700_000_000),
        ]

    def __call__(self) -> list[DeviceHealthEntry]:
        return list(self.entries)


@pytest.mark.parametrize(("pb", "grpc_mod"), [(h1, h1_grpc), (h1a1, h1a1_grpc)], ids=["v1", "v1alpha1"])
def test_health_stream_full_list_at_connect_and_on_change(base: Path, pb: object, grpc_mod: object) -> None:
    devices = _Devices()
    with running_server(base, _preparer(), devices) as server, channel(server.paths.dra) as ch:
        stream = grpc_mod.DRAResourceHealthStub(ch).NodeWatchResources(pb.NodeWatchResourcesRequest(), timeout=60)  # type: ignore[attr-defined]
        first = next(stream)
        assert [(d.device.pool_name, d.device.device_name, d.health) for d in first.devices] == [
            ("node-a", "chip0", pb.HEALTHY),  # type: ignore[attr-defined]
            ("node-a", "chip1", pb.UNKNOWN),  # type: ignore[attr-defined]
        ]
        assert first.devices[0].last_updated_time == 1_700_000_000
        assert first.devices[0].health_check_timeout_seconds == 30
        devices.entries[1] = DeviceHealthEntry(
            "node-a", "chip1", HealthStatus.UNHEALTHY, 1_700_000_100, message="x" * 2000
        )
        server.health.notify_changed()
        second = next(stream)
        assert len(second.devices) == 2  # the complete list again, not a delta
        chip1 = second.devices[1]
        assert chip1.health == pb.UNHEALTHY  # type: ignore[attr-defined]
        assert len(chip1.message) == 1024 and chip1.message.endswith("...")
        stream.cancel()


def test_health_stream_resends_every_interval(base: Path) -> None:
    devices = _Devices()
    with running_server(base, _preparer(), devices, health_interval=0.2) as server, channel(server.paths.dra) as ch:
        stream = h1_grpc.DRAResourceHealthStub(ch).NodeWatchResources(h1.NodeWatchResourcesRequest(), timeout=60)
        started = time.monotonic()
        snapshots = [next(stream) for _ in range(3)]  # no change notifications: only the interval re-sends
        assert time.monotonic() - started >= 0.35
        assert all(len(s.devices) == 2 for s in snapshots)
        stream.cancel()


def test_stop_ends_health_streams_and_removes_sockets(base: Path) -> None:
    with running_server(base, _preparer(), _Devices()) as server:
        dra, registration = server.paths.dra, server.paths.registration
        assert dra.stat().st_mode & 0o777 == 0o600
        assert registration.stat().st_mode & 0o777 == 0o600
        assert dra.parent.stat().st_mode & 0o777 == 0o750
        ch = channel(dra)
        stream = h1_grpc.DRAResourceHealthStub(ch).NodeWatchResources(h1.NodeWatchResourcesRequest(), timeout=60)
        next(stream)
        started = time.monotonic()
    assert time.monotonic() - started < 1.5  # the open stream did not hold the 2 s stop grace
    assert not dra.exists() and not registration.exists()
    ch.close()


def test_failing_health_provider_ends_the_stream_with_unavailable(base: Path) -> None:
    calls = {"n": 0}

    def provider() -> list[DeviceHealthEntry]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("sysfs unreadable")
        return [DeviceHealthEntry("node-a", "chip0", HealthStatus.HEALTHY, 1_700_000_000)]

    with running_server(base, _preparer(), provider) as server, channel(server.paths.dra) as ch:
        stream = h1a1_grpc.DRAResourceHealthStub(ch).NodeWatchResources(h1a1.NodeWatchResourcesRequest(), timeout=60)
        assert len(next(stream).devices) == 1
        server.health.notify_changed()
        with pytest.raises(grpc.RpcError) as err:
            next(stream)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "sysfs unreadable" in err.value.details()


def test_failing_background_task_stops_the_plugin_with_exit_code_1(base: Path) -> None:
    seen: dict[str, object] = {}

    async def publisher(server: PluginServer) -> None:
        seen["serving"] = server.paths.dra.is_socket()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    async def health_watch(server: PluginServer) -> None:
        await asyncio.sleep(0)
        raise OSError("backend gone")

    config = PluginConfig(plugin_dir=base / "p", registry_dir=base / "r", stop_grace_seconds=1)
    server = PluginServer(config, _preparer())
    code = asyncio.run(server.run_until_signal([publisher, health_watch]))
    assert code == 1
    assert seen == {"serving": True, "cancelled": True}
    assert not server.paths.dra.exists() and not server.paths.registration.exists()
