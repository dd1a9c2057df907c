"""Pytest plugin: a running embedded API server and an official-client ``ApiClient`` bound to it.

Enable with ``pytest_plugins = ["embedded_fixtures"]`` in ``tests/conftest.py`` (tests/ is on sys.path), or in a
test module; importing the fixtures by name also works.
``embedded_server_factory(profile=..., feature_gates=..., history_size=...)`` starts more (stopped at teardown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from embedded_api_objects import api_client_for
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

__all__ = ["ServerFactory", "api_client_for", "embedded_api_client", "embedded_server", "embedded_server_factory"]

ServerFactory = Callable[..., EmbeddedApiServer]


@pytest.fixture
def embedded_server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[EmbeddedApiServer] = []

    def make(**kwargs: Any) -> EmbeddedApiServer:
        kwargs.setdefault("state_dir", tmp_path / f"apiserver-{len(started)}")
        kwargs.setdefault("bookmark_interval", 0.2)
        srv = EmbeddedApiServer(**kwargs).start()
        started.append(srv)
        return srv

    yield make
    for srv in reversed(started):
        srv.stop()


@pytest.fixture
def embedded_server(embedded_server_factory: ServerFactory) -> EmbeddedApiServer:
    """A started 1.37 server (namespaces default, kube-system, ... exist); bookmarks every 0.2 s."""
    return embedded_server_factory(profile="1.37")


@pytest.fixture
def embedded_api_client(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:
    """An official ``kubernetes.client.ApiClient`` configured from the server's kubeconfig (HTTPS + token)."""
    api = api_client_for(embedded_server)
    yield api
    api.close()
