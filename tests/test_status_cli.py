"""`snn-dra status` against the embedded cluster: a known allocation, read back through the official client.

Three Akida-like chips (80 NPUs as a 10x8 mesh, 2x2-core groups): chip 0 has two fused cores, chip 2 is
unhealthy (tainted). Claims: one neuron core, one core group, one whole chip, two shares of chip 0's router
and one share of an event queue. First-fit allocation makes every placement deterministic.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import (
    DEVICE_CLASSES,
    NAMESPACE,
    NODE,
    Kube,
    kube_for,
    pod,
    pod_running,
    pool_published,
    request,
    wait_for,
)
from cluster_support import template as claim_template

from snn_dra.api.status import ClusterStatus
from snn_dra.driver.cli.console import fit_name
from snn_dra.driver.cli.status import read_cluster
from snn_dra.driver.embedded.cluster import EmbeddedCluster
from snn_dra.driver.status import build_status, render_pictures

NODE_CONFIG = """\
apiVersion: snn.dra.dev/v1alpha1
kind: NodeConfig
backend: simulated
publish:
  levels: [chip, coreGroup, neuronCore, spikeRouter, eventQueue]
boards:
  - {family: akida, model: akd1000-pcie, chips: 1, fusedCores: {0: [78, 79]}}
  - {family: akida, model: akd1000-pcie, chips: 1}
  - {family: akida, model: akd1000-pcie, chips: 1, unhealthyChips: [0]}
"""

WORKLOADS = {
    # pod name -> (template name, requests)
    "one-core": [request("npu", "snn-neuron-core")],
    "one-group": [request("node", "snn-core-group")],
    "whole-chip": [request("chip", "snn-chip")],
    "router-a": [request("r", "snn-spike-router", capacity={"requests": {"eventThroughputMEPS": "100"}})],
    "router-b": [request("r", "snn-spike-router", capacity={"requests": {"eventThroughputMEPS": "50"}})],
    "queue": [request("q", "snn-event-queue", capacity={"requests": {"queueDepth": "64"}})],
}


@pytest.fixture(scope="module")
def allocated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedCluster, Kube]]:
    config = tmp_path_factory.mktemp("status") / "node.yaml"
    config.write_text(NODE_CONFIG)
    with EmbeddedCluster(nodes=(NODE,)) as cluster, kube_for(cluster) as kube:
        cluster.start_plugin(NODE, config)
        kube.apply_file(DEVICE_CLASSES)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        wait_for(lambda: pool_published(kube), "the plugin to publish its pool")
        for name, requests in WORKLOADS.items():  # one at a time: first-fit order is the creation order
            kube.create(claim_template(name, requests))
            kube.create(pod(name, {"c": name}))
            wait_for(lambda name=name: pod_running(kube, name), f"pod {name} to run")  # type: ignore[misc]
        yield cluster, kube


SNN_DRA = [sys.executable, "-c", "from snn_dra.driver.cli import main; main()"]

PICTURE = """\
akida-aa55b9716b      akida-f86368c072      akida-863d6ab901
10x8, 75/78 free      10x8, 0/80 free       10x8, 0/80 free
A . . . . . . . . .   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . . .   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . . .   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . . .   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . . .   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . . .   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . B B   A A A A A A A A A A   x x x x x x x x x x
. . . . . . . . - -   A A A A A A A A A A   x x x x x x x x x x

akida-aa55b9716b A: snn-test/one-core-c-##### (pod one-core), 1 core
akida-aa55b9716b B: snn-test/one-group-c-##### (pod one-group), 2 cores
akida-f86368c072 A: snn-test/whole-chip-c-##### (pod whole-chip), 80 cores
akida-aa55b9716b-router: snn-test/router-a-c-##### uses 100 MEPS
akida-aa55b9716b-router: snn-test/router-b-c-##### uses 50 MEPS
akida-aa55b9716b-queue-0: snn-test/queue-c-##### uses 1 MEPS, 64 queue slots
Cores: A-Z, a-z one claim each, '.' free, 'x' tainted, '-' no usable core.
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    return subprocess.run([*SNN_DRA, "status", *args], capture_output=True, text=True, timeout=120, env=env)


def _stable(text: str) -> str:
    """Generated claim names end in 5 random characters."""
    return re.sub(r"(-c-)[a-z0-9]{5}\b", r"\1#####", text)


def test_chip_pictures_show_the_known_allocation(allocated: tuple[EmbeddedCluster, Kube]) -> None:
    cluster, _ = allocated
    slices, claims = read_cluster(cluster.kubeconfig_path, None)
    [node] = build_status(slices, claims).nodes
    assert _stable("\n".join(render_pictures(node.chips)) + "\n") == PICTURE


def test_table_fits_80_columns_and_ends_with_the_pictures(allocated: tuple[EmbeddedCluster, Kube]) -> None:
    cluster, _ = allocated
    result = _run("--kubeconfig", str(cluster.kubeconfig_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, result.stdout
    header = next(i for i, line in enumerate(lines) if line.startswith("CHIP"))
    assert lines[header].split() == ["CHIP", "CORES", "GROUPS", "WHOLE", "ROUTER", "QUEUE", "TAINT", "CLAIMS"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 4]}
    assert rows["akida-aa55b9716b"] == ["75/78", "18/20", "no", "150/400", "64/2,048", "-", "2"]
    assert rows["akida-f86368c072"] == ["0/80", "0/20", "no", "0/400", "0/2,048", "-", "1"]
    assert rows["akida-863d6ab901"] == ["0/80", "0/20", "no", "0/400", "0/2,048", "104", "-"]
    assert _stable(result.stdout).endswith(PICTURE)


def test_json_figures(allocated: tuple[EmbeddedCluster, Kube]) -> None:
    cluster, _ = allocated
    result = _run("--kubeconfig", str(cluster.kubeconfig_path), "-o", "json", "--node", NODE)
    assert result.returncode == 0, result.stderr
    status = ClusterStatus.model_validate_json(result.stdout)
    [node] = status.nodes
    assert node.name == NODE
    free, whole, tainted = node.chips
    assert (free.chip_id, whole.chip_id, tainted.chip_id) == (
        "akida-aa55b9716b",
        "akida-f86368c072",
        "akida-863d6ab901",
    )
    assert free.core_mesh == (10, 8)
    assert (free.cores.used, free.cores.capacity, free.cores_free, free.cores_tainted) == (3, 78, 75, 0)
    assert (free.core_groups, free.core_groups_free, free.whole_chip_free) == (20, 18, False)
    assert [(c.key, c.pods, c.cores, c.devices) for c in free.claims] == [
        ("A", ["one-core"], 1, ["akida-aa55b9716b-core-0"]),
        ("B", ["one-group"], 2, ["akida-aa55b9716b-group-19"]),
    ]
    assert (free.router and (free.router.used, free.router.capacity)) == (150, 400)
    assert (free.queue_depth and (free.queue_depth.used, free.queue_depth.capacity)) == (64, 2048)
    router = next(s for s in free.shared if s.type == "spikeRouter")
    assert sorted((h.pods[0], h.consumed["eventThroughputMEPS"]) for h in router.holders) == [
        ("router-a", 100),
        ("router-b", 50),
    ]
    assert (whole.cores.used, whole.cores_free, whole.whole_chip_free) == (80, 0, False)
    assert [(c.key, c.devices) for c in whole.claims] == [("A", ["akida-f86368c072"])]
    assert (tainted.cores.used, tainted.cores_tainted, tainted.cores_free, tainted.core_groups_free) == (0, 80, 0, 0)
    assert len(tainted.tainted_devices) == 104 and tainted.claims == []
    assert status.other_allocations == []
    assert free.picture[0] == "A........." and free.picture[7] == "........--"


def test_unknown_node_and_unreachable_server_are_clear_errors(
    allocated: tuple[EmbeddedCluster, Kube], tmp_path: Path
) -> None:
    cluster, _ = allocated
    result = _run("--kubeconfig", str(cluster.kubeconfig_path), "--node", "no-such-node")
    assert result.returncode == 1
    assert "no snn.dra.dev devices are published for node no-such-node" in result.stderr
    dead = tmp_path / "kubeconfig"
    text = cluster.kubeconfig_path.read_text()
    dead.write_text(re.sub(r"https://127\.0\.0\.1:\d+", "https://127.0.0.1:1", text))
    result = _run("--kubeconfig", str(dead))
    assert result.returncode == 1
    assert "cannot reach the API server" in result.stderr and "Traceback" not in result.stderr


def test_fit_name_cuts_between_words_only() -> None:
    assert fit_name("akida-863d6ab901", 24) == "akida-863d6ab901"
    assert fit_name("akd1000-pcie-board-3-chip-0", 20) == "akd1000-…-3-chip-0"
    assert fit_name("akd1000-pcie-board-3-chip-0", 17) == "akd1000-…-chip-0"
    assert fit_name("akd1000-pcie-board-3-chip-0", 12) == "akd1000-…-0"
    assert fit_name("averyveryverylongsingleword", 10) == "averyveryverylongsingleword"


GROUPS_ONLY = """\
apiVersion: snn.dra.dev/v1alpha1
kind: NodeConfig
backend: simulated
publish:
  levels: [chip, coreGroup, spikeRouter]
boards:
  - {family: akida, model: akd1000-pcie, chips: 1, fusedCores: {0: [78, 79]}}
"""


def test_without_the_core_level_groups_cover_their_rectangles(tmp_path: Path) -> None:
    """Without neuronCore devices a group claim marks its whole 2x2 rectangle and counts its usable cores."""
    config = tmp_path / "node.yaml"
    config.write_text(GROUPS_ONLY)
    with EmbeddedCluster(nodes=(NODE,)) as cluster, kube_for(cluster) as kube:
        cluster.start_plugin(NODE, config)
        kube.apply_file(DEVICE_CLASSES)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        wait_for(lambda: pool_published(kube), "the plugin to publish its pool")
        for name in ("g1", "g2"):
            kube.create(claim_template(name, [request("node", "snn-core-group")]))
            kube.create(pod(name, {"c": name}))
            wait_for(lambda name=name: pod_running(kube, name), f"pod {name} to run")  # type: ignore[misc]
        slices, claims = read_cluster(cluster.kubeconfig_path, None)
    [node] = build_status(slices, claims).nodes
    [chip] = node.chips
    # First fit takes groups from the last tile down: group 19 (2 usable cores, 78 and 79 fused), then group 18.
    assert [(c.pods, c.devices[0].rsplit("-", 1)[1], c.cores) for c in chip.claims] == [
        (["g1"], "19", 2),
        (["g2"], "18", 4),
    ]
    assert (chip.cores.used, chip.cores.capacity, chip.cores_free) == (6, 78, 72)
    assert (chip.core_groups, chip.core_groups_free, chip.whole_chip_free) == (20, 18, False)
    assert chip.picture == [".........."] * 6 + ["......BBAA"] * 2
    assert chip.queue_depth is None and chip.router is not None and chip.router.used == 0
