"""Split placement offline: hop distances per family, free-device bookkeeping, search quality."""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices
from snn_dra.driver.split.cost import NODE_HOPS, Site, hops, stage_hops, traffic
from snn_dra.driver.split.inventory import InventoryError, LiveDevice, read_inventory
from snn_dra.driver.split.loading import load_model, parse_model
from snn_dra.driver.split.placement import _NodeSpace, exhaustive, fits, place
from snn_dra.driver.split.planner import plan_model

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "deploy" / "node-configs"


@cache
def node_slices(config: str, node: str = "n0") -> tuple[dict[str, Any], ...]:
    cfg = load_node_config(CONFIGS / config)
    inventory = load_backend(cfg, node).discover()
    return tuple(build_slices(build_model(inventory, cfg.publish), node))


def devices(config: str, node: str = "n0") -> dict[str, LiveDevice]:
    return {d.site.device: d for d in read_inventory(node_slices(config, node), []).devices}


def pick(devs: dict[str, LiveDevice], kind: str, mesh: tuple[int, int, int], origin: tuple[int, int]) -> Site:
    found = [d.site for d in devs.values() if d.site.type == kind and d.site.mesh == mesh and d.site.origin == origin]
    assert len(found) == 1, (kind, mesh, origin)
    return found[0]


# --- hops -------------------------------------------------------------------------------------------


def test_loihi2_hops_match_hand_computed_routes() -> None:
    devs = devices("kapoho-point.yaml")
    a = pick(devs, "coreGroup", (0, 0, 0), (0, 0))
    b = pick(devs, "coreGroup", (0, 0, 0), (4, 12))
    assert hops(a, b) == 16  # X-Y on one chip's mesh: 4 + 12
    c = pick(devs, "neuronCore", (0, 0, 0), (1, 2))
    d = pick(devs, "neuronCore", (1, 1, 1), (3, 0))
    assert hops(c, d) == (1 + 2) + 3 + 3  # to the host port, 3 chip hops, out to (3, 0)
    chip0 = pick(devs, "chip", (0, 0, 0), (0, 0))
    chip7 = pick(devs, "chip", (1, 1, 1), (0, 0))
    assert hops(chip0, chip7) == 3


def test_spinnaker2_hops_match_hand_computed_routes() -> None:
    devs = devices("spinnaker2-48.yaml")
    a = pick(devs, "coreGroup", (0, 0, 0), (36, 2))
    b = pick(devs, "coreGroup", (7, 5, 0), (2, 0))
    assert hops(a, b) == (36 + 2) + (7 + 5) + 2
    assert hops(pick(devs, "chip", (2, 3, 0), (0, 0)), pick(devs, "chip", (5, 1, 0), (0, 0))) == 5


def test_akida_cards_talk_through_the_host() -> None:
    devs = devices("akida-pcie.yaml")
    groups = [d.site for d in devs.values() if d.site.type == "coreGroup" and d.site.origin == (4, 2)]
    assert len(groups) == 2 and groups[0].board != groups[1].board
    assert hops(groups[0], groups[1]) == groups[0].hops_to_host + groups[1].hops_to_host == 12
    other_node = devices("akida-pcie.yaml", "n1")
    far = next(d.site for d in other_node.values() if d.site.type == "coreGroup" and d.site.origin == (4, 2))
    assert hops(groups[0], far) == 12 + NODE_HOPS


@pytest.mark.parametrize("config", ["kapoho-point.yaml", "spinnaker2-48.yaml", "akida-pcie.yaml", "mixed.yaml"])
def test_hops_are_symmetric_zero_on_the_diagonal_and_match_the_search_matrix(config: str) -> None:
    sites = [d for d in devices(config).values()]
    rng = random.Random(7)
    sample = rng.sample(sites, min(150, len(sites)))
    space = _NodeSpace(sample)
    for i, a in enumerate(sample):
        assert hops(a.site, a.site) == 0
        for j in rng.sample(range(len(sample)), 20):
            b = sample[j]
            assert hops(a.site, b.site) == hops(b.site, a.site) >= 0
            assert space.hops[i, j] == hops(a.site, b.site)
            assert space.overlap[i, j] == a.site.overlaps(b.site)


def test_stage_hops_average_device_pairs_and_traffic_weights_by_rate() -> None:
    devs = devices("kapoho-point.yaml")
    a = pick(devs, "coreGroup", (0, 0, 0), (0, 0))
    b = pick(devs, "coreGroup", (0, 0, 0), (4, 0))
    c = pick(devs, "coreGroup", (0, 0, 0), (0, 4))
    assert stage_hops([a], [b, c]) == 4.0
    assert traffic([10.0, 2.0, 0.0], [[a], [b], [c]]) == 10 * 4 + 2 * 8


# --- inventory --------------------------------------------------------------------------------------


def _claim(*names: str, pool: str = "n0") -> dict[str, Any]:
    results = [{"request": "r", "driver": "snn.dra.dev", "pool": pool, "device": n} for n in names]
    return {"status": {"allocation": {"devices": {"results": results}}}}


def test_a_taken_partition_blocks_every_overlapping_one() -> None:
    devs = devices("kapoho-point.yaml")
    group = pick(devs, "coreGroup", (1, 0, 0), (4, 4))
    free = {d.site.device for d in read_inventory(node_slices("kapoho-point.yaml"), [_claim(group.device)]).free()}
    chip = pick(devs, "chip", (1, 0, 0), (0, 0))
    inside = pick(devs, "neuronCore", (1, 0, 0), (5, 6))
    beside = pick(devs, "coreGroup", (1, 0, 0), (0, 4))
    assert group.device not in free and chip.device not in free and inside.device not in free
    assert beside.device in free
    assert len(free) == len(devs) - 1 - 1 - 16  # the group, its chip, its 16 cores
    whole = read_inventory(node_slices("kapoho-point.yaml"), [_claim(chip.device)]).free()
    assert not any(d.site.chip == chip.chip for d in whole)


def test_tainted_devices_are_not_free_and_missing_attributes_are_named() -> None:
    slices = [dict(s) for s in node_slices("mixed.yaml")]  # its Akida card starts unhealthy
    free = read_inventory(slices, []).free()
    assert free and not any(d.family == "akida" for d in free)
    broken = {"spec": {"driver": "snn.dra.dev", "pool": {"name": "p", "generation": 1}, "nodeName": "p",
                       "devices": [{"name": "x", "attributes": {"type": {"string": "chip"}}}]}}  # fmt: skip
    with pytest.raises(InventoryError, match="device x has no attribute boardID"):
        read_inventory([broken], [])


# --- search -----------------------------------------------------------------------------------------


def _random_load(free: list[LiveDevice], fraction: float, seed: int, kind: str | None = None) -> list[LiveDevice]:
    """Take a random fraction of the partitions (of one type, as background claims would); return what stays free."""
    rng = random.Random(seed)
    taken: list[Site] = []
    for d in rng.sample(free, len(free)):
        if kind is not None and d.site.type != kind:
            continue
        if rng.random() < fraction and not any(d.site.overlaps(t) for t in taken):
            taken.append(d.site)
    return [d for d in free if not any(d.site == t or d.site.overlaps(t) for t in taken)]


def small_model(layers: int, kind: str, rates: list[float]) -> Any:
    neurons = {"neuronCore": 1000, "coreGroup": 20_000}[kind]
    return parse_model({
        "apiVersion": "snn.dra.dev/v1alpha1", "kind": "SplitModel", "metadata": {"name": "t"},
        "spec": {"family": "akida", "stages": layers, "deviceTypes": [kind],
                 "layers": [{"name": f"l{i}", "neurons": neurons, "spikeRateKEPS": rates[i]} for i in range(layers)]},
    })  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_search_is_within_ten_percent_of_the_exact_optimum(seed: int) -> None:
    rng = random.Random(seed)
    kind = rng.choice(["neuronCore", "coreGroup"])
    n = rng.choice([3, 4])
    plan = plan_model(small_model(n, kind, [rng.uniform(1, 100) for _ in range(n)]))
    free = [d for d in _random_load(list(devices("akida-pcie.yaml").values()), 0.3, seed) if d.site.type == kind]
    placement = place(plan, free)
    optimum = exhaustive(plan, plan.groups[0], free)
    assert optimum is not None and placement.cost >= optimum - 1e-9
    assert placement.cost <= optimum * 1.1 + 1e-9


def test_placement_uses_free_fitting_devices_once() -> None:
    plan = plan_model(load_model(REPO / "deploy/examples/split/gesture-net.yaml"))
    free = _random_load(list(devices("kapoho-point.yaml").values()), 0.25, 3, "coreGroup")
    placement = place(plan, free)
    chosen = [(stage, d) for g in placement.groups for stage, devs in zip(g.group.stages, g.stages, strict=True)
              for d in devs]  # fmt: skip
    assert len({d.site.device for _, d in chosen}) == len(chosen) == sum(s.count for s in plan.stages)
    assert all(fits(d, stage, plan) and d in free for stage, d in chosen)
    for i, (_, a) in enumerate(chosen):
        assert not any(a.site.overlaps(b.site) for _, b in chosen[i + 1 :])
    groups = [d for s, d in chosen if s.count == 3]
    assert len({d.site.chip for d in groups}) == 1  # a stage of several core groups stays on one chip
    assert placement.cost == pytest.approx(
        traffic([s.out_rate_keps for s in plan.stages], [[d.site for d in devs] for devs in placement.groups[0].stages])
    )


def test_scope_chip_keeps_every_stage_on_the_best_chip() -> None:
    plan = plan_model(load_model(REPO / "deploy/examples/split/keyword-spotter.yaml"))
    free = _random_load(list(devices("kapoho-point.yaml").values()), 0.3, 11, "coreGroup")
    placement = place(plan, free)
    assert len({d.site.chip for devs in placement.groups[0].stages for d in devs}) == 1
    per_chip = [exhaustive(plan, plan.groups[0], [d for d in free if d.site.chip == chip])
                for chip in {d.site.chip for d in free}]  # fmt: skip
    optimum = min(c for c in per_chip if c is not None)
    assert optimum - 1e-9 <= placement.cost <= optimum * 1.1 + 1e-9


INVENTORY_FOR = {"loihi2": "kapoho-point.yaml", "spinnaker2": "spinnaker2-48.yaml", "akida": "akida-pcie.yaml"}


@pytest.mark.parametrize("path", sorted((REPO / "deploy/examples/split").glob("*.yaml")), ids=lambda p: p.stem)
def test_pinned_manifests_pass_upstream_validation(path: Path) -> None:
    from snn_dra.driver.split.manifests import render
    from snn_dra.driver.validation import validate_object

    plan = plan_model(load_model(path))
    config = INVENTORY_FOR[str(plan.chip.family)]
    free = [d for node in ("n0", "n1", "n2") for d in devices(config, node).values()]
    placement = place(plan, free)
    docs = render(plan, placement)
    for doc in docs:
        if doc["apiVersion"].startswith("resource.k8s.io"):
            assert validate_object(doc, None, "1.37") == [], doc["metadata"]["name"]
            for request in doc["spec"]["spec"]["devices"]["requests"]:
                assert [s["name"] for s in request["firstAvailable"]][:2] == ["pinned", "near"]
    nodes = [g.node for g in placement.groups]
    assert len(nodes) == len(plan.groups)
