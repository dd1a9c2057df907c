"""Review fixes: API calls are bounded in time, and the plugin's client keeps TCP keepalive on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from embedded_fixtures import embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client

from snn_dra.driver.cli.node import api_client_for, server_profile
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.kubejson import DEFAULT_TIMEOUT, KubeJSON


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a half-open API server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(5)
    for c in accepted:
        c.close()
    srv.close()


def test_the_default_timeout_is_finite() -> None:
    api = client.ApiClient(client.Configuration())
    try:
        kube = KubeJSON(api)
        assert kube.timeout == DEFAULT_TIMEOUT
        connect, read = DEFAULT_TIMEOUT
        assert 0 < connect <= 10 and 0 < read <= 60
    finally:
        api.close()


def test_a_request_to_a_server_that_never_answers_returns(silent_server: int) -> None:
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{silent_server}"
    cfg.retries = 0
    api = client.ApiClient(cfg)
    kube = KubeJSON(api, timeout=(1.0, 0.3))
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def call() -> None:
        try:
            kube.get("/apis/resource.k8s.io/v1/resourceslices")
            outcome.append(None)
        except BaseException as exc:  # any error is the expected outcome
            outcome.append(exc)
        done.set()

    threading.Thread(target=call, daemon=True).start()
    try:
        assert done.wait(30), "the request hung on a server that never answers"
        assert outcome and outcome[0] is not None
    finally:
        api.close()


def test_the_plugin_client_has_tcp_keepalive(embedded_server: EmbeddedApiServer) -> None:  # noqa: F811
    kubeconfig = Path(embedded_server.kubeconfig_path)
    api = api_client_for(kubeconfig)
    try:
        assert api.configuration.keep_alive is True
        options = api.rest_client.pool_manager.connection_pool_kw.get("socket_options") or []
        assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
        assert server_profile(api) == "1.37"  # the client still authenticates and talks TLS
    finally:
        api.close()
