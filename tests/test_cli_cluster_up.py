"""`snn-dra cluster up --node-config`: kubectl apply of a claim template and a pod ends in a prepared claim."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SNN_DRA = str(Path(sys.executable).parent / "snn-dra")
NEURON_CORE = "snn-neuron-core"

WORKLOAD = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "snn-up"}},
    {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "npu", "namespace": "snn-up"},
        "spec": {"spec": {"devices": {"requests": [{"name": "npu", "exactly": {"deviceClassName": NEURON_CORE}}]}}},
    },
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "infer", "namespace": "snn-up"},
        "spec": {
            "resourceClaims": [{"name": "npu", "resourceClaimTemplateName": "npu"}],
            "containers": [{"name": "c", "image": "busybox:1.36", "resources": {"claims": [{"name": "npu"}]}}],
        },
    },
]


def kubectl(kubeconfig: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def test_cluster_up_with_the_plugin_serves_a_whole_claim_lifecycle(tmp_path: Path) -> None:
    state = Path(tempfile.mkdtemp(prefix="snn-up-", dir="/tmp"))  # short: socket paths stay under 107 bytes
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [SNN_DRA, "cluster", "up", "--kubeconfig", str(kubeconfig), "--state-dir", str(state),
         "--node-config", str(REPO / "deploy/node-configs/akida-pcie.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
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
        classes = kubectl(kubeconfig, tmp_path, "get", "deviceclasses", "-o", "name")  # installed by `cluster up`
        assert "deviceclass.resource.k8s.io/snn-neuron-core" in classes.stdout.split(), classes.stdout + classes.stderr
        manifest = tmp_path / "workload.yaml"
        manifest.write_text(yaml.safe_dump_all(WORKLOAD))
        applied = kubectl(kubeconfig, tmp_path, "apply", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr

        deadline = time.monotonic() + 60
        while True:
            phase = kubectl(kubeconfig, tmp_path, "get", "pod", "infer", "-n", "snn-up", "-o",
                            "jsonpath={.status.phase}").stdout  # fmt: skip
            if phase == "Running" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert phase == "Running", "".join(lines)
        claims = kubectl(kubeconfig, tmp_path, "get", "resourceclaims", "-n", "snn-up")
        assert "allocated,reserved" in claims.stdout, claims.stdout
        nodes = kubectl(kubeconfig, tmp_path, "get", "nodes").stdout.split()
        assert nodes[5:7] == ["snn-node-0", "Ready"], nodes
        slices = kubectl(kubeconfig, tmp_path, "get", "resourceslices")
        assert slices.stdout.split()[:5] == ["NAME", "NODE", "DRIVER", "POOL", "AGE"]
        assert "snn.dra.dev" in slices.stdout
        assert len(list((state / "nodes/snn-node-0/cdi").glob("*.json"))) == 1

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not list((state / "nodes/snn-node-0/kubelet/plugins_registry").glob("*.sock")), "plugin left sockets"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)
