"""Guard and fixtures of the e2e suite: ``pytest e2e`` against kind or the local cluster of upstream components.

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
    "The e2e suite needs a reachable cluster with the driver image on its nodes, either\n"
    "  * the local cluster of upstream components (no Docker needed):\n"
    "      hack/local-cluster.sh up && hack/local-cluster.sh e2e\n"
    '    or, by hand: eval "$(hack/local-cluster.sh env)" && .venv/bin/pytest e2e -v\n'
    "  * or a kind cluster (Docker):\n"
    "      hack/kind-demo.sh   (or hack/kind-up.sh && TAG=dev hack/build-image.sh &&\n"
    "                           kind load docker-image --name snn-dra ghcr.io/snn-dra/snn-dra:dev)\n"
    "      then: KUBECONFIG=~/.kube/config pytest e2e -v\n"
    f"It deletes driver pods and creates namespaces, so it refuses a current context other than kind-* or\n"
    f"{kube.LOCAL_CONTEXT} unless you pass --allow-non-kind (with --overlay DIR for the driver's overlay)."
)

FIGURES_KEY = pytest.StashKey[list[str]]()
"""Lines the tests report for the session summary (slice writes per node config, differential results)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("snn-dra e2e")
    group.addoption(
        "--allow-non-kind",
        action="store_true",
        help=f"run against a current kubectl context that is neither kind-* nor {kube.LOCAL_CONTEXT}",
    )
    group.addoption(
        "--no-deploy",
        action="store_true",
        help="do not apply the target's overlay; test the driver that is already installed",
    )
    group.addoption(
        "--overlay",
        default=None,
        help="kustomize overlay (relative to the repository) that installs the driver; default: "
        "deploy/overlays/kind on kind-*, deploy/overlays/local on the local cluster",
    )


def _fail(reason: str) -> None:
    raise pytest.UsageError(f"snn-dra e2e: {reason}\n\n{HOW_TO}")


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[FIGURES_KEY] = []
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
    overlay = session.config.getoption("--overlay")
    target = kube.detect_target(context, overlay)
    if target is None:
        if not session.config.getoption("--allow-non-kind"):
            _fail(f"current context {context!r} is neither a kind cluster (kind-*) nor {kube.LOCAL_CONTEXT!r}")
        target = kube.Target("other", context, overlay or "deploy/overlays/kind")
    if not session.config.getoption("--no-deploy") and not (kube.REPO / target.overlay).is_dir():
        _fail(f"the overlay {target.overlay} for context {context!r} does not exist")
    kube.set_target(target)


def pytest_report_header(config: pytest.Config) -> str:
    try:
        t = kube.target()
    except RuntimeError:
        return "snn-dra e2e: no target"
    return f"snn-dra e2e target: {t.kind} (context {t.context}, overlay {t.overlay})"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES_KEY, [])
    if lines:
        terminalreporter.section("snn-dra e2e figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> Any:
    """``report(line)`` adds a line to the session's figures section (printed at the end of the run)."""
    return request.config.stash[FIGURES_KEY].append


@pytest.fixture(scope="session")
def target() -> kube.Target:
    return kube.target()


@pytest.fixture(scope="session")
def node_config() -> dict[str, Any]:
    """The node config the installed DaemonSet mounts into every plugin pod (from the target's overlay)."""
    _, text = kube.installed_node_config()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@pytest.fixture(scope="session", autouse=True)
def driver(request: pytest.FixtureRequest) -> None:
    """Deploy the target's overlay (idempotent) and wait until every node's plugin is Ready and has published."""
    target = kube.target()
    if not request.config.getoption("--no-deploy"):
        kube.kubectl("apply", "-k", str(kube.REPO / target.overlay))
    try:
        kube.wait_rollout(180)
    except kube.KubectlError as exc:
        logs = kube.kubectl("-n", kube.DRIVER_NAMESPACE, "logs", "-l", kube.PLUGIN_SELECTOR, "--tail=30", check=False)
        hint = (
            "is the image imported into the local cluster's containerd (hack/local-cluster.sh up)?"
            if target.kind == "local"
            else "is the image loaded into kind (kind load docker-image)?"
        )
        raise AssertionError(
            f"the kubelet plugin DaemonSet did not become ready ({exc}); {hint} Plugin logs:\n{logs}"
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
