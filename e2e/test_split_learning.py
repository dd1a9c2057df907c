"""Split learning as two pods on a real cluster: the planner's claims, the driver's CDI env, loss going down.

The manifests are what ``snn-dra split plan deploy/examples/split/split-learning.yaml`` prints (edge side:
one claim and pod; server side: another claim, pod and Service), with the installed driver image as the
workload image. The client is pointed at the server pod's IP (clusters without DNS, like the local one,
have no Service names), and both sides write a JSON summary to their termination log, which the kubelet
puts into the pod status, so the test needs neither ``kubectl logs`` nor ``exec``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from e2e import kube
from e2e.workloads import wait_ready
from snn_dra.driver.split.loading import load_model
from snn_dra.driver.split.manifests import LEARN_PORT, render
from snn_dra.driver.split.planner import plan_model

STEPS = "20"
TERMINATION_LOG = "/dev/termination-log"


def _manifests(namespace: str) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    model = load_model(kube.REPO / "deploy/examples/split/split-learning.yaml")
    model = model.model_copy(update={"metadata": model.metadata.model_copy(update={"namespace": namespace})})
    image, pull = kube.workload_image()
    docs = render(plan_model(model), image=image)
    pods = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Pod"}
    for pod in pods.values():
        container = pod["spec"]["containers"][0]
        container["imagePullPolicy"] = pull
        container["args"] += ["--steps", STEPS, "--report", TERMINATION_LOG]
    rest = [d for d in docs if d["kind"] != "Pod"]
    return rest, pods["sl-server"], pods["sl-edge"]


def _terminated(namespace: str, pod: str) -> dict[str, Any] | None:
    obj = kube.get_json("pod", "-n", namespace, pod)
    for status in obj.get("status", {}).get("containerStatuses") or ():
        state = status.get("state", {}).get("terminated")
        if state:
            return dict(state)
    return None


def _summary(namespace: str, pod: str, timeout: float) -> dict[str, Any]:
    state = kube.wait_until(f"pod {namespace}/{pod} to finish", lambda: _terminated(namespace, pod), timeout=timeout)
    assert state.get("exitCode") == 0, f"{pod} failed: {state}"
    summary: dict[str, Any] = json.loads(state.get("message") or "{}")
    return summary


def _devices(namespace: str, pod: str) -> list[tuple[str, str]] | None:
    """(device, request) of the pod's claim while it is allocated.

    Read while the pod still holds its claim: once a pod has finished, a real cluster deallocates and deletes
    the claims generated for it, so reading them after the pod ends finds nothing.
    """
    claim = kube.claim_of(namespace, pod, "stages")
    allocation = claim.get("status", {}).get("allocation")
    if not allocation:
        return None
    return sorted((r["device"], r["request"]) for r in allocation["devices"]["results"])


def test_split_learning_trains_across_two_pods(namespace: str) -> None:
    rest, server, client = _manifests(namespace)
    kube.apply([*rest, server])

    def server_ip() -> str | None:
        status = kube.get_json("pod", "-n", namespace, "sl-server").get("status", {})
        return status.get("podIP") if status.get("phase") == "Running" else None

    ip = kube.wait_until("the split-learning server pod to run", server_ip, timeout=180)
    server_devices = kube.wait_until("the server's claim", lambda: _devices(namespace, "sl-server"))
    args = client["spec"]["containers"][0]["args"]
    args[args.index("--server") + 1] = f"{ip}:{LEARN_PORT}"
    kube.apply(client)
    # The client's claim is allocated before its pod starts and released only after it ends; the server waits
    # for the client, so the client's run is the window in which to read it.
    edge = kube.wait_until("the edge claim's allocation", lambda: _devices(namespace, "sl-edge"), interval=0.2)

    client_summary = _summary(namespace, "sl-edge", timeout=300)
    server_summary = _summary(namespace, "sl-server", timeout=120)

    losses = client_summary["losses"]
    assert len(losses) == int(STEPS) and server_summary["losses"] == losses
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, losses

    assert [(d["name"], d["stage"]) for d in client_summary["devices"]] == [(edge[0][0], "0")]
    assert [d for d, _ in server_devices] == sorted(d["name"] for d in server_summary["devices"])
    assert sorted(d["stage"] for d in server_summary["devices"]) == ["1", "2"]
    chips = {d["chip"] for d in server_summary["devices"]}
    assert len(chips) == 1  # the server's two stages were kept on one chip (the tightest level)


def test_split_place_pins_free_devices_on_the_real_cluster(
    namespace: str, node_config: dict[str, Any], tmp_path: Path
) -> None:
    """``snn-dra split place`` against the cluster's own API: its pinned devices are the ones allocated."""
    family = node_config["boards"][0]["family"]
    example = {"loihi2": "keyword-spotter.yaml", "akida": "akida-edge.yaml"}.get(family)
    assert example, f"no example split model for a {family} node config; add one to this test"
    model = load_model(kube.REPO / "deploy/examples/split" / example)
    model = model.model_copy(update={"metadata": model.metadata.model_copy(update={"namespace": namespace})})
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(model.model_dump(mode="json", by_alias=True, exclude_none=True)))
    image, _ = kube.workload_image()
    proc = subprocess.run(
        [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "split", "place", str(path),
         "--image", image],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "split placement" in proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    kube.apply(docs)
    pod = next(d["metadata"]["name"] for d in docs if d["kind"] == "Pod")
    wait_ready(namespace, pod)
    claim = kube.claim_of(namespace, pod, "stages")
    requests = {r["request"].split("/")[1] for r in claim["status"]["allocation"]["devices"]["results"]}
    assert requests == {"pinned"}, claim["status"]["allocation"]
