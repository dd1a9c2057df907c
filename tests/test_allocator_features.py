"""Allocator: shared counters (partitions), consumable capacity, admin access, taints and tolerations."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from allocator_helpers import (
    DRIVER,
    NODE,
    TYPE_IS,
    claim,
    device,
    exactly,
    held,
    picked,
    rslice,
    standard_classes,
)

from snn_dra.driver.embedded.allocator import Unsatisfiable, allocate
from snn_dra.driver.embedded.counters import Capacity, RequestPolicy, format_quantity, parse_quantity

CHIP0 = 'device.attributes["snn.dra.dev"].chipID == 0'


def run(c: dict[str, Any], slices: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("classes", standard_classes())
    return allocate(c, node_name=NODE, slices=slices, **kw)


# --- shared counters --------------------------------------------------------------------------------


def partitioned_chip() -> list[dict[str, Any]]:
    """Chip 0 as a whole device plus 8 core groups of 16 cores, all drawing on one counter set of 128 cores."""

    def consumes(cores: int) -> list[dict[str, Any]]:
        return [{"counterSet": "chip-0", "counters": {"cores": {"value": str(cores)}}}]

    counters = rslice("s-0-counters", counters=[{"name": "chip-0", "counters": {"cores": {"value": "128"}}}], count=2)
    devices = [device("chip-0", consumesCounters=consumes(128))]
    devices += [device(f"chip-0-cg-{i}", "coreGroup", consumesCounters=consumes(16)) for i in range(8)]
    return [counters, rslice("s-1-devices", devices, count=2)]


def test_chip_and_its_core_group_never_go_to_two_claims() -> None:
    slices = partitioned_chip()
    whole = run(claim("whole", exactly("r", "chip")), slices)
    assert picked(whole) == ["chip-0"]
    with pytest.raises(Unsatisfiable) as err:
        run(claim("part", exactly("r", "core-group")), slices, allocated_claims=[{**held("whole", "chip-0")}])
    assert "8 counter chip-0/cores exhausted" in str(err.value)
    # ... and the other way round: one core group taken, the whole chip is no longer available.
    part = run(claim("part", exactly("r", "core-group")), slices)
    assert picked(part) == ["chip-0-cg-0"]
    with pytest.raises(Unsatisfiable, match="counter chip-0/cores exhausted"):
        run(claim("whole", exactly("r", "chip")), slices, allocated_claims=[held("part", "chip-0-cg-0")])


def test_chip_and_core_group_never_go_to_one_claim() -> None:
    with pytest.raises(Unsatisfiable, match=r"request g: .*counter chip-0/cores exhausted"):
        run(claim("both", exactly("c", "chip"), exactly("g", "core-group")), partitioned_chip())


def test_core_groups_fill_the_counter_exactly() -> None:
    slices = partitioned_chip()
    out = run(claim("c", exactly("r", "core-group", count=8)), slices)
    assert len(picked(out)) == 8
    with pytest.raises(Unsatisfiable):
        run(claim("c", exactly("r", "core-group", count=2)), slices,
            allocated_claims=[held("o", *[f"chip-0-cg-{i}" for i in range(7)])])


def test_admin_allocations_do_not_consume_counters() -> None:
    slices = partitioned_chip()
    out = run(claim("c", exactly("r", "core-group")), slices, allocated_claims=[held("mon", "chip-0", admin=True)])
    assert picked(out) == ["chip-0-cg-0"]


def test_unknown_counter_set_makes_the_pool_invalid() -> None:
    slices = partitioned_chip()[1:]  # the counter slice is missing and the pool says 2 slices: incomplete
    with pytest.raises(Unsatisfiable, match="incomplete"):
        run(claim("c", exactly("r", "chip")), slices)
    slices[0]["spec"]["pool"]["resourceSliceCount"] = 1
    with pytest.raises(Unsatisfiable, match="unknown counter set"):
        run(claim("c", exactly("r", "chip")), slices)


# --- consumable capacity ----------------------------------------------------------------------------


def router(policy: dict[str, Any] | None = None, value: str = "100") -> dict[str, Any]:
    cap: dict[str, Any] = {"value": value}
    if policy is not None:
        cap["requestPolicy"] = policy
    return device("router-0", "spikeRouter", allowMultipleAllocations=True, capacity={"eventThroughputMEPS": cap})


RANGE = {"default": "10", "validRange": {"min": "10", "step": "10", "max": "60"}}


def share(amount: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if amount is not None:
        fields["capacity"] = {"requests": {"eventThroughputMEPS": amount}}
    return claim("c", exactly("r", "router", **fields))


def test_shared_device_rounds_requests_up_and_gets_a_share_id() -> None:
    slices = [rslice("s0", [router(RANGE)])]
    out = run(share("25"), slices)
    (res,) = out["devices"]["results"]
    assert res["device"] == "router-0"
    assert res["consumedCapacity"] == {"eventThroughputMEPS": "30"}
    assert res["shareID"] == str(uuid.UUID(res["shareID"])) and res["shareID"] == res["shareID"].lower()
    assert run(share(None), slices)["devices"]["results"][0]["consumedCapacity"] == {"eventThroughputMEPS": "10"}
    assert run(share("1"), slices)["devices"]["results"][0]["consumedCapacity"] == {"eventThroughputMEPS": "10"}
    with pytest.raises(Unsatisfiable, match="outside the device's requestPolicy"):
        run(share("61"), slices)


def test_shared_device_is_shared_until_its_capacity_is_used_up() -> None:
    slices = [rslice("s0", [router(RANGE)])]
    holders = [
        held(f"h{i}", "router-0", shareID=str(uuid.uuid4()), consumedCapacity={"eventThroughputMEPS": "30"})
        for i in range(3)
    ]
    out = run(share("10"), slices, allocated_claims=holders)
    assert out["devices"]["results"][0]["consumedCapacity"] == {"eventThroughputMEPS": "10"}
    with pytest.raises(Unsatisfiable, match="capacity eventThroughputMEPS exhausted"):
        run(share("20"), slices, allocated_claims=holders)


def test_shared_device_twice_in_one_claim_sums_the_shares() -> None:
    slices = [rslice("s0", [router(RANGE)])]
    both = claim("c", exactly("a", "router", capacity={"requests": {"eventThroughputMEPS": "50"}}),
                 exactly("b", "router", capacity={"requests": {"eventThroughputMEPS": "50"}}))
    out = run(both, slices)
    ids = {r["shareID"] for r in out["devices"]["results"]}
    assert picked(out) == ["router-0", "router-0"] and len(ids) == 2
    too_much = claim("c", exactly("a", "router", capacity={"requests": {"eventThroughputMEPS": "60"}}),
                     exactly("b", "router", capacity={"requests": {"eventThroughputMEPS": "50"}}))
    with pytest.raises(Unsatisfiable, match=r"request b: .*exhausted"):
        run(too_much, slices)


def test_valid_values_round_up_to_the_next_value() -> None:
    slices = [rslice("s0", [router({"default": "8", "validValues": ["8", "16", "32"]}, value="64")])]
    assert run(share("9"), slices)["devices"]["results"][0]["consumedCapacity"] == {"eventThroughputMEPS": "16"}
    with pytest.raises(Unsatisfiable, match="requestPolicy"):
        run(share("33"), slices)


def test_exclusive_device_checks_capacity_as_a_minimum() -> None:
    big = device("chip-0", capacity={"cores": {"value": "128"}})
    out = run(claim("c", exactly("r", "chip", capacity={"requests": {"cores": "100"}})), [rslice("s0", [big])])
    assert "consumedCapacity" not in out["devices"]["results"][0]
    with pytest.raises(Unsatisfiable, match="capacity cores is 128, less than requested"):
        run(claim("c", exactly("r", "chip", capacity={"requests": {"cores": "129"}})), [rslice("s0", [big])])


def test_quantity_arithmetic_is_exact() -> None:
    assert parse_quantity("1.5Gi") == 3 * 2**29 * 10**9
    assert parse_quantity("250m") * 4 == parse_quantity("1") == parse_quantity("1e0")
    assert sum([parse_quantity("100m")] * 3) == parse_quantity("300m")
    assert format_quantity(parse_quantity("300m")) == "300m"
    assert format_quantity(parse_quantity("2k")) == "2000"
    assert format_quantity(parse_quantity("1n")) == "1n"
    cap = Capacity("x", parse_quantity("1"), RequestPolicy.from_json({"validRange": {"min": "100m", "step": "100m"}}))
    assert cap.consumption(parse_quantity("150m")) == parse_quantity("200m")


# --- admin access -----------------------------------------------------------------------------------


ADMIN = {"resource.kubernetes.io/admin-access": "true"}


def test_admin_access_needs_the_namespace_label() -> None:
    c = claim("mon", exactly("r", "chip", adminAccess=True), namespace="ops")
    with pytest.raises(Unsatisfiable, match=re.escape('resource.kubernetes.io/admin-access="true" on namespace ops')):
        run(c, [rslice("s0", [device("chip-0")])], namespace_labels={"other": "x"})


def test_admin_access_ignores_exclusivity_and_does_not_block_others() -> None:
    slices = [rslice("s0", [device("chip-0")])]
    c = claim("mon", exactly("r", "chip", adminAccess=True), namespace="ops")
    out = run(c, slices, namespace_labels=ADMIN, allocated_claims=[held("user", "chip-0")])
    assert out["devices"]["results"][0] == {
        "request": "r", "driver": DRIVER, "pool": NODE, "device": "chip-0", "adminAccess": True,
    }
    assert picked(run(claim("user", exactly("r", "chip")), slices, allocated_claims=[held("mon", "chip-0",
                                                                                          admin=True)])) == ["chip-0"]


# --- taints -----------------------------------------------------------------------------------------


def tainted(effect: str, key: str = "snn.dra.dev/unhealthy", value: str = "true") -> list[dict[str, Any]]:
    return [rslice("s0", [device("chip-0", taints=[{"key": key, "value": value, "effect": effect}]),
                          device("chip-1", chip=1)])]


def test_no_schedule_taint_blocks_and_none_does_not() -> None:
    assert picked(run(claim("c", exactly("r", "chip")), tainted("NoSchedule"))) == ["chip-1"]
    assert picked(run(claim("c", exactly("r", "chip")), tainted("NoExecute"))) == ["chip-1"]
    assert picked(run(claim("c", exactly("r", "chip")), tainted("None"))) == ["chip-0"]
    with pytest.raises(Unsatisfiable, match=re.escape("taint snn.dra.dev/unhealthy=true:NoSchedule not tolerated")):
        run(claim("c", exactly("r", "chip", CHIP0)), tainted("NoSchedule"))


def test_tolerations_match_like_upstream() -> None:
    exists = [{"key": "snn.dra.dev/unhealthy", "operator": "Exists", "effect": "NoSchedule"}]
    out = run(claim("c", exactly("r", "chip", CHIP0, tolerations=exists)), tainted("NoSchedule"))
    assert picked(out) == ["chip-0"]
    assert out["devices"]["results"][0]["tolerations"] == exists
    wildcard = [{"operator": "Exists"}]
    assert picked(run(claim("c", exactly("r", "chip", CHIP0, tolerations=wildcard)), tainted("NoExecute"))) == [
        "chip-0"
    ]
    wrong_value = [{"key": "snn.dra.dev/unhealthy", "operator": "Equal", "value": "false"}]
    with pytest.raises(Unsatisfiable):
        run(claim("c", exactly("r", "chip", CHIP0, tolerations=wrong_value)), tainted("NoSchedule"))
    wrong_effect = [{"key": "snn.dra.dev/unhealthy", "operator": "Exists", "effect": "NoExecute"}]
    with pytest.raises(Unsatisfiable):
        run(claim("c", exactly("r", "chip", CHIP0, tolerations=wrong_effect)), tainted("NoSchedule"))
    equal = [{"key": "snn.dra.dev/unhealthy", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
    assert picked(run(claim("c", exactly("r", "chip", CHIP0, tolerations=equal)), tainted("NoSchedule"))) == [
        "chip-0"
    ]


def test_device_taint_rules_taint_selected_devices() -> None:
    slices = [rslice("s0", [device("chip-0"), device("chip-1", chip=1)])]
    rule = {"metadata": {"name": "drain"}, "spec": {"deviceSelector": {"driver": DRIVER, "device": "chip-0"},
                                                    "taint": {"key": "maintenance", "effect": "NoSchedule"}}}
    assert picked(run(claim("c", exactly("r", "chip")), slices, device_taint_rules=[rule])) == ["chip-1"]
    assert picked(run(claim("c", exactly("r", "chip")), slices)) == ["chip-0"]


def test_class_selector_sees_all_published_types() -> None:
    # Sanity check of the helper classes the feature tests rely on.
    slices = [rslice("s0", [device("cg", "coreGroup"), router(None)])]
    assert picked(run(claim("c", exactly("r", "router")), slices)) == ["router-0"]
    assert TYPE_IS.format("x") == 'device.attributes["snn.dra.dev"].type == "x"'
