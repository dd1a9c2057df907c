"""The ResourceSlice controller against the embedded API server, over HTTPS with the official client."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cluster_support import AKIDA
from embedded_fixtures import api_client_for, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client

from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.kubejson import KubeJSON
from snn_dra.driver.model import build_model
from snn_dra.driver.publisher import SlicePublisher, parse_index
from snn_dra.driver.slices import build_slices

NODE = "node-a"
DRIVER = "snn.dra.dev"


def desired(profile: str = "1.37") -> list[dict[str, Any]]:
    cfg = load_node_config(AKIDA)
    return build_slices(build_model(load_backend(cfg, NODE).discover(), cfg.publish), NODE, profile=profile)


def stored(server: EmbeddedApiServer) -> list[dict[str, Any]]:
    return sorted(server.store.list("resourceslices"), key=lambda s: s["metadata"]["name"])


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Any:  # noqa: F811
    embedded_server.store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    api = api_client_for(embedded_server)
    yield api
    api.close()


def test_first_publish_creates_every_slice_owned_by_the_node(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    want = desired()
    result = SlicePublisher(api, driver=DRIVER, node_name=NODE).publish(want)
    got = stored(embedded_server)
    assert len(result.created) == len(want) == len(got) and not result.updated and not result.deleted
    node_uid = embedded_server.store.get("nodes", None, NODE)["metadata"]["uid"]
    for i, s in enumerate(got):
        assert parse_index(s["metadata"]["name"], len(want)) == i
        assert s["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": node_uid, "controller": True}
        ]
        assert s["spec"]["pool"] == {"name": NODE, "generation": 1, "resourceSliceCount": len(want)}
        assert s["spec"].get("devices") == want[i]["spec"].get("devices")


def test_republishing_the_same_state_writes_nothing(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    pub.publish(desired())
    before = [s["metadata"]["resourceVersion"] for s in stored(embedded_server)]
    result = pub.publish(desired())
    assert not result.changed
    assert [s["metadata"]["resourceVersion"] for s in stored(embedded_server)] == before


def test_one_changed_slice_keeps_the_generation(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    want = desired()
    pub.publish(want)
    changed = copy.deepcopy(want)
    last = changed[-1]["spec"]["devices"]
    last[0]["attributes"]["model"] = {"string": "akd1000-rev2"}
    result = pub.publish(changed)
    assert len(result.updated) == 1 and result.generation == 1
    assert {s["spec"]["pool"]["generation"] for s in stored(embedded_server)} == {1}


def test_a_new_slice_bumps_the_generation_of_every_slice(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    want = desired()
    pub.publish(want[:-1])
    result = pub.publish(want)
    assert len(result.created) == 1 and result.generation == 2
    got = stored(embedded_server)
    assert len(got) == len(want)
    assert {s["spec"]["pool"]["generation"] for s in got} == {2}
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in got} == {len(want)}


def test_foreign_and_misnamed_slices_of_the_pool_are_deleted(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    want = desired()
    pub.publish(want)
    stray = copy.deepcopy(want[-1])
    stray["metadata"] = {"name": f"{NODE}-{DRIVER}-legacy"}  # 1.34-era naming: no index prefix
    KubeJSON(api).create("/apis/resource.k8s.io/v1/resourceslices", stray)
    result = pub.publish(want)
    assert result.deleted == [f"{NODE}-{DRIVER}-legacy"]
    assert len(stored(embedded_server)) == len(want)


def test_slices_wiped_by_the_kubelet_come_back(embedded_server: EmbeddedApiServer, api: Any) -> None:  # noqa: F811
    pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
    want = desired()
    pub.publish(want)
    client.ResourceV1Api(api).delete_collection_resource_slice(field_selector=f"spec.nodeName={NODE}")
    assert stored(embedded_server) == []
    result = pub.publish()
    assert len(result.created) == len(want)


def test_dropped_fields_on_a_1_34_server_are_reported_and_adopted(
    embedded_server_factory: Any,  # noqa: F811
) -> None:
    server = embedded_server_factory(profile="1.34")
    server.store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    api = api_client_for(server)
    try:
        pub = SlicePublisher(api, driver=DRIVER, node_name=NODE)
        cfg = load_node_config(AKIDA)
        publish = cfg.publish.model_copy(update={"levels": ["chip", "spikeRouter"]})
        want = build_slices(build_model(load_backend(cfg, NODE).discover(), publish), NODE, profile="1.34")
        first = pub.publish(want)
        assert "DRAConsumableCapacity" in first.dropped_gates
        assert not any(d.get("allowMultipleAllocations") for s in stored(server) for d in s["spec"]["devices"])
        again = pub.publish()
        assert not again.changed, "the stored form is adopted: no hot loop of updates"
    finally:
        api.close()


def test_long_node_names_survive_generate_name_truncation(embedded_server: EmbeddedApiServer) -> None:  # noqa: F811
    """The API server cuts generateName to 58 characters; the pool must still settle (no delete/recreate loop)."""
    node = "gke-snn-cluster-default-pool-" + "a1b2c3d4e5" * 3  # 59 characters, as cloud node names go
    embedded_server.store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    api = api_client_for(embedded_server)
    try:
        cfg = load_node_config(AKIDA)
        want = build_slices(build_model(load_backend(cfg, node).discover(), cfg.publish), node)
        pub = SlicePublisher(api, driver=DRIVER, node_name=node)
        first = pub.publish(want)
        names = [s["metadata"]["name"] for s in stored(embedded_server)]
        assert all(len(n) == 63 for n in names), names
        again = pub.publish(want)
        assert not again.changed and again.generation == first.generation
    finally:
        api.close()
