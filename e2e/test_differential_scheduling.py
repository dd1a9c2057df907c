"""The real scheduler and the embedded one allocate the same claims to the same devices.

An embedded cluster (API server, scheduler, kubelet emulation) is started in this process with the real node's
name, the cluster's Kubernetes minor version and DRA feature gates, and the real plugin process running the
node config the DaemonSet mounts. Both pools must hold the same devices. Then the demo workloads of
``deploy/demo`` and a table of scenarios run on both sides, pod by pod in the same order, and every pod's
outcome is compared: the device each request got (with the consumed capacity), or unschedulable on both.

Allocation order is specified closely enough upstream to compare device names: the allocator visits pools by
name, a pool's slices by name (ours are named by a hex index prefix, so both sides sort them alike) and each
slice's devices in order, and takes the first fit, backtracking in that order. What is not specified is a
shared device's ``shareID`` (random), so only its presence is compared.
"""

from __future__ import annotations

import copy
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from e2e import apis, kube
from snn_dra.driver.embedded.cluster import EmbeddedCluster
from snn_dra.driver.kubejson import KubeJSON

Obj = dict[str, Any]
NAMESPACE = f"snn-e2e-diffsched-{uuid.uuid4().hex[:6]}"
RESOURCE = "/apis/resource.k8s.io/v1"
Outcome = tuple[Any, ...]


def _quantity(text: str) -> Any:
    return parse_quantity(text)  # type: ignore[no-untyped-call]


def _quantities(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _quantity(v["value"] if isinstance(v, dict) else v) for k, v in values.items()}


def _device_key(device: Obj) -> Obj:
    """A device as the allocator sees it; capacities by value (the real server canonicalizes quantities)."""
    out = copy.deepcopy(device)
    if "capacity" in out:
        out["capacity"] = {k: {**v, "value": _quantity(v["value"])} for k, v in sorted(out["capacity"].items())}
    for consumed in out.get("consumesCounters") or []:
        consumed["counters"] = _quantities(consumed["counters"])
    for taint in out.get("taints") or []:
        taint.pop("timeAdded", None)  # set by each API server when it stores the slice
    return out


class Side:
    """One cluster seen through the official client: create the workloads, read each pod's outcome."""

    def __init__(self, name: str, api: KubeJSON) -> None:
        self.name = name
        self.api = api

    def path(self, obj: Obj) -> str:
        kind = obj["kind"]
        if kind == "Pod":
            return f"/api/v1/namespaces/{NAMESPACE}/pods"
        if kind == "ResourceClaimTemplate":
            return f"{RESOURCE}/namespaces/{NAMESPACE}/resourceclaimtemplates"
        raise ValueError(kind)

    def create(self, obj: Obj) -> None:
        self.api.create(self.path(obj), obj)

    def delete(self, obj: Obj) -> None:
        try:
            self.api.delete(f"{self.path(obj)}/{obj['metadata']['name']}")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def claims(self) -> list[Obj]:
        found: list[Obj] = self.api.get(f"{RESOURCE}/namespaces/{NAMESPACE}/resourceclaims")["items"]
        return found

    def outcome(self, pod_name: str) -> Outcome | None:
        """The pod's allocation per pod claim, ``("unschedulable",)``, or None while still undecided."""
        pod = self.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod_name}")
        wanted = [c["name"] for c in pod["spec"].get("resourceClaims", [])]
        names = {s["name"]: s.get("resourceClaimName") for s in pod.get("status", {}).get("resourceClaimStatuses", [])}
        if any(not names.get(c) for c in wanted):
            return None  # the resourceclaim controller has not created every claim yet
        claims = {c: self.api.get(f"{RESOURCE}/namespaces/{NAMESPACE}/resourceclaims/{names[c]}") for c in wanted}
        if pod["spec"].get("nodeName") and all(c.get("status", {}).get("allocation") for c in claims.values()):
            results = []
            for pod_claim, claim in sorted(claims.items()):
                for r in claim["status"]["allocation"]["devices"]["results"]:
                    consumed = _quantities(r.get("consumedCapacity") or {})
                    results.append((pod_claim, r["request"], r["pool"], r["device"], consumed, "shareID" in r))
            return tuple(sorted(results, key=str))
        scheduled: Obj = next(
            (c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), {}
        )
        # Only final once the claims exist (checked above): before, upstream reports "waiting for ... claim".
        if (
            scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
            and "waiting" not in scheduled.get("message", "")
        ):
            return ("unschedulable",)
        return None


@dataclass
class Workload:
    """Claim templates plus pods, applied pod by pod in order (later pods see earlier allocations)."""

    templates: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)


def _pod(name: str, claims: dict[str, str], node: str, image: tuple[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "resourceClaims": [{"name": c, "resourceClaimTemplateName": t} for c, t in claims.items()],
            "containers": [
                {
                    "name": "job",
                    "image": image[0],
                    "imagePullPolicy": image[1],
                    "command": ["sleep", "infinity"],
                    "resources": {"claims": [{"name": c} for c in claims]},
                }
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }


def _template(name: str, devices: Obj) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"spec": {"devices": devices}},
    }


def _exactly(device_class: str, *cel: str, **extra: Any) -> Obj:
    request: Obj = {"deviceClassName": device_class, **extra}
    if cel:
        request["selectors"] = [{"cel": {"expression": e}} for e in cel]
    return request


def _on_chip(chip: str) -> str:
    return f'device.attributes["snn.dra.dev"].chipID == "{chip}"'


def _pods(node: str, image: tuple[str, str], *pods: tuple[str, Obj]) -> Workload:
    """One template per pod (named after it) holding ``devices``; pods in the order given."""
    workload = Workload()
    for name, devices in pods:
        workload.templates.append(_template(name, devices))
        workload.pods.append(_pod(name, {"c": name}, node, image))
    return workload


def scenarios(node: str, image: tuple[str, str], chips: list[str]) -> dict[str, Workload]:
    """Our own table; ``chips`` are the untainted chip IDs of the node, sorted."""
    one = chips[0]
    core_group = {"requests": [{"name": "g", "exactly": _exactly("snn-core-group")}]}
    router = {
        "requests": [
            {
                "name": "r",
                "exactly": _exactly("snn-spike-router", capacity={"requests": {"eventThroughputMEPS": "200"}}),
            }
        ]
    }
    return {
        "single-core": _pods(
            node, image, ("core", {"requests": [{"name": "n", "exactly": _exactly("snn-neuron-core")}]})
        ),
        "core-group": _pods(node, image, ("group", core_group)),
        "whole-chip": _pods(node, image, ("chip", {"requests": [{"name": "c", "exactly": _exactly("snn-chip")}]})),
        "first-available-falls-through": _pods(
            node,
            image,
            (
                "fa",
                {
                    "requests": [
                        {
                            "name": "x",
                            "firstAvailable": [
                                {
                                    "name": "huge",
                                    "deviceClassName": "snn-chip",
                                    "allocationMode": "ExactCount",
                                    "count": 64,
                                },
                                {"name": "group", "deviceClassName": "snn-core-group"},
                            ],
                        }
                    ]
                },
            ),
        ),
        "match-attribute-three-groups": _pods(
            node,
            image,
            (
                "three",
                {
                    "requests": [{"name": f"s{i}", "exactly": _exactly("snn-core-group")} for i in range(3)],
                    "constraints": [{"requests": ["s0", "s1", "s2"], "matchAttribute": "snn.dra.dev/chipID"}],
                },
            ),
        ),
        "count-four-groups": _pods(
            node,
            image,
            (
                "four",
                {
                    "requests": [
                        {"name": "g", "exactly": _exactly("snn-core-group", allocationMode="ExactCount", count=4)}
                    ]
                },
            ),
        ),
        "all-groups-of-one-chip": _pods(
            node,
            image,
            (
                "all",
                {
                    "requests": [
                        {"name": "g", "exactly": _exactly("snn-core-group", _on_chip(one), allocationMode="All")}
                    ]
                },
            ),
        ),
        "router-shared-by-capacity": _pods(node, image, *[(f"router-{i}", router) for i in range(4)]),
        "chip-then-group-on-it-unschedulable": _pods(
            node,
            image,
            ("chip", {"requests": [{"name": "c", "exactly": _exactly("snn-chip", _on_chip(one))}]}),
            ("group", {"requests": [{"name": "g", "exactly": _exactly("snn-core-group", _on_chip(one))}]}),
        ),
        "group-then-chip-on-it-unschedulable": _pods(
            node,
            image,
            ("group", {"requests": [{"name": "g", "exactly": _exactly("snn-core-group", _on_chip(one))}]}),
            ("chip", {"requests": [{"name": "c", "exactly": _exactly("snn-chip", _on_chip(one))}]}),
            ("other", {"requests": [{"name": "c", "exactly": _exactly("snn-chip")}]}),
        ),
        "too-many-chips-unschedulable": _pods(
            node,
            image,
            (
                "many",
                {
                    "requests": [
                        {
                            "name": "c",
                            "exactly": _exactly("snn-chip", allocationMode="ExactCount", count=len(chips) + 1),
                        }
                    ]
                },
            ),
        ),
        "selector-on-capacity": _pods(
            node,
            image,
            (
                "big",
                {
                    "requests": [
                        {
                            "name": "g",
                            "exactly": _exactly(
                                "snn-core-group",
                                'device.capacity["snn.dra.dev"].neurons.compareTo(quantity("1")) > 0',
                                f'device.attributes["snn.dra.dev"].chipID != "{one}"',
                            ),
                        }
                    ]
                },
            ),
        ),
    }


def demo_workloads(node: str, image: tuple[str, str]) -> Workload:
    """deploy/demo in our namespace, on the node, with the driver image (nothing to pull), in kustomization order."""
    kustomization = yaml.safe_load((kube.REPO / "deploy/demo/kustomization.yaml").read_text())
    workload = Workload()
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((kube.REPO / "deploy/demo" / name).read_text()):
            if not doc or doc["kind"] == "Namespace":
                continue
            doc["metadata"]["namespace"] = NAMESPACE
            if doc["kind"] == "Pod":
                doc["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
                for container in doc["spec"]["containers"]:
                    container["image"], container["imagePullPolicy"] = image
                workload.pods.append(doc)
            else:
                workload.templates.append(doc)
    return workload


@pytest.fixture(scope="module")
def sides(worker: str) -> Iterator[tuple[Side, Side]]:
    profile = apis.cluster_profile()
    gates = apis.cluster_feature_gates(profile)
    _, node_config = kube.installed_node_config()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    with tempfile.TemporaryDirectory(prefix="snn-diffsched-") as tmp:
        config_file = Path(tmp) / "node-config.yaml"
        config_file.write_text(node_config)
        cluster = EmbeddedCluster(nodes=(worker,), profile=profile, feature_gates=gates).start()
        try:
            cluster.start_plugin(worker, config_file)
            embedded = KubeJSON(config.new_client_from_config(config_file=str(cluster.kubeconfig_path)))  # type: ignore[no-untyped-call]
            for doc in kube.render("deploy/base"):
                if doc["kind"] == "DeviceClass":
                    embedded.create(f"{RESOURCE}/deviceclasses", doc)
            embedded.create("/api/v1/namespaces", namespace)
            kube.apply(namespace)
            real = apis.cluster_client()
            try:
                yield Side("real", real), Side("embedded", embedded)
            finally:
                real.api_client.close()  # type: ignore[no-untyped-call]
                embedded.api_client.close()  # type: ignore[no-untyped-call]
                kube.kubectl(
                    "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", timeout=200, check=False
                )
        finally:
            cluster.stop()


def _pool(api: KubeJSON, node: str) -> dict[str, Obj] | None:
    slices = [
        s
        for s in api.get(f"{RESOURCE}/resourceslices")["items"]
        if s["spec"].get("nodeName") == node and s["spec"]["driver"] == kube.DRIVER
    ]
    current = kube.current_pool(slices)
    return {d["name"]: d for s in current for d in s["spec"].get("devices", [])} if current else None


def _allocated_on(node: str) -> list[str]:
    """Claims anywhere in the cluster holding devices of the node's pool (other tests' leftovers)."""
    held = []
    for claim in kube.items("resourceclaims", "-A"):
        results = claim.get("status", {}).get("allocation", {}).get("devices", {}).get("results", [])
        if any(r["pool"] == node and r["driver"] == kube.DRIVER for r in results):
            held.append(f"{claim['metadata']['namespace']}/{claim['metadata']['name']}")
    return held


@pytest.fixture(scope="module")
def chips(sides: tuple[Side, Side], worker: str) -> list[str]:
    """Both pools are complete and hold the same devices; nothing of the real node's pool is allocated."""
    real, embedded = sides
    real_pool = kube.wait_until("the real node's complete pool", lambda: _pool(real.api, worker))
    ours = kube.wait_until("the embedded node's complete pool", lambda: _pool(embedded.api, worker), timeout=60)
    assert sorted(ours) == sorted(real_pool), "the two plugins publish different device names"
    for name, device in real_pool.items():
        assert _device_key(ours[name]) == _device_key(device), f"device {name} differs between the two pools"
    kube.wait_until(f"no claim to hold devices of {worker}", lambda: not _allocated_on(worker), timeout=180)
    return sorted(
        kube.attribute(d, "chipID")
        for d in real_pool.values()
        if kube.attribute(d, "type") == "chip" and not d.get("taints")
    )


def _run(side: Side, workload: Workload) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for template in workload.templates:
        side.create(template)
    for pod in workload.pods:
        side.create(pod)
        name = pod["metadata"]["name"]
        outcomes[name] = kube.wait_until(
            f"{side.name}: pod {name} to be scheduled with its claims allocated, or unschedulable",
            lambda n=name: side.outcome(n),  # type: ignore[misc]
            timeout=120,
            interval=0.5,
        )
    return outcomes


def _clean(side: Side, workload: Workload) -> None:
    for obj in [*workload.pods, *workload.templates]:
        side.delete(obj)
    kube.wait_until(f"{side.name}: every claim of {NAMESPACE} to be gone", lambda: not side.claims(), timeout=180)
    kube.wait_until(
        f"{side.name}: every pod of {NAMESPACE} to be gone",
        lambda: not side.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"],
        timeout=180,
    )


def _compare(name: str, workload: Workload, sides: tuple[Side, Side], report: Callable[[str], None]) -> None:
    outcomes = []
    for side in sides:
        try:
            outcomes.append(_run(side, copy.deepcopy(workload)))
        finally:
            _clean(side, workload)
    real, ours = outcomes
    for pod in real:
        verdict = "agree" if real[pod] == ours[pod] else "DISAGREE"
        shown = "unschedulable" if real[pod] == ("unschedulable",) else " ".join(f"{r[1]}={r[3]}" for r in real[pod])
        report(f"scheduling {name:38} {pod:16} real: {shown[:70]:70} {verdict}")
    assert real == ours, f"{name}: the real scheduler allocated {real}, the embedded one {ours}"


def test_demo_workloads_get_the_same_devices(
    sides: tuple[Side, Side], chips: list[str], worker: str, report: Callable[[str], None]
) -> None:
    _compare("deploy/demo", demo_workloads(worker, kube.workload_image()), sides, report)


SCENARIOS = [
    "single-core",
    "core-group",
    "whole-chip",
    "first-available-falls-through",
    "match-attribute-three-groups",
    "count-four-groups",
    "all-groups-of-one-chip",
    "router-shared-by-capacity",
    "chip-then-group-on-it-unschedulable",
    "group-then-chip-on-it-unschedulable",
    "too-many-chips-unschedulable",
    "selector-on-capacity",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_gets_the_same_devices(
    scenario: str, sides: tuple[Side, Side], chips: list[str], worker: str, report: Callable[[str], None]
) -> None:
    assert chips, f"node {worker} publishes no untainted chip"
    workload = scenarios(worker, kube.workload_image(), chips)[scenario]
    _compare(scenario, workload, sides, report)
