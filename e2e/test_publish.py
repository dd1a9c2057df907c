"""What the driver publishes: slices per node with the device counts the node config implies, and classes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from e2e import kube
from e2e.model import expected_types


def test_every_node_publishes_the_devices_of_its_node_config(node_config: dict[str, Any]) -> None:
    nodes = [n["metadata"]["name"] for n in kube.items("nodes")]
    for node in nodes:
        devices = kube.pool_devices(node)
        published = Counter(kube.attribute(d, "type") for d in devices.values())
        assert published == expected_types(node_config, node), f"node {node}"


def test_slices_form_one_complete_node_owned_pool_per_node() -> None:
    for node in [n["metadata"]["name"] for n in kube.items("nodes")]:
        node_uid = kube.get_json("node", node)["metadata"]["uid"]
        slices = kube.driver_slices(node)
        newest = max(s["spec"]["pool"]["generation"] for s in slices)
        current = [s for s in slices if s["spec"]["pool"]["generation"] == newest]
        assert {s["spec"]["pool"]["name"] for s in current} == {node}
        assert {s["spec"]["pool"]["resourceSliceCount"] for s in current} == {len(current)}
        for s in current:
            owners = s["metadata"].get("ownerReferences", [])
            assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [("Node", node, node_uid)], s["metadata"]
            assert len(s["spec"].get("devices", [])) <= 128


def test_device_classes_of_deploy_base_are_installed() -> None:
    wanted = {o["metadata"]["name"]: o["spec"] for o in kube.render("deploy/base") if o["kind"] == "DeviceClass"}
    installed = {o["metadata"]["name"]: o["spec"] for o in kube.items("deviceclasses")}
    for name, spec in wanted.items():
        assert name in installed, f"DeviceClass {name} missing"
        assert installed[name]["selectors"] == spec["selectors"]


def test_every_device_class_matches_some_published_device_type(node_config: dict[str, Any]) -> None:
    """Classes for levels the node config publishes must select devices: a claim against them is allocatable."""
    published = {str(level) for level in node_config["publish"]["levels"]}
    class_type = {
        "snn-chip": "chip",
        "snn-core-group": "coreGroup",
        "snn-neuron-core": "neuronCore",
        "snn-spike-router": "spikeRouter",
        "snn-event-queue": "eventQueue",
    }
    all_types = set()
    for node in kube.schedulable_nodes():
        all_types |= {kube.attribute(d, "type") for d in kube.pool_devices(node).values()}
    for name, device_type in class_type.items():
        if device_type in published:
            assert device_type in all_types, f"{name}: no {device_type} device published on a schedulable node"
