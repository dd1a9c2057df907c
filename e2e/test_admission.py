"""The ValidatingAdmissionPolicy of deploy/base holds against the plugin's own credentials.

A token bound to the running plugin pod (what the kubelet mounts into it) carries the pod's node name; the real
API server must deny that token any ResourceSlice write for another node or for no node, with the policy's
message, and allow writes for its own node. The token is used with the cluster's server and CA only (no client
certificate), so the request really authenticates as the plugin's ServiceAccount.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e import kube

OTHER_NODE = "snn-e2e-admission-other-node"
OTHER_DRIVER = "admission-e2e.snn.dra.dev"
POLICY_DENIAL = "ValidatingAdmissionPolicy 'snn-dra-resourceslices-own-node'"


def _slice(name: str, node: str | None, driver: str = kube.DRIVER) -> dict[str, Any]:
    """A slice the policy judges by node (and driver); no plugin publishes for OTHER_NODE, so none touches it."""
    spec: dict[str, Any] = {
        "driver": driver,
        "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
        "devices": [{"name": "dev-0"}],
    }
    if node:
        spec["nodeName"] = node
    else:
        spec["allNodes"] = True
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name}, "spec": spec}


def _plugin_kubeconfig(path: Path, worker: str) -> None:
    """A kubeconfig with the cluster's server and CA and a token bound to the plugin pod on ``worker``."""
    [pod] = [p for p in kube.plugin_pods(worker) if kube.pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
    token = kube.kubectl(
        "create",
        "token",
        kube.SERVICE_ACCOUNT,
        "-n",
        kube.DRIVER_NAMESPACE,
        "--bound-object-kind=Pod",
        f"--bound-object-name={pod['metadata']['name']}",
        f"--bound-object-uid={pod['metadata']['uid']}",
        "--duration=10m",
    ).strip()
    view = json.loads(kube.kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster = view["clusters"][0]["cluster"]
    ca = cluster.get("certificate-authority-data")
    if ca is None and cluster.get("certificate-authority"):
        ca = base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    entry: dict[str, Any] = {"server": cluster["server"]}
    if ca:
        entry["certificate-authority-data"] = ca
    elif cluster.get("insecure-skip-tls-verify"):
        entry["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": entry}],
        "users": [{"name": "plugin", "user": {"token": token}}],
        "contexts": [{"name": "plugin", "context": {"cluster": "c", "user": "plugin"}}],
        "current-context": "plugin",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


@pytest.fixture
def as_plugin(worker: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """kubectl with the plugin pod's credentials; slices left behind by a test are deleted as admin."""
    kubeconfig = tmp_path / "plugin-kubeconfig"
    _plugin_kubeconfig(kubeconfig, worker)

    def run(*args: str, stdin: str | None = None, check: bool = True) -> str:
        return kube.kubectl(f"--kubeconfig={kubeconfig}", *args, stdin=stdin, check=check)

    who = json.loads(run("auth", "whoami", "-o", "json"))["status"]["userInfo"]
    assert who["username"] == f"system:serviceaccount:{kube.DRIVER_NAMESPACE}:{kube.SERVICE_ACCOUNT}", who
    assert who.get("extra", {}).get("authentication.kubernetes.io/node-name") == [worker], who
    yield run
    kube.kubectl("delete", "resourceslice", "snn-e2e-foreign", "--ignore-not-found", check=False)


def _denied(run: Callable[..., str], *args: str, stdin: str | None = None) -> str:
    try:
        run(*args, stdin=stdin)
    except kube.KubectlError as exc:
        return str(exc)
    raise AssertionError(f"kubectl {' '.join(args)} with the plugin's token was allowed")


def test_plugin_token_may_not_create_another_nodes_slice(as_plugin: Callable[..., str], worker: str) -> None:
    error = _denied(as_plugin, "create", "-f", "-", stdin=json.dumps(_slice("snn-e2e-other", OTHER_NODE)))
    assert POLICY_DENIAL in error, error
    assert (
        f"the snn-dra kubelet plugin on node '{worker}' may only write ResourceSlices of its own node, "
        f"not slices of node '{OTHER_NODE}'"
    ) in error, error
    assert not kube.kubectl("get", "resourceslice", "snn-e2e-other", "--ignore-not-found", "-o", "name")


def test_plugin_token_may_not_create_a_slice_without_node_name(as_plugin: Callable[..., str], worker: str) -> None:
    error = _denied(as_plugin, "create", "-f", "-", stdin=json.dumps(_slice("snn-e2e-all-nodes", None)))
    assert POLICY_DENIAL in error, error
    assert "not slices without spec.nodeName" in error, error


def test_plugin_token_may_not_change_or_delete_another_nodes_slice(as_plugin: Callable[..., str]) -> None:
    # The admin may create it (so what stops the plugin below is the policy, not validation or RBAC).
    kube.kubectl("create", "-f", "-", stdin=json.dumps(_slice("snn-e2e-foreign", OTHER_NODE)))
    error = _denied(as_plugin, "label", "resourceslice", "snn-e2e-foreign", "snn-e2e=touched")
    assert POLICY_DENIAL in error and f"not slices of node '{OTHER_NODE}'" in error, error
    error = _denied(as_plugin, "delete", "resourceslice", "snn-e2e-foreign")
    assert POLICY_DENIAL in error and f"not slices of node '{OTHER_NODE}'" in error, error
    labels = kube.get_json("resourceslice", "snn-e2e-foreign")["metadata"].get("labels", {})
    assert "snn-e2e" not in labels


def test_plugin_token_may_not_write_another_drivers_slice_on_its_node(
    as_plugin: Callable[..., str], worker: str
) -> None:
    slice_ = _slice("snn-e2e-other-driver", worker, driver=OTHER_DRIVER)
    error = _denied(as_plugin, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(slice_))
    assert POLICY_DENIAL in error, error
    assert f"may only write ResourceSlices of driver {kube.DRIVER}, not of driver '{OTHER_DRIVER}'" in error, error


def test_plugin_token_may_write_its_own_nodes_slices(as_plugin: Callable[..., str], worker: str) -> None:
    """Server-side dry runs (admission runs, nothing is stored), so the running plugin's pool is not disturbed."""
    created = json.loads(
        as_plugin(
            "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(_slice("snn-e2e-own", worker))
        )
    )
    assert created["spec"]["nodeName"] == worker
    [published, *_] = sorted(s["metadata"]["name"] for s in kube.driver_slices(worker))
    as_plugin("label", "--dry-run=server", "resourceslice", published, "snn-e2e=touched")
    as_plugin("delete", "--dry-run=server", "resourceslice", published)
    assert published in {s["metadata"]["name"] for s in kube.driver_slices(worker)}
