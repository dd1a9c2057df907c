"""The publication plan follows what the API server keeps: no overlapping partitions, no unshareable routers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from snn_dra.api.attributes import DeviceType
from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.compat import fallback_publish, plan, profile_for_version
from snn_dra.driver.slices import SliceBuildError
from snn_dra.driver.validation.resourceslice import validate_pool, validate_resource_slice

REPO = Path(__file__).resolve().parent.parent
KAPOHO = REPO / "deploy/node-configs/kapoho-point.yaml"


@pytest.mark.parametrize(
    ("major", "minor", "profile"),
    [("1", "34", "1.34"), ("1", "35+", "1.35"), ("1", "37", "1.37"), ("1", "40", "1.37"), ("1", "31", "1.34"),
     ("2", "0", "1.37"), ("x", "y", "1.37")],
)  # fmt: skip
def test_profile_from_server_version(major: str, minor: str, profile: str) -> None:
    assert profile_for_version(major, minor) == profile


def test_dropped_counters_keep_only_the_coarsest_partition_level(caplog: pytest.LogCaptureFixture) -> None:
    publish = load_node_config(KAPOHO).publish
    assert {DeviceType.CHIP, DeviceType.CORE_GROUP, DeviceType.NEURON_CORE} <= set(publish.levels)
    with caplog.at_level(logging.WARNING):
        result = fallback_publish(publish, {"DRAPartitionableDevices"})
    assert DeviceType.CHIP in result.levels
    assert DeviceType.CORE_GROUP not in result.levels and DeviceType.NEURON_CORE not in result.levels
    assert "DRAPartitionableDevices" in caplog.text


def test_dropped_shared_capacity_removes_routers_and_queues() -> None:
    publish = load_node_config(KAPOHO).publish
    result = fallback_publish(publish, {"DRAConsumableCapacity"})
    assert DeviceType.SPIKE_ROUTER not in result.levels and DeviceType.EVENT_QUEUE not in result.levels
    assert DeviceType.NEURON_CORE in result.levels


def test_nothing_left_is_a_clear_error() -> None:
    publish = load_node_config(KAPOHO).publish.model_copy(update={"levels": [DeviceType.SPIKE_ROUTER]})
    with pytest.raises(SliceBuildError, match="add the chip level"):
        fallback_publish(publish, {"DRAConsumableCapacity"})


def test_fallback_plan_publishes_no_counters() -> None:
    cfg = load_node_config(KAPOHO)
    inventory = load_backend(cfg, "node-a").discover()
    publication = plan(inventory, cfg.publish, profile="1.37", dropped_gates={"DRAPartitionableDevices"})
    assert not any("sharedCounters" in s["spec"] for s in publication.slices)
    assert not any(d.get("consumesCounters") for s in publication.slices for d in s["spec"].get("devices", []))


def test_1_34_with_gates_on_drops_levels_until_counters_fit_one_slice(caplog: pytest.LogCaptureFixture) -> None:
    cfg = load_node_config(KAPOHO)
    inventory = load_backend(cfg, "node-a").discover()
    with caplog.at_level(logging.WARNING):
        publication = plan(inventory, cfg.publish, profile="1.34")
    assert DeviceType.NEURON_CORE not in publication.publish.levels
    assert DeviceType.CHIP in publication.publish.levels and DeviceType.CORE_GROUP in publication.publish.levels
    assert "1.34" in caplog.text
    for s in publication.slices:
        assert validate_resource_slice(s, None, "1.34") == []
    assert validate_pool(publication.slices) == []


def test_1_37_keeps_every_configured_level() -> None:
    cfg = load_node_config(KAPOHO)
    inventory = load_backend(cfg, "node-a").discover()
    publication = plan(inventory, cfg.publish, profile="1.37")
    assert publication.publish.levels == cfg.publish.levels
