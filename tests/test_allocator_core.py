"""Allocator: request kinds, selectors, order, pools and generations, errors, search bound."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allocator_helpers import (
    DRIVER,
    NODE,
    TYPE_IS,
    claim,
    dclass,
    device,
    exactly,
    held,
    picked,
    rslice,
    standard_classes,
)

from snn_dra.driver.embedded.allocator import (
    AllocationError,
    AllocatorCache,
    SearchAborted,
    Unsatisfiable,
    allocate,
    allocate_claims,
)


def run(c: dict[str, Any], slices: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("classes", standard_classes())
    return allocate(c, node_name=NODE, slices=slices, **kw)


def chips(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [device(f"chip-{i}", chip=i, **extra) for i in range(n)]


def test_first_fit_result_shape_and_node_selector() -> None:
    out = run(claim("c", exactly("r", "chip")), [rslice("s0", chips(2))])
    assert out["devices"]["results"] == [{"request": "r", "driver": DRIVER, "pool": NODE, "device": "chip-0"}]
    assert out["nodeSelector"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}]
    }


def test_order_is_driver_then_pool_then_slice_name_then_device_order() -> None:
    slices = [
        rslice("s-b", [device("late")], pool="pool-b"),
        rslice("s-z", [device("z-first"), device("z-second")], pool="pool-a"),
        rslice("s-a", [device("a-first")], pool="pool-a", count=1, generation=1),
    ]
    # pool-a has two slices of one generation but says resourceSliceCount=1: invalid, so only pool-b is used.
    assert picked(run(claim("c", exactly("r")), slices)) == ["late"]
    slices[1]["spec"]["pool"]["resourceSliceCount"] = 2
    slices[2]["spec"]["pool"]["resourceSliceCount"] = 2
    out = run(claim("c", exactly("r", count=3)), slices, cache=AllocatorCache())
    assert picked(out) == ["a-first", "z-first", "z-second"]
    other = rslice("s-0", [device("other")], pool="pool-a", driver="aaa.example.com")
    classes = {**standard_classes(), "any": dclass("any")}
    assert picked(run(claim("c", exactly("r", "any")), [*slices, other], classes=classes)) == ["other"]


def test_devices_held_by_other_claims_are_skipped_and_failure_names_claim_and_request() -> None:
    slices = [rslice("s0", chips(2))]
    out = run(claim("c", exactly("r")), slices, allocated_claims=[held("o", "chip-0")])
    assert picked(out) == ["chip-1"]
    with pytest.raises(Unsatisfiable) as err:
        run(claim("c", exactly("r")), slices, allocated_claims=[held("o", "chip-0", "chip-1")])
    msg = str(err.value)
    assert msg.startswith("cannot allocate all claims: claim default/c, request r:")
    assert "2 allocated to another claim" in msg


def test_exact_count_picks_distinct_devices() -> None:
    out = run(claim("c", exactly("r", count=3)), [rslice("s0", chips(4))])
    assert picked(out) == ["chip-0", "chip-1", "chip-2"]
    with pytest.raises(Unsatisfiable, match="needs 5 devices, found at most 4 of 4"):
        run(claim("c", exactly("r", count=5)), [rslice("s0", chips(4))])


def test_class_and_request_selectors_both_apply() -> None:
    slices = [rslice("s0", [device("cg-0", "coreGroup"), *chips(3)])]
    out = run(claim("c", exactly("r", "chip", 'device.attributes["snn.dra.dev"].chipID >= 2')), slices)
    assert picked(out) == ["chip-2"]
    with pytest.raises(Unsatisfiable, match="no device matches the selectors of class chip"):
        run(claim("c", exactly("r", "chip", 'device.attributes["snn.dra.dev"].chipID > 7')), slices)


def test_missing_class_is_reported() -> None:
    with pytest.raises(Unsatisfiable, match="request r: device class nope not found"):
        run(claim("c", exactly("r", "nope")), [rslice("s0", chips(1))])


def test_cel_runtime_error_is_an_error_not_a_mismatch() -> None:
    slices = [rslice("s0", chips(2))]
    bad = 'device.attributes["snn.dra.dev"].missingAttr == 1'
    with pytest.raises(AllocationError) as err:
        run(claim("c", exactly("r", "snn", bad)), slices)
    assert not isinstance(err.value, Unsatisfiable)
    assert "claim default/c: selector #0: CEL runtime error" in str(err.value)
    assert "missingAttr" in str(err.value)
    classes = {**standard_classes(), "broken": dclass("broken", bad)}
    with pytest.raises(AllocationError, match="class broken: selector #0: CEL runtime error"):
        run(claim("c", exactly("r", "broken")), slices, classes=classes)
    guarded = 'device.attributes["snn.dra.dev"].?missingAttr.orValue(0) == 0'
    assert picked(run(claim("c", exactly("r", "snn", guarded)), slices)) == ["chip-0"]


def test_cel_runtime_error_only_counts_on_devices_the_search_reaches() -> None:
    slices = [rslice("s0", [device("chip-0"), device("chip-1", chip=1)])]
    slices[0]["spec"]["devices"][0]["attributes"]["x"] = {"int": 1}
    sel = 'device.attributes["snn.dra.dev"].x == 1'
    assert picked(run(claim("c", exactly("r", "snn", sel)), slices)) == ["chip-0"]
    with pytest.raises(AllocationError, match=re.escape("CEL runtime error on device snn.dra.dev/node-a/chip-1")):
        run(claim("c", exactly("r", "snn", sel, count=2)), slices)


def test_cel_compile_error_is_an_error() -> None:
    with pytest.raises(AllocationError, match="selector #0: CEL compile error"):
        run(claim("c", exactly("r", "snn", "device.attributes[")), [rslice("s0", chips(1))])


def test_first_available_falls_back_to_the_next_subrequest() -> None:
    req = {
        "name": "r",
        "firstAvailable": [
            {"name": "big", "deviceClassName": "chip", "count": 3},
            {"name": "small", "deviceClassName": "chip", "count": 2},
        ],
    }
    out = run(claim("c", req), [rslice("s0", chips(2))])
    assert [r["request"] for r in out["devices"]["results"]] == ["r/small", "r/small"]
    out = run(claim("c", req), [rslice("s0", chips(3))])
    assert [r["request"] for r in out["devices"]["results"]] == ["r/big"] * 3
    with pytest.raises(Unsatisfiable, match=r"subrequest r/big: .*subrequest r/small"):
        run(claim("c", req), [rslice("s0", chips(1))])


def test_all_mode_takes_every_matching_device() -> None:
    slices = [rslice("s0", [*chips(3), device("cg", "coreGroup")])]
    out = run(claim("c", exactly("r", "chip", allocationMode="All")), slices)
    assert picked(out) == ["chip-0", "chip-1", "chip-2"]
    with pytest.raises(Unsatisfiable, match="unusable: allocated to another claim"):
        run(claim("c", exactly("r", "chip", allocationMode="All")), slices, allocated_claims=[held("o", "chip-1")])


def test_all_mode_without_matching_devices_fails() -> None:
    with pytest.raises(Unsatisfiable, match="no device matches"):
        run(claim("c", exactly("r", "router", allocationMode="All")), [rslice("s0", chips(2))])


def test_all_mode_fails_while_a_pool_is_incomplete() -> None:
    slices = [rslice("s0", chips(2), count=2)]  # the second slice of the pool is not published yet
    with pytest.raises(Unsatisfiable, match=f"resource pool {DRIVER}/{NODE} is currently being updated"):
        run(claim("c", exactly("r", "chip", allocationMode="All")), slices)
    # ExactCount skips the incomplete pool instead and says so.
    with pytest.raises(Unsatisfiable, match=r"skipped pool .* is incomplete"):
        run(claim("c", exactly("r", "chip")), slices)


def test_all_mode_fails_on_an_invalid_pool() -> None:
    slices = [rslice("s0", [device("x"), device("x", chip=1)])]
    with pytest.raises(Unsatisfiable, match=r"is currently invalid .*device name x is used twice"):
        run(claim("c", exactly("r", allocationMode="All")), slices)
    with pytest.raises(Unsatisfiable, match="no device matches"):
        run(claim("c", exactly("r")), slices)


def test_only_the_newest_generation_counts() -> None:
    old = rslice("s-old", [device("retired")], generation=1)
    new = rslice("s-new", [device("current")], generation=2)
    assert picked(run(claim("c", exactly("r")), [old, new])) == ["current"]
    # Generation 3 half published: the pool is incomplete, nothing of generation 2 is used either.
    partial = rslice("s-next", [device("next")], generation=3, count=2)
    with pytest.raises(Unsatisfiable, match="incomplete"):
        run(claim("c", exactly("r")), [old, new, partial])


def test_slices_of_other_nodes_are_invisible_and_all_nodes_slices_have_no_node_selector() -> None:
    other = rslice("s-other", [device("far")], pool="node-b", node="node-b")
    with pytest.raises(Unsatisfiable):
        run(claim("c", exactly("r")), [other])
    shared = rslice("s-net", [device("net")], pool="fabric", all_nodes=True)
    out = run(claim("c", exactly("r")), [other, shared])
    assert picked(out) == ["net"]
    assert "nodeSelector" not in out


def test_more_than_32_devices_per_claim_is_refused() -> None:
    slices = [rslice("s0", chips(40))]
    with pytest.raises(Unsatisfiable, match="exceed 32 allocated devices per claim"):
        run(claim("c", exactly("r", "chip", allocationMode="All")), slices)
    assert len(picked(run(claim("c", exactly("r", count=32)), slices))) == 32


def test_match_attribute_backtracks_to_a_chip_that_fits_both_requests() -> None:
    slices = [rslice("s0", [device("cg-0a", "coreGroup", 0), device("cg-1a", "coreGroup", 1),
                            device("cg-1b", "coreGroup", 1)])]
    c = claim(
        "c",
        exactly("a", "core-group"),
        exactly("b", "core-group"),
        constraints=[{"requests": ["a", "b"], "matchAttribute": f"{DRIVER}/chipID"}],
    )
    assert picked(run(c, slices)) == ["cg-1a", "cg-1b"]
    c1 = claim("c", exactly("a", "core-group"), exactly("b", "core-group", count=2),
               constraints=[{"matchAttribute": f"{DRIVER}/chipID"}])
    with pytest.raises(Unsatisfiable, match=f"constraint matchAttribute {DRIVER}/chipID"):
        run(c1, slices)


def test_distinct_attribute_spreads_over_chips() -> None:
    slices = [rslice("s0", [device("cg-0a", "coreGroup", 0), device("cg-0b", "coreGroup", 0),
                            device("cg-1a", "coreGroup", 1)])]
    c = claim("c", exactly("a", "core-group", count=2), constraints=[{"distinctAttribute": f"{DRIVER}/chipID"}])
    assert picked(run(c, slices)) == ["cg-0a", "cg-1a"]
    c3 = claim("c", exactly("a", "core-group", count=3), constraints=[{"distinctAttribute": f"{DRIVER}/chipID"}])
    with pytest.raises(Unsatisfiable, match="distinctAttribute"):
        run(c3, slices)


def test_several_claims_are_allocated_together_without_sharing_devices() -> None:
    slices = [rslice("s0", chips(2))]
    a, b = allocate_claims(
        [claim("a", exactly("r")), claim("b", exactly("r"))],
        node_name=NODE,
        slices=slices,
        classes=standard_classes(),
    )
    assert (picked(a), picked(b)) == (["chip-0"], ["chip-1"])
    with pytest.raises(Unsatisfiable, match="claim default/c, request r"):
        allocate_claims(
            [claim("a", exactly("r")), claim("b", exactly("r")), claim("c", exactly("r"))],
            node_name=NODE, slices=slices, classes=list(standard_classes().values()),
        )


def test_config_from_class_and_claim() -> None:
    opaque_class = {"opaque": {"driver": DRIVER, "parameters": {"apiVersion": "snn.dra.dev/v1alpha1", "x": 1}}}
    opaque_claim = {"opaque": {"driver": DRIVER, "parameters": {"apiVersion": "snn.dra.dev/v1alpha1", "y": 2}}}
    classes = {**standard_classes(), "cfg": dclass("cfg", TYPE_IS.format("chip"), config=[opaque_class])}
    c = claim("c", exactly("r", "cfg"), exactly("q", "chip"),
              config=[{"requests": ["q"], **opaque_claim}, {"requests": ["gone"], **opaque_claim}])
    out = run(c, [rslice("s0", chips(2))], classes=classes)
    assert out["devices"]["config"] == [
        {"source": "FromClass", "requests": ["r"], **opaque_class},
        {"source": "FromClaim", "requests": ["q"], **opaque_claim},
        {"source": "FromClaim", "requests": ["gone"], **opaque_claim},  # upstream copies every claim entry
    ]


def test_search_is_bounded_by_its_deadline() -> None:
    # 9 requests must get distinct values of an attribute with only 8 values over 40 devices: no solution, and an
    # exhaustive first-fit search would take astronomically long.
    devs = [device(f"d-{i}", chip=i % 8) for i in range(40)]
    reqs = [exactly(f"r{i}") for i in range(9)]
    c = claim("c", *reqs, constraints=[{"distinctAttribute": f"{DRIVER}/chipID"}])
    with pytest.raises(SearchAborted, match=re.escape("search aborted after 0.2 s")):
        run(c, [rslice("s0", devs)], timeout=0.2)


def test_cache_reuses_selector_results_until_slices_change() -> None:
    cache = AllocatorCache()
    slices = [rslice("s0", chips(2))]
    run(claim("c", exactly("r", "chip")), slices, cache=cache)
    snap = cache.node_pools(slices, {"metadata": {"name": NODE}})
    # Evaluated lazily, as far as the first fit: chip-1 was never looked at.
    assert snap.by_key[(DRIVER, NODE, "chip-0")].selector_results
    assert not snap.by_key[(DRIVER, NODE, "chip-1")].selector_results
    run(claim("c", exactly("r", "chip", count=2)), slices, cache=cache)
    assert cache.node_pools(slices, {"metadata": {"name": NODE}}) is snap
    assert all(e.selector_results for e in snap.by_key.values())
    changed = [rslice("s0", chips(3))]
    assert cache.node_pools(changed, {"metadata": {"name": NODE}}) is not snap
    assert picked(run(claim("c", exactly("r", count=3)), changed, cache=cache)) == ["chip-0", "chip-1", "chip-2"]
