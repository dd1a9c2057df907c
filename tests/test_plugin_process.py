"""The real `snn-dra kubelet-plugin` process, driven over its unix sockets the way a kubelet does."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from plugin_support import channel, plugin_process, short_dir

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
from snn_dra.driver.plugin.sockets import registration_socket_name

POD_UID = "7d3f6a2b-1c4e-4f5a-8b9c-0d1e2f3a4b5c"


@pytest.fixture
def base() -> Iterator[Path]:
    with short_dir() as path:
        yield path


def test_serves_registration_dra_and_health_then_cleans_up_on_sigterm(base: Path) -> None:
    with plugin_process(base) as plugin:
        assert plugin.dra == base / "plugins/snn.dra.dev/dra.sock"
        assert plugin.registration == base / "plugins_registry/snn.dra.dev-reg.sock"
        for path in (plugin.dra, plugin.registration):
            assert path.is_socket() and path.stat().st_mode & 0o777 == 0o600
        with channel(plugin.registration) as ch:
            stub = reg_grpc.RegistrationStub(ch)
            info = stub.GetInfo(reg.InfoRequest(), timeout=1)
            assert (info.type, info.name, info.endpoint) == ("DRAPlugin", "snn.dra.dev", str(plugin.dra))
            assert list(info.supported_versions) == [
                "v1.DRAPlugin",
                "v1beta1.DRAPlugin",
                "v1.DRAResourceHealth",
                "v1alpha1.DRAResourceHealth",
            ]
            stub.NotifyRegistrationStatus(reg.RegistrationStatus(plugin_registered=True), timeout=1)
            with pytest.raises(grpc.RpcError) as err:
                stub.NotifyRegistrationStatus(reg.RegistrationStatus(plugin_registered=False, error="bad name"))
            assert err.value.code() == grpc.StatusCode.UNKNOWN
            assert err.value.details() == "failed registration process: bad name"
        with channel(plugin.dra) as ch:
            # Whatever the preparer decides for unknown claims, the kubelet must get one entry per claim.
            claims = [v1.Claim(namespace="ns", name="c1", uid="u1"), v1.Claim(namespace="ns", name="c2", uid="u2")]
            prep = v1_grpc.DRAPluginStub(ch).NodePrepareResources(
                v1.NodePrepareResourcesRequest(claims=claims), timeout=45
            )
            assert set(prep.claims) == {"u1", "u2"}
            assert all(r.error and not r.devices for r in prep.claims.values())
            beta = v1beta1_grpc.DRAPluginStub(ch)
            un = beta.NodeUnprepareResources(
                v1beta1.NodeUnprepareResourcesRequest(claims=[v1beta1.Claim(namespace="ns", name="c1", uid="u1")]),
                timeout=45,
            )
            assert set(un.claims) == {"u1"}
            for pb, grpc_mod in ((h1, h1_grpc), (h1a1, h1a1_grpc)):
                stream = grpc_mod.DRAResourceHealthStub(ch).NodeWatchResources(  # type: ignore[attr-defined]
                    pb.NodeWatchResourcesRequest(), timeout=30  # type: ignore[attr-defined]
                )
                first = next(stream)
                assert isinstance(first, pb.NodeWatchResourcesResponse)  # type: ignore[attr-defined]
                stream.cancel()
        assert plugin.terminate() == 0
        assert not plugin.dra.exists() and not plugin.registration.exists()
        assert "rid=1 v1.NodePrepareResources claims=[ns/c1(u1), ns/c2(u2)]" in plugin.log.read_text()


def test_stale_sockets_are_replaced_at_start(base: Path) -> None:
    plugin_dir, registry_dir = base / "plugins/snn.dra.dev", base / "plugins_registry"
    plugin_dir.mkdir(parents=True)
    registry_dir.mkdir(parents=True)
    stale_reg = registry_dir / "snn.dra.dev-reg.sock"
    with socket.socket(socket.AF_UNIX) as s:  # a dead socket: bound, never listening, its owner gone
        s.bind(str(stale_reg))
    (plugin_dir / "dra.sock").write_text("junk")
    other = registry_dir / "other.driver-reg.sock"  # another plugin's socket is never touched
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(other))
    with plugin_process(base) as plugin:
        assert plugin.dra.is_socket()
        with channel(plugin.registration) as ch:
            assert reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest(), timeout=1).name == "snn.dra.dev"
        assert plugin.terminate() == 0
    assert other.is_socket()
    assert sorted(p.name for p in registry_dir.iterdir()) == ["other.driver-reg.sock"]


def test_rolling_update_names_from_pod_uid_env(base: Path) -> None:
    with plugin_process(base, env={"POD_UID": POD_UID}) as plugin:
        assert plugin.dra.name == f"dra-{POD_UID}.sock"
        assert plugin.registration.name == f"snn.dra.dev-{POD_UID}-reg.sock"
        with channel(plugin.registration) as ch:
            assert reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest(), timeout=1).endpoint == str(plugin.dra)
        assert plugin.terminate() == 0
        assert not plugin.registration.exists()


def test_rolling_update_hashed_registration_name_for_long_registry_dir(base: Path) -> None:
    form1 = f"snn.dra.dev-{POD_UID}-reg.sock"
    registry_dir = base / ("r" * (108 - len(str(base)) - 2 - len(form1) + 1))  # form 1 would be 109 bytes
    assert len(f"{registry_dir}/{form1}") == 109
    expected = registration_socket_name(registry_dir, "snn.dra.dev", POD_UID)
    assert expected.startswith("snn.dra.dev-") and POD_UID not in expected
    with plugin_process(base, "--pod-uid", POD_UID, registry_dir=registry_dir) as plugin:
        assert plugin.registration == registry_dir / expected
        assert plugin.registration.is_socket()
        assert plugin.terminate() == 0


def test_two_rolling_update_instances_serve_side_by_side(base: Path) -> None:
    with (
        plugin_process(base, "--pod-uid", "old-pod") as old,
        plugin_process(base, "--pod-uid", "new-pod") as new,
    ):
        assert old.dra != new.dra and old.registration != new.registration
        for p in (old, new):
            with channel(p.registration) as ch:
                assert reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest(), timeout=1).endpoint == str(p.dra)
        assert old.terminate() == 0
        assert not old.dra.exists() and new.dra.is_socket() and new.registration.is_socket()
        with channel(new.registration) as ch:
            reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest(), timeout=1)


def test_missing_node_name_is_a_clear_error(base: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with status 2"), plugin_process(base, "--node-name", ""):
        pass
    assert "--node-name" in (base / "plugin.log").read_text()


def test_sigint_is_a_clean_exit_too(base: Path) -> None:
    with plugin_process(base) as plugin:
        plugin.proc.send_signal(signal.SIGINT)
        assert plugin.proc.wait(timeout=30) == 0
        assert not plugin.dra.exists() and not plugin.registration.exists()
