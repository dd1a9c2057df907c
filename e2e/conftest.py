"""Guard and fixtures of the kind e2e suite (run: ``pytest e2e`` with KUBECONFIG pointing at a kind cluster).

The default ``pytest`` run never collects this directory (``testpaths = ["tests"]``). When it is run on
purpose and no cluster answers, the session stops with an error and instructions: an e2e run that
silently skipped everything would look like a pass.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e import kube

HOW_TO = (
    "The e2e suite needs a reachable kind cluster with the driver image loaded:\n"
    "  hack/kind-up.sh && TAG=dev hack/build-image.sh &&\n"
    "  kind load docker-image --name snn-dra ghcr.io/snn-dra/snn-dra:dev\n"
    "  (or just hack/kind-demo.sh), then: KUBECONFIG=~/.kube/config pytest e2e\n"
    "It deletes driver pods and creates namespaces, so it refuses a current context not named kind-*\n"
    "unless you pass --allow-non-kind."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("snn-dra e2e")
    group.addoption(
        "--allow-non-kind", action="store_true", help="run against a current kubectl context not named kind-*"
    )
    group.addoption(
        "--no-deploy",
        action="store_true",
        help="do not apply deploy/overlays/kind; test the driver that is already installed",
    )


def _fail(reason: str) -> None:
    raise pytest.UsageError(f"snn-dra e2e: {reason}\n\n{HOW_TO}")


def pytest_sessionstart(session: pytest.Session) -> None:
    if shutil.which("kubectl") is None:
        _fail("kubectl is not on PATH")
    try:
        probe = subprocess.run(
            ["kubectl", "version", "-o", "json", "--request-timeout=10s"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _fail("kubectl version did not answer within 30 s")
    if probe.returncode != 0:
        where = os.environ.get("KUBECONFIG", "~/.kube/config (KUBECONFIG is not set)")
        _fail(f"no Kubernetes API server is reachable with kubeconfig {where}: {probe.stderr.strip()[:400]}")
    context = subprocess.run(
        ["kubectl", "config", "current-context"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    if not context.startswith("kind-") and not session.config.getoption("--allow-non-kind"):
        _fail(f"current context {context!r} is not a kind cluster")


@pytest.fixture(scope="session")
def node_config() -> dict[str, Any]:
    """The node config the kind overlay mounts into every plugin pod."""
    loaded: dict[str, Any] = yaml.safe_load((kube.REPO / "deploy/overlays/kind/node-config.yaml").read_text())
    return loaded


@pytest.fixture(scope="session", autouse=True)
def driver(request: pytest.FixtureRequest) -> None:
    """Deploy the kind overlay (idempotent) and wait until every node's plugin is Ready and has published."""
    if not request.config.getoption("--no-deploy"):
        kube.kubectl("apply", "-k", str(kube.REPO / "deploy/overlays/kind"))
    try:
        kube.kubectl(
            "-n",
            kube.DRIVER_NAMESPACE,
            "rollout",
            "status",
            f"daemonset/{kube.DAEMONSET}",
            "--timeout=180s",
            timeout=200,
        )
    except kube.KubectlError as exc:
        logs = kube.kubectl("-n", kube.DRIVER_NAMESPACE, "logs", "-l", kube.PLUGIN_SELECTOR, "--tail=30", check=False)
        raise AssertionError(
            f"the kubelet plugin DaemonSet did not become ready ({exc}); is {kube.IMAGE} loaded into kind "
            f"(kind load docker-image)? Plugin logs:\n{logs}"
        ) from exc
    nodes = [n["metadata"]["name"] for n in kube.items("nodes")]
    for node in nodes:
        kube.wait_until(f"ResourceSlices of {kube.DRIVER} on node {node}", functools.partial(kube.pool_devices, node))


@pytest.fixture(scope="session")
def worker() -> str:
    nodes = kube.schedulable_nodes()
    assert nodes, "no node without a NoSchedule taint: workload pods cannot run anywhere"
    return nodes[0]


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace per test; deleting it at the end deletes its pods and claims (and so unprepares them)."""
    name = f"snn-e2e-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=true", "--timeout=180s", timeout=200, check=False)
