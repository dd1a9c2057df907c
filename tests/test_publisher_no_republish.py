"""The publisher leaves a published pool alone: no ResourceSlice write once the server holds what it wants.

A real API server stores quantities in canonical text ("100000" -> "100k"), drops empty optional lists and maps
and stamps taint times; a publisher comparing text saw a change forever and rewrote every slice in a loop. The
embedded API server stores quantities the same way, and every write that reaches it is counted at the store.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from embedded_fixtures import api_client_for, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client

from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.cluster import wait_until
from snn_dra.driver.model import build_model
from snn_dra.driver.publisher import PublishResult, SlicePublisher
from snn_dra.driver.quantity import canonical, parse_as_server
from snn_dra.driver.quantity_paths import RESOURCESLICE_SPEC_PATHS, map_quantities
from snn_dra.driver.slices import build_slices

REPO = Path(__file__).resolve().parent.parent
NODE_CONFIGS = sorted((REPO / "deploy/node-configs").glob("*.yaml"))
NODE = "node-a"
DRIVER = "snn.dra.dev"
WRITES = ("create", "update", "patch", "delete", "delete_collection")


def desired(config: Path, profile: str = "1.37") -> list[dict[str, Any]]:
    cfg = load_node_config(config)
    return build_slices(build_model(load_backend(cfg, NODE).discover(), cfg.publish), NODE, profile=profile)


class WriteCounter:
    """Counts every ResourceSlice write that reaches the server's store (no-op updates included)."""

    def __init__(self, server: EmbeddedApiServer) -> None:
        self.counts: Counter[str] = Counter()
        store = server.store
        for verb in WRITES:
            setattr(store, verb, self._counting(verb, getattr(store, verb)))

    def _counting(self, verb: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(resource: str, *args: Any, **kwargs: Any) -> Any:
            if resource == "resourceslices":
                self.counts[verb] += 1
            return method(resource, *args, **kwargs)

        return call

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def snapshot(server: EmbeddedApiServer) -> dict[str, tuple[str, int]]:
    """name -> (resourceVersion, pool generation) of every stored slice."""
    return {
        s["metadata"]["name"]: (s["metadata"]["resourceVersion"], s["spec"]["pool"]["generation"])
        for s in server.store.list("resourceslices")
    }


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:  # noqa: F811
    embedded_server.store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    api = api_client_for(embedded_server)
    yield api
    api.close()


def respell(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same slices with every quantity written in a different, non-canonical spelling of the same value."""
    out: list[dict[str, Any]] = json.loads(json.dumps(slices))  # a copy without the builder's shared leaves

    def other(text: Any) -> Any:
        value = parse_as_server(str(text)).value
        spelled = f"{int(value) * 1000}m" if value == value.to_integral_value() else f"{value:f}"
        assert spelled != text and parse_as_server(spelled).value == value
        return spelled

    for s in out:
        map_quantities(s["spec"], RESOURCESLICE_SPEC_PATHS, other)
    return out


@pytest.mark.parametrize("config", NODE_CONFIGS, ids=[p.stem for p in NODE_CONFIGS])
def test_a_published_pool_is_never_rewritten(
    config: Path,
    embedded_server: EmbeddedApiServer,  # noqa: F811
    api: client.ApiClient,
) -> None:
    want = desired(config)
    writes = WriteCounter(embedded_server)
    first = SlicePublisher(api, driver=DRIVER, node_name=NODE).publish(want)
    assert len(first.created) == len(want) and writes.total == len(want)
    settled = snapshot(embedded_server)
    assert {gen for _, gen in settled.values()} == {1}

    # More passes of a fresh publisher (as after a plugin restart) and of the same one: nothing to write.
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    for _ in range(3):
        result = pub.publish(want)
        assert not result.changed, f"{config.name}: pass rewrote {result.updated or result.created or result.deleted}"
    assert writes.total == len(want)

    # The controller loop: its watch reports every stored slice, then it re-syncs every 0.2 s.
    passes: list[PublishResult] = []
    errors: list[Exception] = []
    looping = SlicePublisher(
        api, driver=DRIVER, node_name=NODE, sync_delay=0.2, on_published=passes.append, on_error=errors.append
    )
    looping.set_desired(want)
    runner = threading.Thread(target=looping.run, name="publisher-under-test")
    runner.start()
    try:
        wait_until(lambda: len(passes) >= 5, "five reconcile passes of the running publisher", timeout=60)
    finally:
        looping.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert not errors
    assert writes.total == len(want), f"{config.name}: {writes.total - len(want)} slice writes after publishing"
    assert not any(p.changed for p in passes)
    assert snapshot(embedded_server) == settled  # no resourceVersion moved, the pool generation stayed 1


def test_every_quantity_the_builder_emits_is_stored_as_written() -> None:
    # The slices carry the server's own spelling, so a real server has nothing to rewrite.
    seen: set[str] = set()
    for config in NODE_CONFIGS:
        for profile in ("1.35", "1.36", "1.37"):
            for s in desired(config, profile):
                map_quantities(s["spec"], RESOURCESLICE_SPEC_PATHS, lambda q: seen.add(q) or q)
    assert seen
    assert {q: canonical(q) for q in seen if canonical(q) != q} == {}


def test_respelled_quantities_are_the_same_slices(embedded_server: EmbeddedApiServer, api: client.ApiClient) -> None:  # noqa: F811
    # A server (or another writer) that spells amounts differently must not make the publisher rewrite.
    want = desired(NODE_CONFIGS[0])
    respelled = respell(want)
    assert respelled != want
    writes = WriteCounter(embedded_server)
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    pub.publish(respelled)
    stored = sorted(embedded_server.store.list("resourceslices"), key=lambda s: str(s["metadata"]["name"]))
    assert writes.total == len(want)
    assert not pub.publish(want).changed
    assert not pub.publish(respelled).changed
    assert writes.total == len(want)
    # What the server stored is the canonical text, which is what the builder emits.
    assert [(s["spec"].get("devices"), s["spec"].get("sharedCounters")) for s in stored] == [
        (s["spec"].get("devices"), s["spec"].get("sharedCounters")) for s in want
    ]


def test_a_changed_amount_is_still_published(embedded_server: EmbeddedApiServer, api: client.ApiClient) -> None:  # noqa: F811
    # Comparing by value must not hide a real change.
    want = desired(NODE_CONFIGS[0])
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    pub.publish(want)
    changed = copy.deepcopy(want)
    device_slice = next(s for s in changed if s["spec"].get("devices"))
    device = device_slice["spec"]["devices"][0]
    key, capacity = next((k, c) for k, c in device["capacity"].items() if "value" in c)
    capacity = device["capacity"][key] = {**capacity, "value": str(parse_as_server(capacity["value"]).value + 1)}
    result = pub.publish(changed)
    assert len(result.updated) == 1
    name = result.updated[0]
    stored = client.ResourceV1Api(api).read_resource_slice(name)
    values = {q.value for d in stored.spec.devices or [] for q in (d.capacity or {}).values()}
    assert capacity["value"] in values or canonical(capacity["value"]) in values


def test_empty_optional_fields_dropped_by_the_server_are_no_change(
    embedded_server: EmbeddedApiServer,  # noqa: F811
    api: client.ApiClient,
) -> None:
    # Go's API types omit empty optional lists and maps, so "devices: []" of an empty pool is stored as nothing.
    empty = [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"generateName": f"00000-{DRIVER}-{NODE}-"},
            "spec": {
                "driver": DRIVER,
                "nodeName": NODE,
                "pool": {"name": NODE, "generation": 1, "resourceSliceCount": 1},
                "devices": [],
            },
        }
    ]
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    pub.publish(empty)
    resources = client.ResourceV1Api(api)
    (stored,) = resources.list_resource_slice(field_selector=f"spec.nodeName={NODE}").items
    raw = api.sanitize_for_serialization(stored)
    raw["spec"].pop("devices", None)
    resources.replace_resource_slice(stored.metadata.name, raw)
    writes = WriteCounter(embedded_server)
    assert not pub.publish(empty).changed
    assert writes.total == 0


def test_values_compare_as_the_server_keeps_them() -> None:
    # Amounts finer than nano are kept rounded away from zero, so both spellings are one stored value.
    assert parse_as_server("0.1n").value == parse_as_server("1n").value == Decimal("1e-9")
    assert parse_as_server("1.5Gi").value == parse_as_server("1536Mi").value
