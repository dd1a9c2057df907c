"""Review fixes in the slice publisher: long node names whose generateName the API server truncates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import AKIDA
from embedded_fixtures import api_client_for, embedded_server, embedded_server_factory  # noqa: F401

from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.model import build_model
from snn_dra.driver.publisher import SlicePublisher, parse_index
from snn_dra.driver.slices import build_slices, generate_name

DRIVER = "snn.dra.dev"
LONG_NODE = "gke-prod-cluster-neuromorphic-pool-1a2b3c4d-x7k2-" + "z" * 11  # 60 characters
UPSTREAM_GENERATE_NAME_LIMIT = 58  # the API server's SimpleNameGenerator keeps this much, then adds 5 chars


def _desired(node: str) -> list[dict[str, Any]]:
    cfg = load_node_config(AKIDA)
    return build_slices(build_model(load_backend(cfg, node).discover(), cfg.publish), node, profile="1.37")


def _versions(server: EmbeddedApiServer) -> dict[str, str]:
    return {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in server.store.list("resourceslices")}


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Iterator[Any]:  # noqa: F811
    embedded_server.store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": LONG_NODE}})
    api = api_client_for(embedded_server)
    yield api
    api.close()


def test_parse_index_reads_a_name_truncated_like_upstream() -> None:
    assert len(LONG_NODE) == 60
    for count in (1, 3):
        for i in range(count):
            name = generate_name(i, count, DRIVER, LONG_NODE)[:UPSTREAM_GENERATE_NAME_LIMIT] + "abcde"
            assert parse_index(name, count) == i
    assert parse_index("0x001-snn.dra.dev-n-abcde", 3) is None  # int(..., 16) would accept 0x
    assert parse_index("00003-snn.dra.dev-n-abcde", 3) is None  # index beyond the pool
    assert parse_index("0001-snn.dra.dev-n-abcde", 3) is None  # wrong width


def test_slices_with_upstream_truncated_names_are_kept(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    """Stored slices named as a real API server names them are matched, not deleted and re-created forever."""
    want = _desired(LONG_NODE)
    count = len(want)
    node_uid = embedded_server.store.get("nodes", None, LONG_NODE)["metadata"]["uid"]
    owner = {"apiVersion": "v1", "kind": "Node", "name": LONG_NODE, "uid": node_uid, "controller": True}
    for i, s in enumerate(want):
        name = generate_name(i, count, DRIVER, LONG_NODE)[:UPSTREAM_GENERATE_NAME_LIMIT] + f"q{i:04x}"
        embedded_server.store.create(
            "resourceslices",
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": {"name": name, "ownerReferences": [owner]},
                "spec": {**s["spec"], "pool": {"name": LONG_NODE, "generation": 1, "resourceSliceCount": count}},
            },
        )
    before = _versions(embedded_server)

    pub = SlicePublisher(api, driver=DRIVER, node_name=LONG_NODE)
    first = pub.publish(want)
    second = pub.publish(want)

    assert not first.changed and not second.changed
    assert _versions(embedded_server) == before


def test_a_slice_of_another_pool_with_a_matching_prefix_is_obsolete(
    embedded_server: EmbeddedApiServer,  # noqa: F811
    api: Any,
) -> None:
    """Matching by prefix alone still requires the stored pool name to be this node's."""
    want = _desired(LONG_NODE)
    pub = SlicePublisher(api, driver=DRIVER, node_name=LONG_NODE)
    pub.publish(want)
    victim = sorted(embedded_server.store.list("resourceslices"), key=lambda s: s["metadata"]["name"])[0]
    embedded_server.store.delete("resourceslices", None, victim["metadata"]["name"])
    victim["spec"]["pool"]["name"] = "other-pool"
    victim["metadata"] = {"name": victim["metadata"]["name"], "ownerReferences": victim["metadata"]["ownerReferences"]}
    embedded_server.store.create("resourceslices", victim)
    result = pub.publish(want)
    assert victim["metadata"]["name"] in result.deleted
    assert {s["spec"]["pool"]["name"] for s in embedded_server.store.list("resourceslices")} == {LONG_NODE}


def test_slices_the_publisher_created_for_a_long_node_name_stay_put(
    embedded_server: EmbeddedApiServer,  # noqa: F811
    api: Any,
) -> None:
    """End to end with whatever names the API server generates (the store now cuts generateName at 58 too)."""
    want = _desired(LONG_NODE)
    pub = SlicePublisher(api, driver=DRIVER, node_name=LONG_NODE)
    assert len(pub.publish(want).created) == len(want)
    before = _versions(embedded_server)
    assert not pub.publish(want).changed
    assert _versions(embedded_server) == before
