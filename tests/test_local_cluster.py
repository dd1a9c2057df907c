"""hack/local-cluster.sh and deploy/overlays/local without a cluster: the scripts parse (and pass shellcheck
where it is installed), the command line is what the docs say, the generated component configuration carries
the settings the real cluster needs (cgroup v1, CDI, no oom_score_adj, pinned sandbox, audit of slice writes,
DRA gates), the certificates name the identities the Node authorizer and RBAC expect, and the overlay is
deploy/base except for the documented local differences. Running the cluster itself is the real proof
(see the script); these checks catch regressions in seconds.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ENTRY = REPO / "hack/local-cluster.sh"
LIBS = sorted((REPO / "hack/local-cluster").glob("*.sh"))
OWN_LIBS = ("build.sh", "common.sh", "pki.sh", "configs.sh", "components.sh", "teardown.sh", "install.sh")
KUBECTL = shutil.which("kubectl")
SHELLCHECK = shutil.which("shellcheck")
OPENSSL = shutil.which("openssl")

Obj = dict[str, Any]


def bash(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs SCRIPT after sourcing the local cluster's libraries, with the state dir in TMP_PATH."""
    prelude = (
        "set -euo pipefail\n"
        + "".join(f'source "{REPO}/hack/local-cluster/{name}"\n' for name in ("common.sh", "pki.sh", "configs.sh"))
        + 'mkdir -p "$STATE"\n'
    )
    environ = {**os.environ, "SNN_DRA_LOCAL_STATE": str(tmp_path / "state"), "HOME": str(tmp_path), **env}
    return subprocess.run(
        ["bash", "-c", prelude + script], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


# ------------------------------------------------------------------------------------------------ scripts
def test_own_scripts_exist_and_the_entry_point_is_strict_executable_bash() -> None:
    names = {p.name for p in LIBS}
    assert set(OWN_LIBS) <= names, f"missing: {set(OWN_LIBS) - names}"
    assert os.access(ENTRY, os.X_OK) and os.access(REPO / "hack/local-cluster/build.sh", os.X_OK)
    for path in (ENTRY, REPO / "hack/local-cluster/build.sh"):
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text, path


@pytest.mark.parametrize("path", [ENTRY, *LIBS], ids=lambda p: p.name)
def test_scripts_parse(path: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (Debian package shellcheck)")
def test_shellcheck_is_clean() -> None:
    paths = [str(ENTRY)] + [str(REPO / "hack/local-cluster" / name) for name in OWN_LIBS]
    proc = subprocess.run([str(SHELLCHECK), "-x", *paths], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_help_lists_every_subcommand_and_an_unknown_one_fails() -> None:
    proc = subprocess.run([str(ENTRY), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for command in ("up", "down", "status", "env", "install", "e2e"):
        assert f"\n  {command} " in proc.stdout, command
    bad = subprocess.run([str(ENTRY), "sideways"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Usage:" in bad.stderr


def test_env_gives_kubectl_the_cluster_and_the_e2e_suite_its_audit_log(tmp_path: Path) -> None:
    state, cache = tmp_path / "state", tmp_path / "cache"
    variables = '"$KUBECONFIG" "$PATH" "$SNN_DRA_LOCAL_AUDIT_LOG" "$SNN_DRA_LOCAL_STATE"'
    script = f'eval "$("{ENTRY}" env)"; printf "%s\\n" {variables}'
    env = {**os.environ, "SNN_DRA_LOCAL_STATE": str(state), "SNN_DRA_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    kubeconfig, path, audit, exported_state = proc.stdout.splitlines()
    assert kubeconfig == f"{state}/kubeconfig"
    assert path == f"{cache}/local-cluster/bin/k8s-v1.36.3:/usr/bin:/bin"
    assert audit == f"{state}/log/audit.log" and exported_state == str(state)
    assert "not running" in proc.stderr


def test_env_follows_the_kubernetes_version_the_cluster_was_started_with(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "k8s-version").write_text("v1.37.2\n")
    env = {**os.environ, "SNN_DRA_LOCAL_STATE": str(state), "SNN_DRA_CACHE": str(tmp_path)}
    env.pop("K8S_VERSION", None)
    proc = subprocess.run([str(ENTRY), "env"], capture_output=True, text=True, env=env, check=False)
    assert f"export PATH={tmp_path}/local-cluster/bin/k8s-v1.37.2:" in proc.stdout, proc.stdout + proc.stderr


def test_the_second_kubernetes_version_is_one_variable_away(tmp_path: Path) -> None:
    proc = bash('echo "$K8S_BIN"', tmp_path, K8S_VERSION="v1.34.3", SNN_DRA_CACHE=str(tmp_path))
    assert proc.stdout.strip() == f"{tmp_path}/local-cluster/bin/k8s-v1.34.3", proc.stderr


def test_down_remembers_what_up_created_after_the_state_tmpfs_is_gone(tmp_path: Path) -> None:
    """The list of created host paths lives in the state dir, which down unmounts before it removes them."""
    script = (
        f'source "{REPO}/hack/local-cluster/teardown.sh"\n'
        'KUBELET_ROOT="$STATE/no-kubelet"\n'
        'printf "/var/run/cdi\\ncgroup:kubepods\\n" >"$CREATED_LIST"\n'
        "CREATED_PATHS=$(created_paths)\n"
        'rm -rf "$STATE"\n'
        "created_paths; owns_kubepods && echo owns"
    )
    proc = bash(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cgroup:kubepods", "/var/run/cdi", "owns"]


# ------------------------------------------------------------------------------------------ configuration
def gates(spec: str) -> dict[str, bool]:
    return {k: v == "true" for k, v in (item.split("=") for item in spec.split(","))}


def test_feature_gates_match_the_kind_cluster(tmp_path: Path) -> None:
    proc = bash('echo "$FEATURE_GATES"', tmp_path)
    kind = yaml.safe_load((REPO / "hack/kind-config.yaml").read_text())["featureGates"]
    assert gates(proc.stdout.strip()) == kind


def test_containerd_config_has_cdi_pinned_sandbox_and_the_sandbox_workarounds(tmp_path: Path) -> None:
    proc = bash("write_containerd_config registry.k8s.io/pause:3.10.1", tmp_path)
    assert proc.returncode == 0, proc.stderr
    state = tmp_path / "state"
    config = tomllib.loads((state / "containerd/config.toml").read_text())
    assert config["version"] == 3
    assert all(str(config[k]).startswith(str(state)) for k in ("root", "state"))
    images = config["plugins"]["io.containerd.cri.v1.images"]
    assert images["snapshotter"] == "overlayfs"
    assert images["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10.1"
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["enable_cdi"] is True and "/var/run/cdi" in runtime["cdi_spec_dirs"]
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is False
    cni = runtime["cni"]
    assert cni["bin_dirs"] == ["/usr/lib/cni"]
    [conflist] = Path(cni["conf_dir"]).glob("*.conflist")
    [bridge] = json.loads(conflist.read_text())["plugins"]
    # Pods stay inside the cluster's netns: no masquerading to anywhere else.
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False
    assert bridge["ipam"]["type"] == "host-local" and bridge["ipam"]["dataDir"].startswith(str(state))
    assert os.readlink(state / "bin/containerd-shim-runc-v2").endswith("containerd-shim-runc-v2-v2.4.2")


def test_kubelet_config_runs_on_cgroup_v1_with_the_dra_gates(tmp_path: Path) -> None:
    proc = bash("write_kubelet_config; echo $FEATURE_GATES", tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((tmp_path / "state/kubelet.yaml").read_text())
    assert config["kind"] == "KubeletConfiguration"
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["authorization"]["mode"] == "Webhook" and config["authentication"]["anonymous"]["enabled"] is False
    assert config["featureGates"] == gates(proc.stdout.strip())
    assert config["containerRuntimeEndpoint"] == f"unix://{tmp_path}/state/containerd/containerd.sock"


def test_kube_proxy_routes_services_with_iptables_and_leaves_conntrack_alone(tmp_path: Path) -> None:
    proc = bash("write_kube_proxy_config; echo $NODE_NAME", tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((tmp_path / "state/kube-proxy.yaml").read_text())
    assert config["mode"] == "iptables" and config["hostnameOverride"] == proc.stdout.strip()
    assert config["conntrack"]["maxPerCore"] == 0


def test_audit_policy_records_every_resourceslice_write_and_nothing_else(tmp_path: Path) -> None:
    proc = bash("write_audit_policy", tmp_path)
    assert proc.returncode == 0, proc.stderr
    policy = yaml.safe_load((tmp_path / "state/audit-policy.yaml").read_text())
    first, last = policy["rules"][0], policy["rules"][-1]
    assert first["level"] == "Metadata"
    assert {"create", "update", "patch", "delete", "deletecollection"} <= set(first["verbs"])
    assert {"group": "resource.k8s.io", "resources": first["resources"][0]["resources"]} == first["resources"][0]
    assert "resourceslices" in first["resources"][0]["resources"]
    assert last == {"level": "None"}


@pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to issue the certificates")
def test_certificates_name_the_identities_the_authorizers_expect(tmp_path: Path) -> None:
    proc = bash('make_pki && echo "$NODE_NAME $NODE_IP"', tmp_path)
    assert proc.returncode == 0, proc.stderr
    node, node_ip = proc.stdout.split()
    pki = tmp_path / "state/pki"

    def show(name: str) -> str:
        return subprocess.run(
            [str(OPENSSL), "x509", "-in", str(pki / f"{name}.crt"), "-noout", "-subject", "-ext", "subjectAltName"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert f"O = system:nodes, CN = system:node:{node}" in show("kubelet")
    assert "CN = system:kube-controller-manager" in show("controller-manager")
    assert "CN = system:kube-scheduler" in show("scheduler")
    assert "CN = system:kube-proxy" in show("kube-proxy")
    assert "O = system:masters" in show("admin")
    served = show("apiserver")
    for san in (f"IP Address:{node_ip}", "IP Address:10.0.0.1", "DNS:kubernetes.default.svc"):
        assert san in served, served
    verify = subprocess.run(
        [str(OPENSSL), "verify", "-CAfile", str(pki / "ca.crt"), str(pki / "apiserver.crt"), str(pki / "kubelet.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    kubeconfig = yaml.safe_load((tmp_path / "state/kubeconfig").read_text())
    assert kubeconfig["current-context"] == "snn-dra-local"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{node_ip}:6443"


# ------------------------------------------------------------------------------------------------ overlay
def render(kustomization: str) -> list[Obj]:
    assert KUBECTL is not None
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(REPO / kustomization)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_key(objects: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl is needed to render the kustomizations")
def test_local_overlay_is_the_base_except_the_documented_local_differences() -> None:
    base, local = by_key(render("deploy/base")), by_key(render("deploy/overlays/local"))
    # RBAC, the admission policy, DeviceClasses, namespace: exactly the base's, so the real API server
    # enforces what a user installs.
    for key, obj in base.items():
        if key[0] != "DaemonSet":
            assert local[key] == obj, f"{key} differs from deploy/base"
    assert ("ValidatingAdmissionPolicy", "snn-dra-resourceslices-own-node") in local
    assert ("ClusterRoleBinding", "snn-dra-kubelet-plugin") in local
    [config_map] = [o for k, o in local.items() if k[0] == "ConfigMap"]
    assert set(local) - set(base) == {("ConfigMap", config_map["metadata"]["name"])}
    assert config_map["data"]["node-config.yaml"] == (REPO / "deploy/node-configs/kapoho-point.yaml").read_text(), (
        "deploy/overlays/local/node-config.yaml differs from deploy/node-configs/kapoho-point.yaml; copy it again"
    )

    # The DaemonSet: the base's with the dev image (never pulled), without /dev and /sys, and the generated
    # ConfigMap's hashed name.
    expected = copy.deepcopy(base[("DaemonSet", "snn-dra-kubelet-plugin")])
    pod = expected["spec"]["template"]["spec"]
    [container] = pod["containers"]
    container["image"] = "ghcr.io/snn-dra/snn-dra:dev"
    container["imagePullPolicy"] = "Never"
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] not in ("/dev", "/sys")]
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] not in ("dev", "sys")]
    for volume in pod["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = config_map["metadata"]["name"]
    assert local[("DaemonSet", "snn-dra-kubelet-plugin")] == expected


def test_up_installs_the_local_overlay_and_waits_for_the_nodes_slices() -> None:
    install = (REPO / "hack/local-cluster/install.sh").read_text()
    assert "OVERLAY=deploy/overlays/local" in install and 'apply -k "$REPO/$OVERLAY"' in install
    assert "rollout status daemonset/snn-dra-kubelet-plugin" in install and "slices_complete" in install
