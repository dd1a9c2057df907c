"""Thin helpers over kubectl for the e2e suite (kind or the local real cluster).

The suite drives the cluster the way a user does (kubectl with the caller's KUBECONFIG), so what it
proves is what an operator would see. Waits poll a condition until a deadline; nothing sleeps a
fixed time and hopes.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parent.parent
DRIVER = "snn.dra.dev"
DRIVER_NAMESPACE = "snn-dra"
DAEMONSET = "snn-dra-kubelet-plugin"
SERVICE_ACCOUNT = "snn-dra-kubelet-plugin"
PLUGIN_SELECTOR = "app.kubernetes.io/name=snn-dra,app.kubernetes.io/component=kubelet-plugin"
NODE_CONFIG_VOLUME = "node-config"
NODE_CONFIG_KEY = "node-config.yaml"
LOCAL_CONTEXT = "snn-dra-local"
"""The kubeconfig context that ``hack/local-cluster.sh`` writes for its cluster of upstream components."""
AUDIT_LOG_ENV = "SNN_DRA_LOCAL_AUDIT_LOG"

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Which cluster the suite runs on, and so which overlay installs the driver there.

    ``kind``: a kind cluster (``kind-*`` context), overlay ``deploy/overlays/kind``. ``local``: the cluster
    of upstream components that ``hack/local-cluster.sh`` runs on this machine (context ``snn-dra-local``),
    overlay ``deploy/overlays/local``, with the API server's audit log readable at ``audit_log``.
    ``other``: any other context, allowed with ``--allow-non-kind``.
    """

    kind: str
    context: str
    overlay: str
    audit_log: Path | None = None


_target: Target | None = None


def detect_target(context: str, overlay: str | None = None) -> Target | None:
    """The target for ``context``, or None when the context is neither kind nor the local cluster."""
    if context == LOCAL_CONTEXT:
        audit = os.environ.get(AUDIT_LOG_ENV)
        return Target("local", context, overlay or "deploy/overlays/local", Path(audit) if audit else None)
    if context.startswith("kind-"):
        return Target("kind", context, overlay or "deploy/overlays/kind")
    return None


def set_target(target: Target) -> None:
    global _target
    _target = target


def target() -> Target:
    if _target is None:
        raise RuntimeError("the e2e target is not set: run the suite through pytest e2e (conftest sets it)")
    return _target


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its command line and stderr."""


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
    proc = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def get_json(*args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json"))
    return out


def items(*args: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = get_json(*args).get("items", [])
    return listed


def apply(objects: list[dict[str, Any]] | dict[str, Any]) -> None:
    docs = objects if isinstance(objects, list) else [objects]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 120, interval: float = 1.0) -> T:
    """Return probe()'s first truthy result; fail with ``what`` and the last error after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            result = probe()
            if result:
                return result
        except (KubectlError, KeyError, IndexError) as exc:
            last_error = f" (last error: {exc})"
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{last_error}")
        time.sleep(interval)


def render(kustomization: str) -> list[dict[str, Any]]:
    out = kubectl("kustomize", str(REPO / kustomization))
    return [d for d in yaml.safe_load_all(out) if d]


def schedulable_nodes() -> list[str]:
    """Nodes a workload pod can land on (kind's control plane carries a NoSchedule taint)."""
    names = []
    for node in items("nodes"):
        taints = node.get("spec", {}).get("taints", [])
        if not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints):
            names.append(node["metadata"]["name"])
    return names


def driver_slices(node: str | None = None) -> list[dict[str, Any]]:
    selector = f"spec.driver={DRIVER}" + (f",spec.nodeName={node}" if node else "")
    return items("resourceslices", "--field-selector", selector)


def current_pool(slices: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The slices of the newest generation when that generation is complete (all resourceSliceCount there)."""
    if not slices:
        return None
    newest = max(s["spec"]["pool"]["generation"] for s in slices)
    current = [s for s in slices if s["spec"]["pool"]["generation"] == newest]
    return current if len(current) == current[0]["spec"]["pool"]["resourceSliceCount"] else None


def pool_devices(node: str) -> dict[str, dict[str, Any]]:
    """Device name -> device JSON of the node's pool (newest generation only, as the allocator sees it)."""
    slices = driver_slices(node)
    if not slices:
        return {}
    newest = max(s["spec"]["pool"]["generation"] for s in slices)
    return {
        d["name"]: d for s in slices if s["spec"]["pool"]["generation"] == newest for d in s["spec"].get("devices", [])
    }


def attribute(device: dict[str, Any], name: str) -> Any:
    value = device["attributes"][name]
    return next(iter(value.values()))


def plugin_pods(node: str | None = None) -> list[dict[str, Any]]:
    args = ["pods", "-n", DRIVER_NAMESPACE, "-l", PLUGIN_SELECTOR]
    if node:
        args += ["--field-selector", f"spec.nodeName={node}"]
    return items(*args)


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def daemonset() -> dict[str, Any]:
    return get_json("daemonset", "-n", DRIVER_NAMESPACE, DAEMONSET)


def plugin_container(ds: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = (ds or daemonset())["spec"]["template"]["spec"]["containers"][0]
    return container


def node_config_map(ds: dict[str, Any] | None = None) -> str:
    """Name of the ConfigMap the DaemonSet mounts as the node config (kustomize adds a hash suffix)."""
    for volume in (ds or daemonset())["spec"]["template"]["spec"]["volumes"]:
        if volume["name"] == NODE_CONFIG_VOLUME:
            name: str = volume["configMap"]["name"]
            return name
    raise KeyError(f"daemonset {DAEMONSET} has no volume {NODE_CONFIG_VOLUME!r}")


def installed_node_config() -> tuple[str, str]:
    """(ConfigMap name, node config YAML) that the running DaemonSet mounts into every plugin pod."""
    name = node_config_map()
    data = get_json("configmap", "-n", DRIVER_NAMESPACE, name)["data"]
    return name, str(data[NODE_CONFIG_KEY])


@functools.cache
def workload_image() -> tuple[str, str]:
    """(image, pull policy) of the installed plugin: the driver image doubles as the workload image, since it
    is already on every node (kind load, or imported into the local cluster's containerd), so nothing is pulled."""
    container = plugin_container()
    return str(container["image"]), str(container.get("imagePullPolicy", "IfNotPresent"))


def wait_rollout(timeout: int = 300) -> None:
    kubectl(
        "-n",
        DRIVER_NAMESPACE,
        "rollout",
        "status",
        f"daemonset/{DAEMONSET}",
        f"--timeout={timeout}s",
        timeout=timeout + 20,
    )


def claim_of(namespace: str, pod: str, pod_claim: str) -> dict[str, Any]:
    """The ResourceClaim generated for ``pod``'s template claim ``pod_claim``."""
    status = get_json("pod", "-n", namespace, pod).get("status", {})
    for entry in status.get("resourceClaimStatuses", []):
        if entry["name"] == pod_claim and entry.get("resourceClaimName"):
            return get_json("resourceclaim", "-n", namespace, entry["resourceClaimName"])
    raise KeyError(f"pod {namespace}/{pod} has no generated claim for {pod_claim!r} yet")
