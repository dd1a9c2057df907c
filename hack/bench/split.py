"""Split-placement benchmark: hop-weighted spike traffic of four ways to place a split model.

Usage: python hack/bench/split.py [INSTANCES_PER_FAMILY]   (default 6)

Boards (simulated, one node each, publishing chips and core groups): a Kapoho-Point-class Loihi-2-like
board (8 chips, 2x2x2), a SpiNNaker2-like server board (48 chips, 8x6) and four Akida-like PCIe cards.
Every instance first allocates random background claims (half the chips busy, 60 % of their core groups held,
one other chip held whole, all picked at random), then draws a split model of 3-5 stages (1-2 core groups or a
whole chip each, spike rates 10-1000 KEPS) and places it four ways, each allocated by the project's
structured allocator (the embedded scheduler's, with upstream first-fit semantics) on the same state:

  (a) first_fit    plain per-stage claims, one after the other, as the allocator places them;
  (b) constraints  the planner's claim (``split plan``): firstAvailable tight-to-loose + matchAttribute;
  (c) place        the pinned claim of ``split place`` (its devices, as allocated);
  (d) optimum      exhaustive branch and bound over the same candidate devices (only instances where it
                   finishes within 20 s; some 5-stage instances on the 48-chip board do not).

Traffic is ``cost.traffic`` (sum over consecutive stages of rate x hops). Per-family figures are printed as a
table; the totals sum the instances that have all four figures, so the ratios compare like with like.
``plan_s`` is the slowest full ``split place`` computation on the 48-chip board (plan, read the slices and
allocations, free devices, search, render), without the API round trips.

Last line: ``split-bench: first_fit=<a> constraints=<b> place=<c> optimum=<d> reduction=<1-c/a>
ratio_to_optimum=<c/d> plan_s=<t>``. Aims: reduction >= 0.40, ratio_to_optimum <= 1.10, plan_s < 1.
"""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from snn_dra.driver.backends import load_backend, parse_node_config
from snn_dra.driver.embedded.allocator import AllocatorCache, Unsatisfiable, allocate, allocate_claims
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices
from snn_dra.driver.split.cost import Site, traffic
from snn_dra.driver.split.inventory import read_inventory
from snn_dra.driver.split.loading import parse_model
from snn_dra.driver.split.manifests import claim_spec, render
from snn_dra.driver.split.placement import exhaustive, place
from snn_dra.driver.split.planner import Plan, plan_model

REPO = Path(__file__).resolve().parents[2]
NODE = "bench-0"
OPTIMUM_BUDGET_S = 20.0
BOARDS: dict[str, dict[str, Any]] = {
    "loihi2": {"family": "loihi2", "model": "kapoho-point", "chips": 8},
    "spinnaker2": {"family": "spinnaker2", "model": "spinnaker2-48", "chips": 48},
    "akida": {"family": "akida", "model": "akd1000-pcie", "chips": 1, "boards": 4},
}
GROUP_NEURONS = {"loihi2": 16 * 8192, "spinnaker2": 4 * 1000, "akida": 4 * 15000}


def board_slices(family: str) -> list[dict[str, Any]]:
    spec = dict(BOARDS[family])
    copies = spec.pop("boards", 1)
    config = parse_node_config({
        "apiVersion": "snn.dra.dev/v1alpha1", "kind": "NodeConfig", "backend": "simulated",
        "publish": {"levels": ["chip", "coreGroup"]}, "boards": [spec] * copies,
    })  # fmt: skip
    return build_slices(build_model(load_backend(config, NODE).discover(), config.publish), NODE)


def device_classes() -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((REPO / "deploy/base/deviceclasses.yaml").read_text())
    return [d for d in docs if d and d.get("kind") == "DeviceClass"]


def background(slices: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Allocated claims left by earlier workloads, at random: half the chips are busy (each of their core
    groups held with probability 0.6) and one other chip is held whole."""
    inv = read_inventory(slices, [])
    chips = [d.site for d in inv.devices if d.site.type == "chip"]
    busy = {c.chip for c in rng.sample(chips, len(chips) // 2)}
    whole = rng.choice([c for c in chips if c.chip not in busy])
    groups = [d.site for d in inv.devices if d.site.type == "coreGroup" and d.site.chip in busy]
    taken = [whole] + [g for g in groups if rng.random() < 0.6]
    return [
        {"metadata": {"namespace": "bg", "name": f"bg-{i}", "uid": f"bg-{i}"},
         "status": {"allocation": {"devices": {"results": [
             {"request": "r", "driver": "snn.dra.dev", "pool": s.pool, "device": s.device}]}}}}
        for i, s in enumerate(taken)
    ]  # fmt: skip


def random_model(family: str, rng: random.Random) -> Plan:
    n = rng.randint(3, 5)
    layers = []
    for i in range(n):
        kind = rng.choices(["one", "two", "chip"], weights=[5, 3, 1])[0]
        neurons = {"one": GROUP_NEURONS[family], "two": 2 * GROUP_NEURONS[family]}.get(kind, 0)
        layer: dict[str, Any] = {"name": f"l{i}", "neurons": neurons or 1, "spikeRateKEPS": rng.uniform(10, 1000)}
        if kind == "chip":
            layer["neurons"] = GROUP_NEURONS[family] * 6 if family != "spinnaker2" else 4 * 1000 * 30
        layers.append(layer)
    return plan_model(parse_model({
        "apiVersion": "snn.dra.dev/v1alpha1", "kind": "SplitModel", "metadata": {"name": "bench", "namespace": "b"},
        "spec": {"family": family, "layers": layers, "stages": n, "deviceTypes": ["coreGroup", "chip"]},
    }))  # fmt: skip


def claim(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "b", "name": name, "uid": name}, "spec": spec}


def cost_of(plan: Plan, sites: dict[str, Site], results: list[list[dict[str, Any]]]) -> float:
    by_stage: dict[str, list[Site]] = {}
    for res in results:
        for r in res:
            by_stage.setdefault(r["request"].split("/")[0], []).append(sites[r["device"]])
    return traffic([s.out_rate_keps for s in plan.stages], [by_stage[s.name] for s in plan.stages])


class OutOfTimeError(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise OutOfTimeError

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_instance(family: str, slices: list[dict[str, Any]], classes: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    bg = background(slices, rng)
    plan = random_model(family, rng)
    inv = read_inventory(slices, bg)
    sites = {d.site.device: d.site for d in inv.devices}
    cache = AllocatorCache()
    common: dict[str, Any] = {"node_name": NODE, "slices": slices, "classes": classes, "cache": cache}
    out: dict[str, Any] = {"stages": len(plan.stages), "devices": sum(s.count for s in plan.stages)}

    # (a) one plain claim per stage, allocated one after the other (each joins the allocated claims)
    held = list(bg)
    results = []
    try:
        for stage in plan.stages:
            spec = claim_spec(plan, plan.groups[0])["devices"]["requests"][stage.index]
            exactly = dict(spec.get("exactly") or spec["firstAvailable"][-1])
            exactly.pop("name", None)
            c = claim(f"ff-{stage.name}", {"devices": {"requests": [{"name": stage.name, "exactly": exactly}]}})
            alloc = allocate(c, allocated_claims=held, **common)
            held.append({**c, "status": {"allocation": alloc}})
            results.append(alloc["devices"]["results"])
    except Unsatisfiable:
        return {**out, "skip": "board too full for this model"}
    out["first_fit"] = cost_of(plan, sites, results)

    # (b) the planner's claim
    planned = claim("planned", claim_spec(plan, plan.groups[0]))
    alloc = allocate_claims([planned], allocated_claims=bg, **common)[0]
    out["constraints"] = cost_of(plan, sites, [alloc["devices"]["results"]])

    # (c) split place: the search on the live state, then its pinned claim through the allocator
    free = inv.free()
    placement = place(plan, free)
    template = next(d for d in render(plan, placement) if d["kind"] == "ResourceClaimTemplate")
    alloc = allocate_claims([claim("placed", template["spec"]["spec"])], allocated_claims=bg, **common)[0]
    subs = {r["request"].split("/")[1] for r in alloc["devices"]["results"]}
    assert subs == {"pinned"}, f"pinned placement not honoured: {subs}"
    out["place"] = cost_of(plan, sites, [alloc["devices"]["results"]])
    assert abs(out["place"] - placement.cost) < 1e-6

    # (d) the exact optimum, when branch and bound finishes in time
    try:
        with time_limit(OPTIMUM_BUDGET_S):
            out["optimum"] = exhaustive(plan, plan.groups[0], free)
    except OutOfTimeError:
        pass
    return out


def plan_seconds(slices: list[dict[str, Any]], seed: int) -> float:
    """Full `split place` computation without the API round trips: plan, inventory, search, render."""
    rng = random.Random(seed)
    bg = background(slices, rng)
    plan = random_model("spinnaker2", rng)
    start = time.perf_counter()
    plan = plan_model(plan.model)
    placement = place(plan, read_inventory(slices, bg).free())
    render(plan, placement)
    return time.perf_counter() - start


def main() -> None:
    per_family = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    console = Console(width=140)
    classes = device_classes()
    table = Table(title="split placement: hop-weighted spike traffic (KEPS x hops), summed per family")
    for col in ("FAMILY", "INSTANCES", "FIRST FIT", "CONSTRAINTS", "PLACE", "OPTIMUM (n)", "PLACE/FIRST FIT"):
        table.add_column(col, justify="right")
    totals = {"first_fit": 0.0, "constraints": 0.0, "place": 0.0, "optimum": 0.0}
    exact = 0
    slowest = 0.0
    for family in BOARDS:
        slices = board_slices(family)
        rows = []
        for i in range(per_family):
            with console.status(f"{family}: instance {i + 1}/{per_family}"):
                r = run_instance(family, slices, classes, seed=1000 * len(family) + i)
            if "skip" in r:
                console.print(f"  {family} #{i}: skipped ({r['skip']})")
                continue
            rows.append(r)
            opt = f"{r['optimum']:,.0f}" if r.get("optimum") is not None else "-"
            console.print(
                f"  {family} #{i}: {r['stages']} stages / {r['devices']} devices: first_fit={r['first_fit']:,.0f} "
                f"constraints={r['constraints']:,.0f} place={r['place']:,.0f} optimum={opt}",
                highlight=False,
            )
            if r.get("optimum") is not None:
                exact += 1
                for k in totals:
                    totals[k] += r[k]
        with_opt = [r for r in rows if r.get("optimum") is not None]
        ff = sum(r["first_fit"] for r in rows)
        table.add_row(
            family,
            str(len(rows)),
            f"{ff:,.0f}",
            f"{sum(r['constraints'] for r in rows):,.0f}",
            f"{sum(r['place'] for r in rows):,.0f}",
            f"{sum(r['optimum'] for r in with_opt):,.0f} ({len(with_opt)})",
            f"{sum(r['place'] for r in rows) / ff:.2f}" if ff else "-",
        )
        if family == "spinnaker2":
            slowest = max(plan_seconds(slices, seed) for seed in range(3))
    console.print(table)
    console.print(f"totals over the {exact} instances with an exact optimum; plan_s: 48-chip SpiNNaker2 board")
    a, b, c, d = (totals[k] for k in ("first_fit", "constraints", "place", "optimum"))
    print(
        f"split-bench: first_fit={a:.0f} constraints={b:.0f} place={c:.0f} optimum={d:.0f} "
        f"reduction={1 - c / a:.3f} ratio_to_optimum={c / d:.3f} plan_s={slowest:.3f}"
    )


if __name__ == "__main__":
    main()
