"""Slice builder: every example config passes the upstream schemas (1.34, 1.37) and our semantic rules;
limits, figures, determinism, taints, shared capacity and the 1.34 layout."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
from model_inventory_helpers import family_inventory, make_chip, make_inventory

from snn_dra.api.attributes import DeviceType
from snn_dra.api.nodeconfig import NodeConfig, PublishConfig
from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import (
    TAINT_KEY,
    SliceBuildError,
    build_slices,
    device_counts,
    generate_name,
    quantity,
)
from snn_dra.driver.validation.resourceslice import validate_pool, validate_resource_slice

REPO = Path(__file__).resolve().parent.parent
NODE_CONFIGS = sorted((REPO / "deploy" / "node-configs").glob("*.yaml"))
ALL = [DeviceType.CHIP, DeviceType.CORE_GROUP, DeviceType.NEURON_CORE, DeviceType.SPIKE_ROUTER, DeviceType.EVENT_QUEUE]
UNIFORM_ATTRIBUTES = {
    "type", "family", "model", "chipID", "chipSerial", "boardID", "systemID", "chipX", "chipY", "chipZ", "chipRegion",
    "hopsToHost", "coreCount", "coreX", "coreY", "coreWidth", "coreHeight", "version",
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _parse_schemas_once() -> Iterator[None]:
    """kubernetes-validate re-reads its JSON schema files on every call; the files never change during a run."""
    with pytest.MonkeyPatch.context() as mp:
        cached = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)
        mp.setattr(kubernetes_validate.utils, "schema_contents", cached)
        yield


def slices_for(config: NodeConfig, node: str = "node-a", profile: str = "1.37") -> list[dict[str, Any]]:
    inventory = load_backend(config, node).discover()
    return build_slices(build_model(inventory, config.publish), node, profile=profile)


def devices(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for s in slices for d in s["spec"].get("devices") or ()]


def assert_valid(slices: list[dict[str, Any]], profile: str) -> None:
    problems = [f"{i}: {e}" for i, s in enumerate(slices) for e in validate_resource_slice(s, None, profile)]
    if profile != "1.34":
        problems += [str(e) for e in validate_pool(slices)]
    assert problems == []


def test_there_are_example_configs() -> None:
    assert len(NODE_CONFIGS) >= 3


@pytest.mark.parametrize("path", NODE_CONFIGS, ids=lambda p: p.stem)
def test_example_config_slices_pass_upstream_schemas_and_semantics(path: Path) -> None:
    built = slices_for(load_node_config(path))
    for s in built:
        for version in ("1.34", "1.37"):
            kubernetes_validate.validate(s, version, strict=True)
    for profile in ("1.35", "1.36", "1.37"):
        assert_valid(built, profile)
    counts = [s["spec"]["pool"]["resourceSliceCount"] for s in built]
    assert counts == [len(built)] * len(built)
    assert [s["metadata"]["generateName"] for s in built] == [
        generate_name(i, len(built), "snn.dra.dev", "node-a") for i in range(len(built))
    ]
    for s in built:
        spec = s["spec"]
        assert s["apiVersion"] == "resource.k8s.io/v1" and s["kind"] == "ResourceSlice"
        assert spec["nodeName"] == "node-a" and spec["pool"]["name"] == "node-a" and spec["driver"] == "snn.dra.dev"
        assert ("devices" in spec) != ("sharedCounters" in spec)
        assert "ownerReferences" not in s["metadata"]


@pytest.mark.parametrize("path", NODE_CONFIGS, ids=lambda p: p.stem)
def test_example_config_is_deterministic(path: Path) -> None:
    config = load_node_config(path)
    one = json.dumps(slices_for(config, "node-x"))
    two = json.dumps(slices_for(config, "node-x"))
    assert one == two
    assert json.dumps(slices_for(config, "node-y")) != one


@pytest.mark.parametrize("model_name", ["loihi2", "spinnaker2", "akd1000"])
def test_every_device_of_every_type_has_the_same_attribute_names(model_name: str) -> None:
    built = build_slices(build_model(family_inventory(model_name, 2), PublishConfig(levels=ALL)), "n")
    names = {frozenset(d["attributes"]) for d in devices(built)}
    assert len(names) == 1
    (attrs,) = names
    expected = set(UNIFORM_ATTRIBUTES)
    if model_name == "akd1000":
        expected.add("resource.kubernetes.io/pciBusID")
    assert attrs == expected
    by_type: dict[str, set[frozenset[str]]] = {}
    for d in devices(built):
        by_type.setdefault(d["attributes"]["type"]["string"], set()).add(frozenset(d["capacity"]))
    assert all(len(v) == 1 for v in by_type.values())


def figures(built: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [d for d in devices(built) if d["attributes"]["type"]["string"] == type_]


def test_loihi2_published_figures() -> None:
    inv = make_inventory([make_chip("loihi2", 0, fused=(127,), hops=1)])
    built = build_slices(build_model(inv, PublishConfig(levels=ALL)), "n")
    (chip,) = figures(built, "chip")
    assert chip["capacity"]["cores"] == {"value": "127"}
    assert chip["capacity"]["neurons"] == {"value": str(127 * 8192)}
    assert chip["capacity"]["synapseMemory"] == {"value": "16256Ki"}  # 127 x 128 KiB
    assert chip["attributes"]["coreCount"] == {"int": 127}
    assert chip["attributes"]["hopsToHost"] == {"int": 1}
    group = figures(built, "coreGroup")[-1]  # group-0 comes last (groups fill from the high tiles)
    assert group["name"].endswith("group-0")
    assert group["capacity"]["cores"] == {"value": "16"}
    assert group["capacity"]["neurons"] == {"value": str(16 * 8192)}
    assert group["capacity"]["synapseMemory"] == {"value": "2Mi"}
    assert (group["attributes"]["coreWidth"], group["attributes"]["coreHeight"]) == ({"int": 4}, {"int": 4})
    core = figures(built, "neuronCore")[0]
    assert core["capacity"] == {
        "cores": {"value": "1"},
        "neurons": {"value": "8192"},
        "synapseMemory": {"value": "128Ki"},
        "spikeThroughputKEPS": {"value": "1k"},
    }
    far = next(d for d in figures(built, "neuronCore") if d["attributes"]["coreX"]["int"] == 7
               and d["attributes"]["coreY"]["int"] == 14)  # fmt: skip
    assert far["attributes"]["hopsToHost"] == {"int": 7 + 14 + 1}
    assert len(figures(built, "neuronCore")) == 127


def test_spinnaker2_published_figures() -> None:
    built = build_slices(build_model(family_inventory("spinnaker2", 1), PublishConfig(levels=ALL)), "n")
    (chip,) = figures(built, "chip")
    assert chip["capacity"]["cores"] == {"value": "152"}
    assert chip["capacity"]["neurons"] == {"value": "152k"}
    assert chip["capacity"]["synapseMemory"] == {"value": "19Mi"}
    assert len(chip["consumesCounters"]) == 2
    assert len(figures(built, "coreGroup")) == 38
    assert all(g["capacity"]["cores"] == {"value": "4"} for g in figures(built, "coreGroup"))


def test_akida_published_figures_and_pci() -> None:
    built = build_slices(build_model(family_inventory("akd1000", 1), PublishConfig(levels=ALL)), "n")
    (chip,) = figures(built, "chip")
    assert chip["capacity"]["cores"] == {"value": "80"}
    assert chip["capacity"]["neurons"] == {"value": "1200k"}
    assert chip["capacity"]["synapseMemory"] == {"value": "8M"}  # not a whole KiB: decimal, as the server stores it
    assert all(d["attributes"]["resource.kubernetes.io/pciBusID"] == {"string": "0000:01:00.0"} for d in devices(built))


def test_router_and_queue_are_shared_with_request_policies() -> None:
    built = build_slices(build_model(family_inventory("loihi2", 1), PublishConfig(levels=ALL)), "n")
    (router,) = figures(built, "spikeRouter")
    assert router["allowMultipleAllocations"] is True
    cap = router["capacity"]["eventThroughputMEPS"]
    assert cap == {
        "value": "512",
        "requestPolicy": {"default": "32", "validRange": {"min": "1", "max": "512", "step": "1"}},
    }
    queues = figures(built, "eventQueue")
    assert len(queues) == 3
    assert all(q["allowMultipleAllocations"] is True for q in queues)
    assert queues[0]["capacity"]["queueDepth"]["value"] == "4096"
    assert queues[0]["capacity"]["queueDepth"]["requestPolicy"]["default"] == "256"
    assert not any("allowMultipleAllocations" in d for d in figures(built, "chip") + figures(built, "coreGroup"))


def test_unhealthy_chip_devices_are_tainted_in_place() -> None:
    chips = [make_chip("loihi2", 0), make_chip("loihi2", 1, healthy=False)]
    pub = PublishConfig(levels=ALL)
    sick = build_slices(build_model(make_inventory(chips), pub), "n")
    well = build_slices(build_model(make_inventory([make_chip("loihi2", 0), make_chip("loihi2", 1)]), pub), "n")
    assert [d["name"] for d in devices(sick)] == [d["name"] for d in devices(well)]
    assert [len(s["spec"].get("devices") or s["spec"]["sharedCounters"]) for s in sick] == [
        len(s["spec"].get("devices") or s["spec"]["sharedCounters"]) for s in well
    ]
    for d in devices(sick):
        tainted = d["attributes"]["chipID"]["string"] == chips[1].id
        assert (d.get("taints") == [{"key": TAINT_KEY, "effect": "NoSchedule"}]) == tainted
    assert_valid(sick, "1.37")
    assert_valid(sick, "1.35")


def test_slices_respect_device_and_counter_limits() -> None:
    built = build_slices(build_model(family_inventory("spinnaker2", 6), PublishConfig(levels=ALL)), "n")
    for s in built:
        spec = s["spec"]
        devs = spec.get("devices") or []
        assert len(devs) <= 64
        consumed = sum(len(c["counters"]) for d in devs for c in d.get("consumesCounters", []))
        assert consumed <= 1024
        sets = spec.get("sharedCounters") or []
        assert len(sets) <= 8 and sum(len(cs["counters"]) for cs in sets) <= 32
    # 6 chips x 42 counters: every chip device alone consumes 42, so at most 24 chips per 1,024.
    assert device_counts(built)["chip"] == 6
    assert_valid(built, "1.37")


def test_plain_devices_use_128_when_not_reserving_for_taints() -> None:
    pub = PublishConfig(levels=[DeviceType.NEURON_CORE])
    model = build_model(family_inventory("loihi2", 2), pub)
    assert [len(s["spec"]["devices"]) for s in build_slices(model, "n", reserve_for_taints=False)] == [128, 128]
    assert [len(s["spec"]["devices"]) for s in build_slices(model, "n")] == [64, 64, 64, 64]
    chips = [make_chip("loihi2", 0, healthy=False), make_chip("loihi2", 1)]
    sick = build_slices(build_model(make_inventory(chips), pub), "n", reserve_for_taints=False)
    assert [len(s["spec"]["devices"]) for s in sick] == [64, 64, 128]
    assert_valid(sick, "1.37")


def test_counter_slices_come_first_and_hold_at_most_32_counters() -> None:
    built = build_slices(build_model(family_inventory("loihi2", 7), PublishConfig(levels=ALL)), "n")
    counter_slices = [s for s in built if "sharedCounters" in s["spec"]]
    assert built[: len(counter_slices)] == counter_slices
    # Loihi: 8 tiles + 2 aggregates = 10 counters per set -> 3 sets per slice under the 1.34 total of 32.
    assert [len(s["spec"]["sharedCounters"]) for s in counter_slices] == [3, 3, 1]


def test_empty_inventory_publishes_one_empty_slice() -> None:
    built = build_slices(build_model(make_inventory([]), PublishConfig(levels=ALL)), "n")
    assert len(built) == 1
    assert built[0]["spec"]["devices"] == [] and built[0]["spec"]["pool"]["resourceSliceCount"] == 1
    kubernetes_validate.validate(built[0], "1.37", strict=True)
    assert_valid(built, "1.37")


def test_1_34_layout_keeps_counter_sets_with_their_consumers() -> None:
    pub = PublishConfig(levels=[DeviceType.CHIP, DeviceType.CORE_GROUP, DeviceType.SPIKE_ROUTER])
    built = build_slices(build_model(family_inventory("loihi2", 3), pub), "n", profile="1.34")
    assert len(built) == 4
    for s in built[:3]:
        assert len(s["spec"]["sharedCounters"]) == 1 and len(s["spec"]["devices"]) == 9
        kubernetes_validate.validate(s, "1.34", strict=True)
    assert_valid(built, "1.34")
    # the 1.35+ layout is refused by a 1.34 API server: references must stay in the slice
    modern = build_slices(build_model(family_inventory("loihi2", 3), pub), "n")
    assert any(
        "must reference a counterSet" in str(e) for s in modern for e in validate_resource_slice(s, None, "1.34")
    )


def test_1_34_layout_refuses_what_cannot_fit() -> None:
    with pytest.raises(SliceBuildError, match=r"137 partition devices .* at most 128"):
        build_slices(build_model(family_inventory("loihi2", 1), PublishConfig(levels=ALL)), "n", profile="1.34")
    with pytest.raises(SliceBuildError, match=r"42 shared counters .* 32 per slice"):
        build_slices(build_model(family_inventory("spinnaker2", 1), PublishConfig(levels=ALL)), "n", profile="1.34")


def test_overlong_string_attribute_is_refused() -> None:

    chip = replace(make_chip("loihi2", 0), serial="S" * 65)
    with pytest.raises(SliceBuildError, match=r"serial .* 65 characters; string attributes allow at most 64"):
        build_slices(build_model(make_inventory([chip]), PublishConfig(levels=[DeviceType.CHIP])), "n")


def test_bad_node_name_is_refused() -> None:
    model = build_model(family_inventory("loihi2", 1), PublishConfig(levels=[DeviceType.CHIP]))
    with pytest.raises(SliceBuildError, match="node name"):
        build_slices(model, "Bad_Node")


def test_canonical_quantities() -> None:
    assert quantity(0) == "0"
    assert quantity(1000) == "1k"
    assert quantity(1500) == "1500"
    assert quantity(2_000_000) == "2M"
    assert quantity(131072, True) == "128Ki"
    assert quantity(1536, True) == "1536"
    assert quantity(100_000, True) == "100k"  # no whole KiB: decimal text, which the server keeps
    assert quantity(1000, True) == "1k"


def test_prefix_widens_past_0xfffff_slices() -> None:
    assert generate_name(0, 1, "snn.dra.dev", "n") == "00000-snn.dra.dev-n-"
    assert generate_name(5, 0x100001, "snn.dra.dev", "n") == "000005-snn.dra.dev-n-"


def test_device_over_the_attribute_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The published set has 18-20 attributes + up to 4 capacities; lower the limit to prove the guard names both.
    import snn_dra.driver.slices as slices_module

    monkeypatch.setattr(slices_module, "MAX_ATTRIBUTES_AND_CAPACITIES", 21)
    model = build_model(family_inventory("loihi2", 1), PublishConfig(levels=[DeviceType.CHIP]))
    with pytest.raises(SliceBuildError, match=r"device b0-c0 has 22 attributes and capacities; .* at most 21"):
        build_slices(model, "n")


def test_counter_set_over_32_counters_is_refused() -> None:
    from snn_dra.driver.model import CounterSet, DeviceModel

    big = CounterSet("huge", "c0", tuple((f"tile-{i}", 1) for i in range(33)))
    with pytest.raises(SliceBuildError, match=r"counter set huge has 33 counters; .* at most 32"):
        build_slices(DeviceModel(devices=(), counter_sets=(big,)), "n")


def test_device_consuming_over_1024_counters_is_refused() -> None:
    from snn_dra.driver.model import Consumption, DeviceModel

    model = build_model(family_inventory("loihi2", 1), PublishConfig(levels=[DeviceType.CHIP]))
    chip = model.devices[0]
    greedy = replace(
        chip, consumes=tuple(Consumption(f"s{k}", tuple((f"c{i}", 1) for i in range(513))) for k in range(2))
    )
    with pytest.raises(SliceBuildError, match=r"consumes 1026 counters; .* at most 1024"):
        build_slices(DeviceModel(devices=(greedy,)), "n")


def test_first_device_slices_hold_cores_of_the_first_chip() -> None:
    built = build_slices(build_model(family_inventory("loihi2", 2), PublishConfig(levels=ALL)), "n")
    first_devices = next(s for s in built if "devices" in s["spec"])["spec"]["devices"]
    assert {d["attributes"]["type"]["string"] for d in first_devices} == {"neuronCore"}
    assert {d["attributes"]["chipID"]["string"] for d in first_devices} == {"b0-c0"}
    last = built[-1]["spec"]["devices"]
    assert last[-1]["attributes"]["type"]["string"] == "eventQueue"
