"""`snn-dra demo` (the offline main job) runs the driver end to end and cleans up after itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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


def test_demo_explains_a_missing_deploy_dir(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "demo", "--deploy-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "has no demo/kustomization.yaml" in proc.stdout
