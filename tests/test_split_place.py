"""Split manifests on the embedded cluster (real plugin, HTTPS, official client): plan, place, fall back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_support import KAPOHO, Kube, running_cluster, wait_for
from typer.testing import CliRunner

from snn_dra.driver.cli import app
from snn_dra.driver.embedded.cluster import EmbeddedCluster
from snn_dra.driver.split.inventory import read_inventory
from snn_dra.driver.split.loading import load_model
from snn_dra.driver.split.manifests import pin_selector, render
from snn_dra.driver.split.placement import Placement, place
from snn_dra.driver.split.planner import Plan, plan_model

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "split"
_names = itertools.count()
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[EmbeddedCluster, Kube]]:
    with running_cluster(KAPOHO) as pair:
        yield pair


@pytest.fixture
def namespace(cluster: tuple[EmbeddedCluster, Kube]) -> Iterator[str]:
    _, kube = cluster
    name = f"split-{next(_names)}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    for pod in kube.list("Pod", name):
        kube.delete("Pod", pod["metadata"]["name"], name)
    wait_for(lambda: not kube.list("ResourceClaim", name), f"the claims of namespace {name} to be released")


def plan_in(example: str, namespace: str) -> Plan:
    model = load_model(EXAMPLES / example)
    return plan_model(model.model_copy(update={"metadata": model.metadata.model_copy(update={"namespace": namespace})}))


def apply(kube: Kube, docs: list[dict[str, Any]]) -> list[str]:
    """Create the claim templates and pods (the embedded API server serves no Services); return the pod names."""
    for doc in docs:
        if doc["kind"] in ("ResourceClaimTemplate", "Pod", "ResourceClaim"):
            kube.create(doc)
    return [d["metadata"]["name"] for d in docs if d["kind"] == "Pod"]


def results(kube: Kube, namespace: str, pod: str) -> list[dict[str, Any]]:
    def allocated() -> list[dict[str, Any]] | None:
        obj = kube.get("Pod", pod, namespace)
        if obj.get("status", {}).get("phase") != "Running":
            return None
        statuses = obj["status"].get("resourceClaimStatuses") or []
        claim = kube.get("ResourceClaim", statuses[0]["resourceClaimName"], namespace)
        found: list[dict[str, Any]] = claim["status"]["allocation"]["devices"]["results"]
        return found

    return wait_for(allocated, f"pod {namespace}/{pod} to run with its claim allocated")


def attributes(kube: Kube) -> dict[str, dict[str, Any]]:
    return {
        d["name"]: {k: next(iter(v.values())) for k, v in d["attributes"].items()}
        for s in kube.slices()
        for d in s["spec"].get("devices") or ()
    }


def current_placement(kube: Kube, plan: Plan) -> Placement:
    return place(plan, read_inventory(kube.slices(), kube.list("ResourceClaim")).free())


def test_planned_manifests_allocate_and_keep_stages_together(
    cluster: tuple[EmbeddedCluster, Kube], namespace: str
) -> None:
    _, kube = cluster
    attrs = attributes(kube)
    kws = plan_in("keyword-spotter.yaml", namespace)
    gesture = plan_in("gesture-net.yaml", namespace)
    sl = plan_in("split-learning.yaml", namespace)
    for plan in (kws, gesture, sl):
        apply(kube, render(plan))

    kws_results = results(kube, namespace, "kws")
    assert sorted(r["request"] for r in kws_results) == ["stage0/chip", "stage0/chip", "stage1/chip"]
    assert len({attrs[r["device"]]["chipID"] for r in kws_results}) == 1

    g = results(kube, namespace, "gesture")
    assert {r["request"].split("/")[1] for r in g} == {"region"}
    assert len({attrs[r["device"]]["boardID"] for r in g}) == 1
    assert len({attrs[r["device"]]["chipRegion"] for r in g}) == 1
    stage1 = [attrs[r["device"]] for r in g if r["request"].startswith("stage1/")]
    assert len(stage1) == 3 and len({a["chipID"] for a in stage1}) == 1 and {a["type"] for a in stage1} == {"coreGroup"}

    server = results(kube, namespace, "sl-server")
    assert sorted(r["request"] for r in server) == ["stage1/chip", "stage2/chip"]
    assert len({attrs[r["device"]]["chipID"] for r in server}) == 1
    edge = results(kube, namespace, "sl-edge")
    assert [r["request"] for r in edge] == ["stage0"]
    assert attrs[edge[0]["device"]]["type"] == "neuronCore"


def _background(kube: Kube, namespace: str) -> None:
    """Workloads already running: core groups and a chip, allocated the way the scheduler does (first fit)."""
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "background", "namespace": namespace},
        "spec": {"spec": {"devices": {"requests": [
            {"name": "groups", "exactly": {"deviceClassName": "snn-core-group", "count": 5}},
            {"name": "chip", "exactly": {"deviceClassName": "snn-chip"}},
        ]}}},
    }  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "background", "namespace": namespace},
        "spec": {
            "resourceClaims": [{"name": "c", "resourceClaimTemplateName": "background"}],
            "containers": [{"name": "job", "image": "busybox:1.36", "resources": {"claims": [{"name": "c"}]}}],
        },
    }
    apply(kube, [template, pod])
    results(kube, namespace, "background")


def test_place_pins_the_low_traffic_devices_it_chose(cluster: tuple[EmbeddedCluster, Kube], namespace: str) -> None:
    c, kube = cluster
    _background(kube, namespace)
    model = EXAMPLES / "gesture-net.yaml"
    cli = runner.invoke(app, ["split", "place", str(model), "--kubeconfig", str(c.kubeconfig_path)])
    assert cli.exit_code == 0, cli.stderr
    assert "split placement" in cli.stderr and "hop-weighted spike traffic" in cli.stderr
    emitted = list(yaml.safe_load_all(cli.stdout))
    plan = plan_in("gesture-net.yaml", namespace)
    placement = current_placement(kube, plan)
    expected = render(plan_in("gesture-net.yaml", "snn-demo"), placement)
    assert emitted == expected  # the command pins what the search chooses on the live state

    apply(kube, render(plan, placement))
    got = results(kube, namespace, "gesture")
    assert {r["request"].split("/")[1] for r in got} == {"pinned"}
    pinned = {d.site.device for devs in placement.groups[0].stages for d in devs}
    assert {r["device"] for r in got} == pinned


def test_a_pinned_device_taken_meanwhile_falls_back_near_the_others(
    cluster: tuple[EmbeddedCluster, Kube], namespace: str
) -> None:
    _, kube = cluster
    attrs = attributes(kube)
    plan = plan_in("keyword-spotter.yaml", namespace)
    placement = current_placement(kube, plan)
    stage0 = placement.groups[0].stages[0]
    stolen = stage0[0]
    thief = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "thief", "namespace": namespace},
        "spec": {"spec": {"devices": {"requests": [{"name": "g", "exactly": {
            "deviceClassName": "snn-core-group", "selectors": [{"cel": {"expression": pin_selector([stolen])}}],
        }}]}}},
    }  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "thief", "namespace": namespace},
        "spec": {
            "resourceClaims": [{"name": "c", "resourceClaimTemplateName": "thief"}],
            "containers": [{"name": "job", "image": "busybox:1.36", "resources": {"claims": [{"name": "c"}]}}],
        },
    }
    apply(kube, [thief, pod])
    assert [r["device"] for r in results(kube, namespace, "thief")] == [stolen.site.device]

    apply(kube, render(plan, placement))  # the pins are stale now: one of stage0's devices is gone
    got = results(kube, namespace, "kws")
    by_stage = {r["request"].split("/")[0]: r["request"].split("/")[1] for r in got}
    assert by_stage == {"stage0": "near", "stage1": "pinned"}
    assert stolen.site.device not in {r["device"] for r in got}
    assert {r["device"] for r in got if r["request"] == "stage1/pinned"} == {
        d.site.device for d in placement.groups[0].stages[1]
    }
    assert len({attrs[r["device"]]["chipID"] for r in got}) == 1  # the fallback stays on the pinned stage's chip
