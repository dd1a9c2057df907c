"""`snn-dra demo` (the offline main job) runs the driver end to end and cleans up after itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from snn_dra.api.status import ClusterStatus
from snn_dra.driver.embedded.cluster import STATE_ROOT_ENV

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_every_workload_and_releases_everything() -> None:
    root = Path(tempfile.mkdtemp(prefix="snn-demo-", dir="/tmp"))  # short: the plugin's socket paths live below
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "demo"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, STATE_ROOT_ENV: str(root)},
        )
        leftovers = list(root.iterdir())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "ResourceSlices published" in out
    # Every demo pod runs: single core, core group, split model (two stages), two router sharers.
    match = re.search(r"demo complete: (\d+) slices published, (\d+)/(\d+) pods ran", out)
    assert match, out
    assert int(match.group(1)) > 0 and match.group(2) == match.group(3) == "5"
    for pod in ("single-core-job", "core-group-job", "split-model", "router-user-a", "router-user-b"):
        assert pod in out
    assert re.search(r"SNN_DRA_\w+_TYPE=neuronCore", out)
    assert "every claim unprepared and its CDI spec removed" in out
    assert not leftovers, f"the demo left its cluster directory behind: {leftovers}"
    assert "Try next:" in out and "snn-dra demo --keep" in out and "snn-dra cluster up --node-config" in out
    assert max(len(line) for line in out[out.index("Try next:") :].splitlines()) <= 80


def test_demo_keep_stays_up_for_kubectl_and_status_until_ctrl_c() -> None:
    root = Path(tempfile.mkdtemp(prefix="snn-keep-", dir="/tmp"))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "demo", "--keep"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, STATE_ROOT_ENV: str(root)},
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(240) and proc.poll() is None, "".join(lines)
        out = "".join(lines)
        kubeconfig = re.search(r"snn-dra status --kubeconfig (\S+)", out)
        assert kubeconfig, out
        assert f"kubectl --kubeconfig {kubeconfig.group(1)} get pods,resourceclaims -n snn-demo" in out
        status = subprocess.run(
            [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "status", "--kubeconfig",
             kubeconfig.group(1), "-o", "json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        report = ClusterStatus.model_validate_json(status.stdout)
        pods = {p for n in report.nodes for c in n.chips for claim in c.claims for p in claim.pods}
        pods |= {p for n in report.nodes for c in n.chips for s in c.shared for h in s.holders for p in h.pods}
        assert {"single-core-job", "core-group-job", "split-model", "router-user-a", "router-user-b"} <= pods
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, "".join(lines)
        reader.join(timeout=10)
        out = "".join(lines)
        assert "every claim unprepared and its CDI spec removed" in out and "demo complete" in out
        assert not list(root.iterdir()), "the demo left its cluster directory behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def test_demo_explains_a_missing_deploy_dir(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "demo", "--deploy-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "has no demo/kustomization.yaml" in proc.stdout
