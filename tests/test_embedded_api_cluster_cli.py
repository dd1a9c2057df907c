"""`snn-dra cluster up` as a user runs it: prints how to connect, serves kubectl, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from snn_dra.driver.cli.cluster import parse_feature_gates

SNN_DRA = str(Path(sys.executable).parent / "snn-dra")


def test_cluster_up_serves_kubectl_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    proc = subprocess.Popen([SNN_DRA, "cluster", "up", "--port", "0", "--kubeconfig", str(kubeconfig),
                             "--profile", "1.36", "--state-dir", str(tmp_path / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "kubectl get resourceslices" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "cluster up did not report readiness"
        out = "".join(lines)
        assert f"export KUBECONFIG={kubeconfig}" in out and "Kubernetes 1.36" in out
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        got = subprocess.run(["kubectl", "get", "resourceslices"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)},
                             check=False)
        assert got.returncode == 0, got.stderr
        assert "No resources found" in got.stderr
        version = subprocess.run(["kubectl", "version", "-o", "json"], capture_output=True, text=True,
                                 timeout=60, env={**os.environ, "KUBECONFIG": str(kubeconfig),
                                                  "HOME": str(tmp_path)}, check=False)
        assert '"minor": "36"' in version.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        reader.join(timeout=10)
        assert "Shutting down" in "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cluster_up_rejects_bad_profile_and_gates(tmp_path: Path) -> None:
    bad = subprocess.run([SNN_DRA, "cluster", "up", "--profile", "1.20", "--kubeconfig", str(tmp_path / "k")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "use one of 1.34, 1.35, 1.36, 1.37" in bad.stdout
    assert parse_feature_gates("DRADeviceTaints=true, DRAConsumableCapacity=false") == {
        "DRADeviceTaints": True, "DRAConsumableCapacity": False}
    with pytest.raises(ValueError, match="Name=true or Name=false"):
        parse_feature_gates("DRADeviceTaints")


def test_cluster_up_reports_a_busy_port(tmp_path: Path) -> None:
    from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

    with EmbeddedApiServer(state_dir=tmp_path / "first") as first:
        port = first.url.rsplit(":", 1)[1]
        busy = subprocess.run([SNN_DRA, "cluster", "up", "--port", port, "--kubeconfig", str(tmp_path / "k")],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "COLUMNS": "200"})
    assert busy.returncode == 1
    assert f"cannot start the API server on 127.0.0.1:{port}" in busy.stdout and "--port" in busy.stdout
