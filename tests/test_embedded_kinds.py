"""The kinds `kubectl apply -k deploy/base` creates are stored and served; pods' streaming subresources say why not.

Through the official client over HTTPS, and (``kubectl`` marker) the real install path against `snn-dra cluster up`.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

pytest_plugins = ["embedded_fixtures"]

REPO = Path(__file__).resolve().parent.parent
SNN_DRA = str(Path(sys.executable).parent / "snn-dra")
KUBECTL = "/usr/bin/kubectl"


def _post(server: EmbeddedApiServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    conn = http.client.HTTPSConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), context=ctx, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {server.token}",
                                                      "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_install_kinds_round_trip_through_the_official_client(embedded_server: EmbeddedApiServer,
                                                              embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    rbac = client.RbacAuthorizationV1Api(embedded_api_client)
    apps = client.AppsV1Api(embedded_api_client)
    adm = client.AdmissionregistrationV1Api(embedded_api_client)
    sched = client.SchedulingV1Api(embedded_api_client)
    core.create_namespaced_service_account("default", {"metadata": {"name": "plugin"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "b"}})
    core.create_namespaced_resource_quota("default", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10"}}})
    rbac.create_cluster_role({"metadata": {"name": "system:snn"}, "rules": [
        {"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"], "verbs": ["get", "list"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": "snn"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:snn"},
        "subjects": [{"kind": "ServiceAccount", "name": "plugin", "namespace": "default"}]})
    rbac.create_namespaced_role("default", {"metadata": {"name": "r"}, "rules": []})
    rbac.create_namespaced_role_binding("default", {"metadata": {"name": "rb"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}})
    ds = {"metadata": {"name": "plugin"}, "spec": {
        "selector": {"matchLabels": {"app": "p"}},
        "template": {"metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    apps.create_namespaced_daemon_set("default", ds)
    sched.create_priority_class({"metadata": {"name": "high"}, "value": 1000})
    adm.create_validating_admission_policy({"metadata": {"name": "p"}, "spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": ["resource.k8s.io"], "apiVersions": ["v1"],
                                                "operations": ["CREATE"], "resources": ["resourceslices"]}]},
        "validations": [{"expression": "true"}]}})
    adm.create_validating_admission_policy_binding({"metadata": {"name": "pb"}, "spec": {
        "policyName": "p", "validationActions": ["Deny"]}})

    assert core.read_namespaced_service_account("plugin", "default").metadata.uid
    assert core.read_namespaced_config_map("cfg", "default").data == {"a": "b"}
    assert core.read_namespaced_resource_quota("q", "default").spec.hard == {"pods": "10"}
    assert [r.metadata.name for r in rbac.list_cluster_role().items] == ["system:snn"]
    assert rbac.read_cluster_role_binding("snn").subjects[0].name == "plugin"
    assert apps.read_namespaced_daemon_set("plugin", "default").spec.selector.match_labels == {"app": "p"}
    assert sched.read_priority_class("high").value == 1000
    assert adm.read_validating_admission_policy_binding("pb").spec.policy_name == "p"
    # Their upstream schemas are enforced: a DaemonSet without selector and template is refused (sent raw: the
    # official client would refuse it before sending).
    code, status = _post(embedded_server, "/apis/apps/v1/namespaces/default/daemonsets",
                         {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "bad"}, "spec": {}})
    assert code == 422 and status["reason"] == "Invalid"
    assert {"spec.selector", "spec.template"} <= {c["field"] for c in status["details"]["causes"]}
    groups = [g.name for g in client.ApisApi(embedded_api_client).get_api_versions().groups]
    assert {"rbac.authorization.k8s.io", "apps", "admissionregistration.k8s.io", "scheduling.k8s.io"} <= set(groups)


def test_logs_and_exec_say_why_they_cannot_work(embedded_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(embedded_api_client)
    core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "x"}]}})
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod_log("p", "default")
    assert exc.value.status == 400
    message = json.loads(exc.value.body)["message"]
    assert "kubectl logs cannot work on the embedded cluster" in message and "starts no containers" in message
    with pytest.raises(ApiException) as exc:
        core.connect_get_namespaced_pod_portforward("p", "default", ports="80")
    assert exc.value.status == 400 and "kubectl port-forward cannot work" in exc.value.body


def _kubectl(kubeconfig: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.kubectl
@pytest.mark.slow
def test_kubectl_apply_k_deploy_base_against_cluster_up(tmp_path: Path) -> None:
    state = Path(tempfile.mkdtemp(prefix="snn-kinds-", dir="/tmp"))  # short: socket paths stay under 107 bytes
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen([SNN_DRA, "cluster", "up", "--kubeconfig", str(kubeconfig), "--state-dir", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120) and proc.poll() is None, "".join(lines)
        applied = _kubectl(kubeconfig, tmp_path, "apply", "-k", str(REPO / "deploy/base"))
        assert applied.returncode == 0, applied.stderr
        for created in ("namespace/snn-dra", "serviceaccount/snn-dra-kubelet-plugin",
                        "clusterrole.rbac.authorization.k8s.io/snn-dra-kubelet-plugin",
                        "clusterrolebinding.rbac.authorization.k8s.io/snn-dra-kubelet-plugin",
                        "resourcequota/snn-dra-critical-pods", "daemonset.apps/snn-dra-kubelet-plugin",
                        "validatingadmissionpolicy.admissionregistration.k8s.io/snn-dra-resourceslices-own-node",
                        "validatingadmissionpolicybinding.admissionregistration.k8s.io/"
                        "snn-dra-resourceslices-own-node"):
            assert created + " created" in applied.stdout, applied.stdout
        again = _kubectl(kubeconfig, tmp_path, "apply", "-k", str(REPO / "deploy/base"))
        assert again.returncode == 0, again.stderr
        assert all(line.endswith(" unchanged") for line in again.stdout.splitlines()), again.stdout
        ds = json.loads(_kubectl(kubeconfig, tmp_path, "get", "ds", "-n", "snn-dra", "-o", "json").stdout)
        assert [d["metadata"]["labels"]["app.kubernetes.io/part-of"] for d in ds["items"]] == ["snn-dra"]
        deleted = _kubectl(kubeconfig, tmp_path, "delete", "-k", str(REPO / "deploy/base"))
        assert deleted.returncode == 0, deleted.stderr
        assert "namespace \"snn-dra\" deleted" in deleted.stdout
        gone = _kubectl(kubeconfig, tmp_path, "get", "namespace", "snn-dra")
        assert gone.returncode != 0 and "NotFound" in gone.stderr  # kubectl waited until it went
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)
