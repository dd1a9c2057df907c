"""Kubelet emulation, registration side: discovery, GetInfo validation, version picking, health streams.

The plugin here is the real `snn-dra kubelet-plugin` process or an in-process PluginServer; refusals are
exercised with a small hand-written registration server that returns what a broken plugin would.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from plugin_support import FixedPreparer, LoopThread, channel, plugin_process, running_server, short_dir

from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc
from snn_dra.driver.embedded.kubelet import KubeletEmulator, RegistrationRejectedError, validate_plugin_info
from snn_dra.driver.embedded.store import Store
from snn_dra.driver.plugin.health import DeviceHealthEntry, HealthStatus

DRIVER = "snn.dra.dev"


@pytest.fixture
def base() -> Iterator[Path]:
    with short_dir() as path:
        yield path


@pytest.fixture
def kubelet(base: Path) -> Iterator[KubeletEmulator]:
    emu = KubeletEmulator(Store(), "node-a", base / "plugins_registry", health_retry_seconds=0.2).start()
    yield emu
    emu.stop()


def _info(**kw: object) -> reg.PluginInfo:
    fields: dict[str, object] = {
        "type": "DRAPlugin",
        "name": DRIVER,
        "endpoint": "/var/lib/kubelet/plugins/snn.dra.dev/dra.sock",
        "supported_versions": ["v1.DRAPlugin", "v1beta1.DRAPlugin", "v1alpha1.DRAResourceHealth"],
    }
    fields.update(kw)
    return reg.PluginInfo(**fields)  # type: ignore[arg-type]


ROOT = Path("/var/lib/kubelet")


def test_validation_accepts_and_picks_like_the_kubelet() -> None:
    assert validate_plugin_info(_info(), ROOT) == ("v1.DRAPlugin", "v1alpha1.DRAResourceHealth")
    both = _info(supported_versions=["v1beta1.DRAPlugin", "v1alpha1.DRAResourceHealth", "v1.DRAResourceHealth"])
    assert validate_plugin_info(both, ROOT) == ("v1beta1.DRAPlugin", "v1.DRAResourceHealth")
    assert validate_plugin_info(_info(supported_versions=["v9.DRAPlugin", "v1.DRAPlugin"]), ROOT)[0] == "v1.DRAPlugin"
    assert validate_plugin_info(_info(supported_versions=["v1.DRAPlugin"]), ROOT)[1] is None
    registry_endpoint = _info(endpoint="/var/lib/kubelet/plugins_registry/snn.dra.dev-reg.sock")
    assert validate_plugin_info(registry_endpoint, ROOT)[0] == "v1.DRAPlugin"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "CSIPlugin"}, "not DRAPlugin"),
        ({"name": "x" * 64}, "at most 63"),
        ({"name": "Bad_Name"}, "DNS subdomain"),
        ({"endpoint": ""}, "endpoint is empty"),
        ({"endpoint": "plugins/dra.sock"}, "not an absolute path"),
        ({"endpoint": "/var/lib/kubelet/plugins/../../../tmp/dra.sock"}, "outside the kubelet root dir"),
        ({"endpoint": "/var/lib/kubelet/" + "p" * 100 + ".sock"}, "longer than 108 bytes"),
        ({"supported_versions": []}, "supported_versions is empty"),
        ({"supported_versions": ["v1alpha4.Node", "v1.DRAResourceHealth"]}, "none of the plugin's services"),
    ],
)
def test_validation_rejects_untrusted_input(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(RegistrationRejectedError, match=reason):
        validate_plugin_info(_info(**fields), ROOT)


def test_registers_the_real_plugin_process_and_follows_its_socket(base: Path, kubelet: KubeletEmulator) -> None:
    with plugin_process(base) as plugin:
        assert kubelet.wait_for(lambda k: DRIVER in k.registered_plugins())
        (endpoint,) = kubelet.registered_plugins()[DRIVER]
        assert endpoint.endpoint == str(plugin.dra)
        assert endpoint.registration_socket == str(plugin.registration)
        assert (endpoint.dra_service, endpoint.health_service) == ("v1.DRAPlugin", "v1.DRAResourceHealth")
        assert plugin.terminate() == 0
        assert kubelet.wait_for(lambda k: DRIVER not in k.registered_plugins())
    assert "kubelet registered snn.dra.dev" in (base / "plugin.log").read_text()


def test_plugin_sees_registration_status_and_health_reaches_the_kubelet(base: Path, kubelet: KubeletEmulator) -> None:
    entries = [DeviceHealthEntry("node-a", "chip0", HealthStatus.HEALTHY, 1_700_000_000, 30, "ok")]
    with running_server(base, FixedPreparer(), lambda: list(entries)) as server:
        lt: LoopThread = server._test_loop  # type: ignore[attr-defined]
        status = lt.run(asyncio.wait_for(server.registration.wait_for_status(), 30))
        assert status.registered is True
        assert kubelet.wait_for(lambda k: ("node-a", "chip0") in k.health(DRIVER))
        assert kubelet.health(DRIVER)[("node-a", "chip0")].health == "Healthy"
        entries[0] = DeviceHealthEntry("node-a", "chip0", HealthStatus.UNHEALTHY, 1_700_000_050, 30, "link down")
        server.health.notify_changed()
        assert kubelet.wait_for(lambda k: k.health(DRIVER).get(("node-a", "chip0")).health == "Unhealthy")  # type: ignore[union-attr]
        assert kubelet.health(DRIVER)[("node-a", "chip0")].message == "link down"
    assert kubelet.wait_for(lambda k: k.health(DRIVER) == {})  # stream gone: the health cache is cleared


class _BrokenRegistration(reg_grpc.RegistrationServicer):
    def __init__(self, info: reg.PluginInfo) -> None:
        self.info = info
        self.statuses: list[tuple[bool, str]] = []

    async def GetInfo(self, request: reg.InfoRequest, context: object) -> reg.PluginInfo:
        return self.info

    async def NotifyRegistrationStatus(
        self, request: reg.RegistrationStatus, context: object
    ) -> reg.RegistrationStatusResponse:
        self.statuses.append((request.plugin_registered, request.error))
        return reg.RegistrationStatusResponse()


def test_refused_plugin_is_told_why_and_dot_files_are_ignored(base: Path, kubelet: KubeletEmulator) -> None:
    registry = base / "plugins_registry"
    registry.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as hidden:
        hidden.bind(str(registry / ".hidden-reg.sock"))  # a dot file: the kubelet never dials it
        broken = _BrokenRegistration(_info(endpoint="relative/dra.sock"))
        lt = LoopThread()
        path = registry / "broken.example.com-reg.sock"

        async def serve() -> grpc.aio.Server:
            server = grpc.aio.server()
            reg_grpc.add_RegistrationServicer_to_server(broken, server)
            server.add_insecure_port(f"unix://{path}")
            await server.start()
            return server

        server = lt.run(serve())
        try:
            assert kubelet.wait_for(lambda k: str(path) in k.rejected_registrations())
            assert "not an absolute path" in kubelet.rejected_registrations()[str(path)]
            assert kubelet.wait_for(lambda k: bool(broken.statuses))
            registered, error = broken.statuses[0]
            assert registered is False and "not an absolute path" in error
            assert kubelet.registered_plugins() == {}
            assert str(registry / ".hidden-reg.sock") not in kubelet.rejected_registrations()
        finally:
            lt.run(server.stop(0))
            lt.close()


def test_two_instances_both_registered_newest_used(base: Path, kubelet: KubeletEmulator) -> None:
    with (
        running_server(base, FixedPreparer(), pod_uid="old") as old,
        running_server(base, FixedPreparer(), pod_uid="new") as new,
    ):
        assert kubelet.wait_for(lambda k: len(k.registered_plugins().get(DRIVER, [])) == 2)
        assert {e.endpoint for e in kubelet.registered_plugins()[DRIVER]} == {str(old.paths.dra), str(new.paths.dra)}
        with channel(old.paths.registration) as ch:
            reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest(), timeout=1)
