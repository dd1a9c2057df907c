"""The liveness service: grpc.health.v1 on TCP, SERVING only while the plugin's own sockets answer real calls."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from plugin_support import FixedPreparer, LoopThread, plugin_process, short_dir

from snn_dra.driver.plugin.server import LivenessPortError, PluginConfig, PluginServer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@contextlib.contextmanager
def _server(base: Path, port: int = 0) -> Iterator[tuple[PluginServer, LoopThread]]:
    lt = LoopThread()
    config = PluginConfig(
        plugin_dir=base / "plugins" / "snn.dra.dev",
        registry_dir=base / "plugins_registry",
        stop_grace_seconds=2,
        health_port=port,
    )
    server = PluginServer(config, FixedPreparer())
    try:
        lt.run(server.start())
        yield server, lt
    finally:
        lt.run(server.stop())
        lt.close()


def _check(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        status: int = (
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        )
        return status


def test_serving_while_both_sockets_answer_and_not_serving_when_one_is_gone() -> None:
    with short_dir() as base, _server(base) as (server, _):
        assert server.health_port and f"health={server.health_port}" in server.ready_line()
        prep = server.claims._preparer
        assert _check(server.health_port) == SERVING
        assert _check(server.health_port, "snn.dra.dev") == SERVING
        assert isinstance(prep, FixedPreparer) and prep.calls == [], "the probe's empty call reaches no claim"
        # The DRA socket file vanishes (the kubelet could no longer reach the plugin either).
        server.paths.dra.rename(server.paths.dra.with_suffix(".moved"))
        assert _check(server.health_port) == NOT_SERVING
        server.paths.dra.with_suffix(".moved").rename(server.paths.dra)
        assert _check(server.health_port) == SERVING
        server.paths.registration.unlink()  # deregistered behind our back
        assert _check(server.health_port) == NOT_SERVING


def test_not_serving_when_the_dra_service_stops_answering() -> None:
    with short_dir() as base, _server(base) as (server, lt):
        assert server.health_port
        assert server._dra_server is not None
        lt.run(server._dra_server.stop(0))  # the socket file stays, nothing answers behind it
        assert _check(server.health_port) == NOT_SERVING


def test_an_unknown_service_is_not_found() -> None:
    with short_dir() as base, _server(base) as (server, _):
        assert server.health_port
        with pytest.raises(grpc.RpcError) as err:
            _check(server.health_port, "grpc.other.Service")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_port_in_use_is_a_clear_error() -> None:
    holder = socket.socket(socket.AF_INET6)
    holder.bind(("::", 0))
    holder.listen(1)
    try:
        with (
            short_dir() as base,
            pytest.raises(LivenessPortError, match="choose another --health-port"),
            _server(base, holder.getsockname()[1]),
        ):
            pass
    finally:
        holder.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_real_plugin_process_serves_it_with_the_cli_flag(tmp_path: Path) -> None:
    port = _free_port()
    with short_dir() as base, plugin_process(base, f"--health-port={port}") as plugin:
        assert _check(port) == SERVING
        plugin.terminate()
    with pytest.raises(grpc.RpcError):
        _check(port)
