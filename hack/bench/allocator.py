"""Allocator benchmark on a node publishing every level of the example Kapoho-Point-class board.

Usage: python hack/bench/allocator.py [PODS]

1. CEL: every DeviceClass selector of deploy/base/deviceclasses.yaml plus three request selectors, evaluated
   on every published device (views prebuilt once, as the allocator keeps them), without memoisation, two ways:
   one selector at a time (each evaluation converts the device), and the allocator's path, which evaluates a
   device's selectors in one batch over one conversion (``evaluate_many``). The summary uses the latter.
2. Scheduling: PODS pods (default 100) with 3 template claims each -- two neuron cores on one chip
   (matchAttribute), an event-queue share and a spike-router share (consumable capacity) -- are scheduled by
   the embedded Scheduler in one pass over an in-process Store: claim creation from templates, allocation
   with a cold allocator cache, finalizer + status writes, binding. The same workload is also run through the
   allocator alone (same bookkeeping: each result joins the allocated claims) for comparison.

The last line is the summary: ``allocator-bench: cel_evals_per_s=<n> schedule_100_pods_s=<s>``, where the
scheduling figure is the **allocator path with the scheduler's bookkeeping** (claims allocated jointly per pod,
every result joining the allocated claims, one shared cold cache). The scheduler + store figure is printed
above it: there most of the time goes to the store's per-write validation (jsonschema), not to allocation.
CEL figures are evaluations (no memo hits); the allocator itself asks each (selector, device) pair once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml

from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.cel import compile_selector, device_view, evaluate_many
from snn_dra.driver.embedded.allocator import AllocatorCache, allocate_claims
from snn_dra.driver.embedded.scheduler import Scheduler
from snn_dra.driver.embedded.store import Store
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices

REPO = Path(__file__).resolve().parents[2]
NODE = "kapoho-0"
D = 'device.attributes["snn.dra.dev"]'
REQUEST_SELECTORS = [
    f'device.driver == "snn.dra.dev" && {D}.hopsToHost <= 8',
    f'device.driver == "snn.dra.dev" && {D}.version.isGreaterThan(semver("1.0.0"))',
    'device.driver == "snn.dra.dev" && device.capacity["snn.dra.dev"].?cores.orValue(quantity("0"))'
    '.compareTo(quantity("1")) >= 0',
]


def node_slices() -> list[dict[str, Any]]:
    config = load_node_config(REPO / "deploy/node-configs/kapoho-point.yaml")
    model = build_model(load_backend(config, NODE).discover(), config.publish)
    return build_slices(model, NODE)


def device_classes() -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((REPO / "deploy/base/deviceclasses.yaml").read_text())
    return [d for d in docs if d and d.get("kind") == "DeviceClass"]


def bench_cel(slices: list[dict[str, Any]], classes: list[dict[str, Any]]) -> float:
    devices = [(s["spec"]["driver"], d) for s in slices for d in s["spec"].get("devices") or ()]
    t0 = time.perf_counter()
    views = [device_view(drv, d) for drv, d in devices]
    t_views = time.perf_counter() - t0
    exprs = [sel["cel"]["expression"] for c in classes for sel in c["spec"].get("selectors") or ()]
    exprs += REQUEST_SELECTORS
    selectors = [compile_selector(e) for e in exprs]
    evals = matches = 0
    t0 = time.perf_counter()
    for sel in selectors:
        for view in views:
            matches += sel.evaluate(view)
            evals += 1
    single = time.perf_counter() - t0
    print(f"devices={len(views)} views_built_in={t_views * 1000:.1f}ms selectors={len(selectors)} "
          f"evals={evals} matches={matches}")
    print(f"one selector at a time:      {evals / single:>9,.0f} evals/s ({single:.3f}s)")
    for sel in selectors:
        sel._memo.clear()  # measure evaluations, not memo hits
    batched_matches = 0
    t0 = time.perf_counter()
    for view in views:
        batched_matches += sum(r is True for r in evaluate_many(selectors, view))
    batched = time.perf_counter() - t0
    assert batched_matches == matches, "batched evaluation must give the same results"
    print(f"per-device batch (allocator): {evals / batched:>9,.0f} evals/s ({batched:.3f}s)")
    return evals / batched


def templates() -> list[dict[str, Any]]:
    def tmpl(name: str, requests: list[dict[str, Any]], constraints: list[dict[str, Any]] | None = None) -> Any:
        devices: dict[str, Any] = {"requests": requests}
        if constraints:
            devices["constraints"] = constraints
        return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "metadata": {"name": name, "namespace": "default"}, "spec": {"spec": {"devices": devices}}}

    cores = tmpl(
        "two-cores",
        [{"name": "cores", "exactly": {"deviceClassName": "snn-neuron-core", "count": 2,
                                       "selectors": [{"cel": {"expression": REQUEST_SELECTORS[0]}}]}}],
        [{"matchAttribute": "snn.dra.dev/chipID"}],
    )
    queue = tmpl("queue", [{"name": "queue", "exactly": {
        "deviceClassName": "snn-event-queue", "capacity": {"requests": {"queueDepth": "200"}}}}])
    router = tmpl("router", [{"name": "router", "exactly": {
        "deviceClassName": "snn-spike-router",
        "capacity": {"requests": {"eventThroughputMEPS": "20"}}}}])
    return [cores, queue, router]


def pod(i: int) -> dict[str, Any]:
    claims = [("cores", "two-cores"), ("queue", "queue"), ("router", "router")]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"snn-{i:03d}", "namespace": "default"},
        "spec": {
            "containers": [{"name": "main", "image": "lava:latest",
                            "resources": {"claims": [{"name": n} for n, _ in claims]}}],
            "resourceClaims": [{"name": n, "resourceClaimTemplateName": t} for n, t in claims],
        },
    }


def bench_scheduler(slices: list[dict[str, Any]], classes: list[dict[str, Any]], pods: int) -> float:
    store = Store()
    store.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    for c in classes:
        store.create("deviceclasses", c)
    for s in slices:
        store.create("resourceslices", s)
    for t in templates():
        store.create("resourceclaimtemplates", t)
    for i in range(pods):
        store.create("pods", pod(i))
    t0 = time.perf_counter()
    report = Scheduler(store, cache=AllocatorCache()).reconcile()
    elapsed = time.perf_counter() - t0
    if len(report.scheduled) != pods:
        sys.exit(f"only {len(report.scheduled)} of {pods} pods scheduled: {list(report.unschedulable.items())[:1]}")
    print(f"scheduler+store: {pods} pods, {len(report.created_claims)} claims created and allocated in {elapsed:.3f}s")
    return elapsed


def bench_allocator_only(slices: list[dict[str, Any]], classes: list[dict[str, Any]], pods: int) -> float:
    specs = {t["metadata"]["name"]: t["spec"]["spec"] for t in templates()}
    stored = [{**s, "metadata": {"name": f"s{i}", "resourceVersion": str(i)}} for i, s in enumerate(slices)]
    cache, allocated = AllocatorCache(), []
    t0 = time.perf_counter()
    for i in range(pods):
        claims = [{"metadata": {"namespace": "default", "name": f"p{i}-{t}", "uid": f"p{i}-{t}"}, "spec": spec}
                  for t, spec in specs.items()]
        results = allocate_claims(claims, node_name=NODE, slices=stored, classes=classes,
                                  allocated_claims=allocated, cache=cache)
        for c, r in zip(claims, results, strict=True):
            allocated.append({**c, "metadata": {**c["metadata"], "resourceVersion": "1"}, "status": {"allocation": r}})
    elapsed = time.perf_counter() - t0
    print(f"allocator only: {pods} pods x 3 claims in {elapsed:.3f}s")
    return elapsed


def main() -> None:
    pods = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    slices, classes = node_slices(), device_classes()
    evals_per_s = bench_cel(slices, classes)
    bench_scheduler(slices, classes, pods)
    elapsed = bench_allocator_only(slices, classes, pods)
    print(f"allocator-bench: cel_evals_per_s={evals_per_s:.0f} schedule_100_pods_s={elapsed * 100 / pods:.3f}")


if __name__ == "__main__":
    main()
