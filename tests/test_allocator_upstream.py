"""Allocator rows from upstream's structured-allocator tests: allocationMode All with consumable capacity.

Upstream facts (k8s.io/dynamic-resource-allocation, structured allocator): for an ``All`` request the scheduler
first lists every matching device whose capacity could serve the request and then needs all of them. A device
that lacks a requested capacity, whose requestPolicy cannot size the request, or whose capacity is smaller than
the request is not part of "all". Up to 1.36 the capacity that other claims already consume counted too, so a
shared device with no capacity left was skipped; from 1.37 only the device's own capacity counts, and a shared
device that is used up makes the request fail instead of being silently left out.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from allocator_helpers import NODE, claim, device, exactly, held, picked, rslice, standard_classes

from snn_dra.driver.embedded.allocator import AllocationError, Unsatisfiable, allocate

CAP = "eventThroughputMEPS"


def router(name: str, value: str = "100", policy: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    cap: dict[str, Any] = {"value": value}
    if policy is not None:
        cap["requestPolicy"] = policy
    return device(name, "spikeRouter", allowMultipleAllocations=True, capacity={CAP: cap}, **extra)


def all_routers(amount: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"allocationMode": "All"}
    if amount is not None:
        fields["capacity"] = {"requests": {CAP: amount}}
    return claim("c", exactly("r", "router", **fields))


def holder(name: str, dev: str, amount: str) -> dict[str, Any]:
    return held(name, dev, shareID=str(uuid.uuid4()), consumedCapacity={CAP: amount})


def run(c: dict[str, Any], slices: list[dict[str, Any]], version: str = "1.37", **kw: Any) -> dict[str, Any]:
    return allocate(c, node_name=NODE, slices=slices, classes=standard_classes(), kubernetes_version=version, **kw)


RANGE = {"default": "10", "validRange": {"min": "10", "step": "10", "max": "50"}}


# (id, devices, requested amount, devices expected in the result)
STATIC_ROWS: list[tuple[str, list[dict[str, Any]], str | None, list[str]]] = [
    ("all-fit", [router("r0"), router("r1")], "40", ["r0", "r1"]),
    ("smaller-capacity-skipped", [router("r0"), router("r1", value="30")], "40", ["r0"]),
    ("no-request-takes-whole-capacity", [router("r0"), router("r1", value="30")], None, ["r0", "r1"]),
    ("policy-cannot-size-skipped", [router("r0", policy=RANGE), router("r1")], "60", ["r1"]),
    ("policy-rounds-up-within-capacity", [router("r0", policy=RANGE), router("r1")], "45", ["r0", "r1"]),
    (
        "missing-capacity-skipped",
        [router("r0"), device("r1", "spikeRouter", allowMultipleAllocations=True, capacity={"other": {"value": "9"}})],
        "5",
        ["r0"],
    ),
    (
        "exclusive-device-too-small-skipped",
        [router("r0"), device("r1", "spikeRouter", capacity={CAP: {"value": "20"}})],
        "40",
        ["r0"],
    ),
]


@pytest.mark.parametrize("version", ["1.36", "1.37"])
@pytest.mark.parametrize(
    ("devices", "amount", "expected"), [r[1:] for r in STATIC_ROWS], ids=[r[0] for r in STATIC_ROWS]
)
def test_all_mode_skips_devices_whose_capacity_cannot_serve_the_request(
    version: str, devices: list[dict[str, Any]], amount: str | None, expected: list[str]
) -> None:
    out = run(all_routers(amount), [rslice("s0", devices)], version)
    assert picked(out) == expected
    for res in out["devices"]["results"]:
        assert res["device"] in expected


def test_all_mode_needs_at_least_one_device_with_the_capacity() -> None:
    with pytest.raises(Unsatisfiable, match="none of the 2 matching devices has the capacity the request needs"):
        run(all_routers("500"), [rslice("s0", [router("r0"), router("r1")])])


def test_used_up_shared_device_is_skipped_up_to_1_36() -> None:
    slices = [rslice("s0", [router("r0"), router("r1")])]
    others = [holder("h0", "r1", "80")]
    out = run(all_routers("40"), slices, "1.36", allocated_claims=others)
    assert picked(out) == ["r0"]
    # Still capacity left for the request on both: both are taken.
    assert picked(run(all_routers("20"), slices, "1.36", allocated_claims=others)) == ["r0", "r1"]


def test_used_up_shared_device_makes_all_fail_from_1_37() -> None:
    slices = [rslice("s0", [router("r0"), router("r1")])]
    others = [holder("h0", "r1", "80")]
    with pytest.raises(Unsatisfiable, match="capacity eventThroughputMEPS exhausted"):
        run(all_routers("40"), slices, "1.37", allocated_claims=others)
    assert picked(run(all_routers("20"), slices, "1.37", allocated_claims=others)) == ["r0", "r1"]


def test_a_negative_capacity_request_aborts_instead_of_over_allocating() -> None:
    """A claim stored before validation refused it: upstream stops with an error that says "negative"."""
    c = claim("c", exactly("r", "router", capacity={"requests": {CAP: "-5"}}))
    with pytest.raises(AllocationError, match=f"claim default/c, request r: capacity request {CAP} is negative"):
        run(c, [rslice("s0", [router("r0")])])
