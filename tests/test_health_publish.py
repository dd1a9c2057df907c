"""A chip fault travels to the API server: monitor -> slices -> SlicePublisher -> tainted devices, and back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from embedded_fixtures import api_client_for, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client

from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.driver.backends import SimulatedBackend, parse_node_config
from snn_dra.driver.backends.base import Inventory
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.health import HealthMonitor, slice_republisher
from snn_dra.driver.model import build_model
from snn_dra.driver.publisher import SlicePublisher
from snn_dra.driver.slices import TAINT_EFFECT, TAINT_KEY, build_slices

NODE = "node-p"
WAIT = 20.0


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:  # noqa: F811
    api_client = api_client_for(embedded_server)
    client.CoreV1Api(api_client).create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NODE)))
    yield api_client
    api_client.close()


def stored_taints(api: client.ApiClient) -> dict[str, list[dict[str, Any]]]:
    """Device name -> its taints, as the API server stores them."""
    response: Any = client.ResourceV1Api(api).list_resource_slice(
        field_selector=f"spec.nodeName={NODE}", _preload_content=False
    )
    raw: dict[str, Any] = json.loads(response.data)
    return {d["name"]: d.get("taints") or [] for s in raw["items"] for d in s["spec"].get("devices") or ()}


def test_fault_and_recovery_reach_the_api_server(api: client.ApiClient) -> None:
    cfg = parse_node_config(
        {
            "backend": "simulated",
            "publish": {"levels": ["chip", "coreGroup", "spikeRouter", "eventQueue"]},
            "boards": [{"family": "loihi2", "model": "kapoho-point", "chips": 4, "mesh": [2, 2, 1]}],
        }
    )
    backend = SimulatedBackend(cfg, NODE)
    inventory = backend.discover()
    model = build_model(inventory, cfg.publish)
    publisher = SlicePublisher(api, driver=DRIVER_NAME, node_name=NODE)
    publisher.publish(build_slices(model, NODE))
    assert all(t == [] for t in stored_taints(api).values())

    # 4 chips x 13 devices fit one device slice (counter sets have their own), so a fault rewrites that one
    # slice in place, in the same pool generation.
    assert sum(1 for s in build_slices(model, NODE) if s["spec"].get("devices")) == 1
    chip = backend.chip_ids()[2]
    chip_devices = {d.name for d in model.devices if d.chip.id == chip}

    republished: list[Inventory] = []
    republish = slice_republisher(publisher, cfg.publish)
    changed = asyncio.Event()

    def on_change(inv: Inventory) -> None:
        republished.append(inv)
        republish(inv)
        changed.set()

    monitor = HealthMonitor(inventory, model, on_inventory_change=on_change, min_interval=0.0)

    async def until_republished(n: int) -> None:
        async def wait() -> None:
            while len(republished) < n:
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(wait(), WAIT)

    async def body() -> None:
        task = asyncio.create_task(monitor.run(backend.watch_health()))
        backend.set_chip_health(chip, False, "spike router parity error")
        await until_republished(1)
        result = await asyncio.to_thread(publisher.publish)
        assert len(result.updated) == 1 and not result.created and not result.deleted and result.generation == 1
        taints = stored_taints(api)
        assert {name for name, t in taints.items() if t} == chip_devices
        for name in chip_devices:
            assert [(t["key"], t["effect"]) for t in taints[name]] == [(TAINT_KEY, TAINT_EFFECT)]

        backend.set_chip_health(chip, True)
        await until_republished(2)
        result = await asyncio.to_thread(publisher.publish)
        assert len(result.updated) == 1
        assert all(t == [] for t in stored_taints(api).values())
        monitor.stop()
        await asyncio.wait_for(task, WAIT)

    asyncio.run(body())
