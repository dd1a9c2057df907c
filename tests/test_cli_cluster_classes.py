"""`snn-dra cluster up` installs the DeviceClasses of deploy/base unless told not to."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest
import yaml
from kubernetes import config
from rich.console import Console
from typer.testing import CliRunner

from snn_dra.driver.cli import app
from snn_dra.driver.cli.cluster import ClusterOptions, run_cluster
from snn_dra.driver.embedded.cluster import wait_until
from snn_dra.driver.kubejson import KubeJSON, resource_path

REPO = Path(__file__).resolve().parent.parent
CLASSES = REPO / "deploy/base/deviceclasses.yaml"


def _classes_seen_by_a_client(options: ClusterOptions) -> tuple[list[str], str]:
    """Run the cluster in this (main) thread; another thread lists the DeviceClasses once it is up, then stops it."""
    out = io.StringIO()
    stop = threading.Event()
    seen: list[str] = []

    def probe() -> None:
        try:
            wait_until(lambda: "Press Ctrl-C" in out.getvalue() or None, "the cluster to be up", timeout=60)
            api = config.new_client_from_config(config_file=str(options.kubeconfig))  # type: ignore[no-untyped-call]
            try:
                items = KubeJSON(api).get(resource_path("resource.k8s.io", "v1", "deviceclasses"))["items"]
                seen.extend(sorted(i["metadata"]["name"] for i in items))
            finally:
                api.close()
        finally:
            stop.set()

    thread = threading.Thread(target=probe)
    thread.start()
    run_cluster(options, Console(file=out, width=200), stop)
    thread.join()
    return seen, out.getvalue()


def test_cluster_up_installs_the_device_classes_of_deploy_base(tmp_path: Path) -> None:
    expected = sorted(d["metadata"]["name"] for d in yaml.safe_load_all(CLASSES.read_text()) if d)
    options = ClusterOptions(kubeconfig=tmp_path / "kc", state_dir=tmp_path / "state", device_classes=CLASSES)
    seen, printed = _classes_seen_by_a_client(options)
    assert seen == expected and "snn-neuron-core" in seen
    in_file_order = ", ".join(d["metadata"]["name"] for d in yaml.safe_load_all(CLASSES.read_text()) if d)
    assert re.search(rf"DeviceClasses +{re.escape(in_file_order)}", printed), printed
    assert f"snn-dra status --kubeconfig {tmp_path / 'kc'}" in printed


def test_no_device_classes_installs_none(tmp_path: Path) -> None:
    options = ClusterOptions(kubeconfig=tmp_path / "kc", state_dir=tmp_path / "state", device_classes=None)
    seen, printed = _classes_seen_by_a_client(options)
    assert seen == []
    assert re.search(r"DeviceClasses +none installed", printed), printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device-classes", "x.yaml", "--no-device-classes"], "exclude each other"),
        (["--device-classes", "/nonexistent/classes.yaml"], "--device-classes /nonexistent/classes.yaml"),
        (["--device-classes", str(REPO / "deploy/base/rbac.yaml")], "give a file of DeviceClasses only"),
    ],
)
def test_bad_device_class_options_are_refused_before_anything_starts(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["cluster", "up", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 2, result.output
    assert message in result.output
