"""Split learning as two pods on a real cluster: the planner's claims, the driver's CDI env, loss going down.

The manifests are what ``snn-dra split plan deploy/examples/split/split-learning.yaml`` prints (edge side:
one claim and pod; server side: another claim, pod and Service), with the installed driver image as the
workload image. The client is pointed at the server pod's IP (clusters without DNS, like the local one,
have no Service names), and both sides write a JSON summary to their termination log, which the kubelet
puts into the pod status, so the test needs neither ``kubectl logs`` nor ``exec``.
"""

from __future__ import annotations

import json
from typing import Any

from e2e import kube
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


def _devices(namespace: str, pod: str) -> list[tuple[str, str]]:
    """(device, request) of the pod's claim."""
    claim = kube.claim_of(namespace, pod, "stages")
    return sorted((r["device"], r["request"]) for r in claim["status"]["allocation"]["devices"]["results"])


def test_split_learning_trains_across_two_pods(namespace: str) -> None:
    rest, server, client = _manifests(namespace)
    kube.apply([*rest, server])

    def server_ip() -> str | None:
        status = kube.get_json("pod", "-n", namespace, "sl-server").get("status", {})
        return status.get("podIP") if status.get("phase") == "Running" else None

    ip = kube.wait_until("the split-learning server pod to run", server_ip, timeout=180)
    args = client["spec"]["containers"][0]["args"]
    args[args.index("--server") + 1] = f"{ip}:{LEARN_PORT}"
    kube.apply(client)

    client_summary = _summary(namespace, "sl-edge", timeout=300)
    server_summary = _summary(namespace, "sl-server", timeout=120)

    losses = client_summary["losses"]
    assert len(losses) == int(STEPS) and server_summary["losses"] == losses
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, losses

    edge = _devices(namespace, "sl-edge")
    assert [(d["name"], d["stage"]) for d in client_summary["devices"]] == [(edge[0][0], "0")]
    assert [d for d, _ in _devices(namespace, "sl-server")] == sorted(d["name"] for d in server_summary["devices"])
    assert sorted(d["stage"] for d in server_summary["devices"]) == ["1", "2"]
    chips = {d["chip"] for d in server_summary["devices"]}
    assert len(chips) == 1  # the server's two stages were kept on one chip (the tightest level)
