"""Allocator: upstream-fidelity fixes found in review (capacity keys, counters and pools across nodes,
tolerations with an empty key, allocation config and node selectors)."""

from __future__ import annotations

from typing import Any

import pytest
from allocator_helpers import (
    DRIVER,
    NODE,
    claim,
    device,
    exactly,
    held,
    picked,
    rslice,
    standard_classes,
)

from snn_dra.driver.embedded.allocator import Unsatisfiable, allocate
from snn_dra.driver.embedded.pools import build_node_pools


def run(c: dict[str, Any], slices: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("classes", standard_classes())
    return allocate(c, node_name=NODE, slices=slices, **kw)


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def selector(key: str, value: str) -> dict[str, Any]:
    return {"nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}]}


# --- 1. capacity request keys match exactly ----------------------------------------------------------


def router_slices(key: str = "eventThroughputMEPS") -> list[dict[str, Any]]:
    router = device("router-0", "spikeRouter", allowMultipleAllocations=True, capacity={key: {"value": "100"}})
    return [rslice("s", [router])]


def share(key: str, amount: str = "30") -> dict[str, Any]:
    return claim("c", exactly("r", "router", capacity={"requests": {key: amount}}))


def test_a_domain_qualified_request_does_not_match_a_bare_capacity_key() -> None:
    with pytest.raises(Unsatisfiable) as err:
        run(share(f"{DRIVER}/eventThroughputMEPS"), router_slices())
    assert f"capacity {DRIVER}/eventThroughputMEPS requested, but the device has no capacity of that exact name" in str(
        err.value
    )


def test_a_bare_request_does_not_match_a_qualified_capacity_key() -> None:
    with pytest.raises(Unsatisfiable, match="no capacity of that exact name"):
        run(share("eventThroughputMEPS"), router_slices(f"{DRIVER}/eventThroughputMEPS"))


def test_exact_keys_match_in_request_and_consumed_capacity() -> None:
    qualified = f"{DRIVER}/eventThroughputMEPS"
    out = run(share(qualified), router_slices(qualified))
    assert out["devices"]["results"][0]["consumedCapacity"] == {qualified: "30"}
    out = run(share("eventThroughputMEPS"), router_slices())
    assert out["devices"]["results"][0]["consumedCapacity"] == {"eventThroughputMEPS": "30"}


def test_held_consumed_capacity_counts_under_the_devices_own_key() -> None:
    shares = [held(f"h{i}", "router-0", shareID=f"00000000-0000-0000-0000-00000000000{i}",
                   consumedCapacity={"eventThroughputMEPS": "40"}) for i in range(2)]  # fmt: skip
    with pytest.raises(Unsatisfiable, match="capacity eventThroughputMEPS exhausted"):
        run(share("eventThroughputMEPS"), router_slices(), allocated_claims=shares)


def test_an_exclusive_device_without_the_requested_capacity_is_unsuitable() -> None:
    slices = [rslice("s", [device("chip-0", capacity={"cores": {"value": "128"}})])]
    with pytest.raises(Unsatisfiable, match=r"capacity snn\.dra\.dev/cores requested"):
        run(claim("c", exactly("r", "chip", capacity={"requests": {f"{DRIVER}/cores": "4"}})), slices)
    out = run(claim("c", exactly("r", "chip", capacity={"requests": {"cores": "4"}})), slices)
    assert picked(out) == ["chip-0"]


# --- 2. shared counters count devices allocated on other nodes -------------------------------------------


def per_device_slices() -> list[dict[str, Any]]:
    """One pool, one counter set of 4 cores; a 4-core partition on each of two nodes draws on it."""
    consumes = [{"counterSet": "cs", "counters": {"cores": {"value": "4"}}}]
    counters = rslice("a-counters", counters=[{"name": "cs", "counters": {"cores": {"value": "4"}}}],
                      pool="shared", count=2, all_nodes=True)  # fmt: skip
    devs = rslice("b-devices", pool="shared", count=2, all_nodes=True)
    devs["spec"].pop("allNodes")
    devs["spec"]["perDeviceNodeSelection"] = True
    devs["spec"]["devices"] = [
        device("part-n1", consumesCounters=consumes, nodeName=NODE),
        device("part-n2", consumesCounters=consumes, nodeName="node-b"),
    ]
    return [counters, devs]


def test_a_device_held_on_another_node_draws_on_the_shared_counter() -> None:
    slices = per_device_slices()
    assert picked(run(claim("c", exactly("r", "chip")), slices)) == ["part-n1"]
    other = held("o", "part-n2", pool="shared")
    with pytest.raises(Unsatisfiable, match="counter cs/cores exhausted"):
        run(claim("c", exactly("r", "chip")), slices, allocated_claims=[other])


def test_devices_of_other_nodes_are_never_candidates() -> None:
    pools = build_node_pools(per_device_slices(), node(NODE))
    assert [d.name for d in pools.usable_devices()] == ["part-n1"]
    assert (DRIVER, "shared", "part-n2") not in pools.by_key


# --- 3. pool completeness counts every slice of the generation ---------------------------------------


def per_node_selector_slices(generation_b: int = 1) -> list[dict[str, Any]]:
    out = []
    for name, zone, gen in (("s-a", "a", 1), ("s-b", "b", generation_b)):
        s = rslice(name, [device(f"chip-{zone}")], pool="zoned", count=2, generation=gen)
        s["spec"].pop("nodeName")
        s["spec"]["nodeSelector"] = selector("zone", zone)
        out.append(s)
    return out


def test_a_pool_split_by_node_selector_is_complete() -> None:
    pools = build_node_pools(per_node_selector_slices(), node(NODE, zone="a"))
    (pool,) = pools.pools
    assert not pool.incomplete and pool.usable
    assert [d.name for d in pools.usable_devices()] == ["chip-a"]
    out = run(claim("c", exactly("r", "chip")), per_node_selector_slices(), node=node(NODE, zone="a"))
    assert picked(out) == ["chip-a"]
    assert out["nodeSelector"] == selector("zone", "a")


def test_only_a_newer_generation_makes_a_slice_obsolete() -> None:
    # s-b moved to generation 2: s-a (generation 1) is obsolete, and generation 2 has 1 of 2 slices.
    pools = build_node_pools(per_node_selector_slices(generation_b=2), node(NODE, zone="a"))
    assert pools.pools == [] or all(not p.usable for p in pools.pools)
    pools = build_node_pools(per_node_selector_slices(generation_b=2), node(NODE, zone="b"))
    (pool,) = pools.pools
    assert pool.generation == 2 and pool.incomplete


def test_pools_this_node_cannot_see_are_not_reported() -> None:
    pools = build_node_pools(per_node_selector_slices(), node(NODE, zone="c"))
    assert pools.pools == []


# --- 4. tolerations ------------------------------------------------------------------------------------


def tainted() -> list[dict[str, Any]]:
    taint = {"key": "snn.dra.dev/maintenance", "value": "yes", "effect": "NoSchedule"}
    return [rslice("s", [device("chip-0", taints=[taint])])]


@pytest.mark.parametrize(
    ("toleration", "ok"),
    [
        ({"operator": "Equal", "value": "yes", "effect": "NoSchedule"}, True),
        ({"value": "yes"}, True),
        ({"operator": "Equal", "value": "no"}, False),
        ({"key": "other", "operator": "Equal", "value": "yes"}, False),
        ({"key": "snn.dra.dev/maintenance", "operator": "Equal", "value": "yes"}, True),
    ],
)
def test_an_equal_toleration_with_an_empty_key_matches_any_key(toleration: dict[str, Any], ok: bool) -> None:
    c = claim("c", exactly("r", "chip", tolerations=[toleration]))
    if ok:
        assert picked(run(c, tainted())) == ["chip-0"]
    else:
        with pytest.raises(Unsatisfiable, match="not tolerated"):
            run(c, tainted())


# --- 5. allocation config and node selector ------------------------------------------------------------


def opaque(n: int) -> dict[str, Any]:
    return {"driver": DRIVER, "parameters": {"n": n}}


def test_every_claim_config_entry_is_copied() -> None:
    first_available = {
        "name": "r",
        "firstAvailable": [{"name": "big", "deviceClassName": "chip"}, {"name": "small", "deviceClassName": "snn"}],
    }
    config = [
        {"requests": ["r/small"], "opaque": opaque(1)},
        {"requests": ["r/big"], "opaque": opaque(2)},
        {"opaque": opaque(3)},
    ]
    out = run(claim("c", first_available, config=config), [rslice("s", [device("chip-0")])])
    assert out["devices"]["results"][0]["request"] == "r/big"
    assert out["devices"]["config"] == [{"source": "FromClaim", **cfg} for cfg in config]


def test_devices_from_several_node_selector_slices_merge_into_one_term() -> None:
    slices = []
    for name, key in (("s-1", "zone"), ("s-2", "rack")):
        s = rslice(name, [device(f"chip-{key}")], pool=f"pool-{key}", count=1)
        s["spec"].pop("nodeName")
        s["spec"]["nodeSelector"] = selector(key, "x")
        slices.append(s)
    out = run(claim("c", exactly("r", "chip", count=2)), slices, node=node(NODE, zone="x", rack="x"))
    assert out["nodeSelector"] == {
        "nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": "rack", "operator": "In", "values": ["x"]},  # pool-rack comes first (pool order)
                {"key": "zone", "operator": "In", "values": ["x"]},
            ]}
        ]
    }  # fmt: skip


def test_a_node_local_device_pins_the_allocation_to_the_node() -> None:
    s = rslice("s-1", [device("chip-z")], pool="pool-z")
    s["spec"].pop("nodeName")
    s["spec"]["nodeSelector"] = selector("zone", "x")
    slices = [s, rslice("s-2", [device("chip-local")])]
    out = run(claim("c", exactly("r", "chip", count=2)), slices, node=node(NODE, zone="x"))
    assert out["nodeSelector"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}]
    }


def test_a_requirement_shared_by_several_devices_appears_once() -> None:
    slices = []
    for name in ("s-1", "s-2"):
        s = rslice(name, [device(f"chip-{name}")], pool=f"pool-{name}", count=1)
        s["spec"].pop("nodeName")
        s["spec"]["nodeSelector"] = selector("zone", "x")
        slices.append(s)
    out = run(claim("c", exactly("r", "chip", count=2)), slices, node=node(NODE, zone="x"))
    assert out["nodeSelector"] == selector("zone", "x")
