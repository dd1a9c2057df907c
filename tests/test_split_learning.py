"""Split learning: the numpy SNN, the TCP link, and two real processes fed by the embedded cluster's CDI env."""

from __future__ import annotations

import io
import json
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from snn_dra.driver.cdi import resolve
from snn_dra.driver.cli import app
from snn_dra.driver.split.learning import LearnConfig, LearnError, devices_from_env, parse_address, serve, train_client
from snn_dra.driver.split.loading import load_model
from snn_dra.driver.split.manifests import render
from snn_dra.driver.split.planner import plan_model
from snn_dra.driver.split.snn import LIFLayer, spike_dataset
from snn_dra.driver.split.wire import WireError, pack_spikes, receive, send, unpack_spikes

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def falls(losses: list[float]) -> bool:
    return float(np.mean(losses[-5:])) < 0.5 * float(np.mean(losses[:5]))


def test_split_training_over_loopback_lowers_the_loss() -> None:
    config = LearnConfig(steps=25)
    port: list[int] = []
    ready = threading.Event()
    server_losses: list[float] = []
    server_out = io.StringIO()

    def run_server() -> None:
        server_losses.extend(
            serve(
                "127.0.0.1:0",
                config,
                [],
                server_out,
                accept_timeout=60,
                on_listening=lambda p: (port.append(p), ready.set()),
            )
        )

    thread = threading.Thread(target=run_server)
    thread.start()
    assert ready.wait(30)
    out = io.StringIO()
    losses = train_client(f"127.0.0.1:{port[0]}", config, [], out, connect_timeout=30)
    thread.join(30)
    assert not thread.is_alive()
    assert len(losses) == 25 and losses == pytest.approx(server_losses)
    assert falls(losses), losses
    lines = out.getvalue().splitlines()
    step = next(line for line in lines if line.startswith("client: step 1/25"))
    assert "spikes_sent" in step and "bytes_sent" in step
    assert "server: done after 25 steps" in server_out.getvalue()


def test_cut_layer_spikes_are_binary_and_gradients_reach_the_client() -> None:
    x, y = spike_dataset(8, channels=16, classes=2, steps=10, seed=1)
    assert set(np.unique(x)) <= {0, 1} and x.shape == (8, 10, 16) and y.shape == (8,)
    layer = LIFLayer.create(16, 24, np.random.default_rng(0))
    spikes = layer.forward(x.astype(float))
    assert set(np.unique(spikes)) <= {0.0, 1.0} and 0 < spikes.mean() < 1
    before = layer.weights.copy()
    grad_x = layer.backward(np.ones_like(spikes))
    assert grad_x.shape == x.shape and np.abs(grad_x).sum() > 0
    assert not np.array_equal(before, layer.weights)
    assert np.array_equal(unpack_spikes(pack_spikes(spikes), 24), spikes)


def test_wire_round_trips_arrays_and_refuses_pickles() -> None:
    a, b = socket.socketpair()
    with a, b:
        sent = send(a, {"type": "t", "step": 3}, grad=np.arange(6, dtype=np.float32).reshape(2, 3))
        header, arrays = receive(b)
        assert header == {"type": "t", "step": 3, "arrays": ["grad"]} and sent > 100
        assert arrays["grad"].dtype == np.float32 and arrays["grad"].tolist() == [[0, 1, 2], [3, 4, 5]]
        with pytest.raises(ValueError, match="allow_pickle"):
            send(a, {"type": "t"}, bad=np.array([{"x": 1}], dtype=object))
    c, d = socket.socketpair()
    with c, d:
        c.sendall(b"\x00\x00\x00\x02[]")
        with pytest.raises(WireError, match="not a JSON object"):
            receive(d)
        c.close()
        with pytest.raises(WireError, match="closed"):
            receive(d)


def test_devices_come_from_the_cdi_environment() -> None:
    env = {
        "SNN_DRA_DEVICE_LOIHI2_AB_CORE_5": "loihi2-ab-core-5",
        "SNN_DRA_LOIHI2_AB_CORE_5_TYPE": "neuronCore",
        "SNN_DRA_LOIHI2_AB_CORE_5_CHIP_ID": "loihi2-ab",
        "SNN_DRA_LOIHI2_AB_CORE_5_SPLIT_STAGE_INDEX": "1",
        "PATH": "/bin",
    }
    (device,) = devices_from_env(env)
    assert (device.name, device.type, device.chip, device.stage) == ("loihi2-ab-core-5", "neuronCore", "loihi2-ab", "1")
    assert devices_from_env({"PATH": "/bin"}) == []
    with pytest.raises(LearnError, match="not HOST:PORT"):
        parse_address("localhost")


def test_cli_refuses_to_run_without_devices_unless_told() -> None:
    result = runner.invoke(app, ["split", "learn", "--role", "client", "--server", "127.0.0.1:1"], env={})
    assert result.exit_code == 2 and "no SNN devices in the environment" in result.stderr
    result = runner.invoke(app, ["split", "learn", "--role", "client", "--allow-no-devices"], env={})
    assert result.exit_code == 2 and "needs --server" in result.stderr


# --- two processes under the embedded cluster ----------------------------------------------------------


def _learn(role: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SNN_DRA_")}
    return subprocess.Popen(
        [sys.executable, "-c", "from snn_dra.driver.cli import main; main()", "split", "learn", "--role", role,
         "--steps", "25", *args],
        env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _first_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the server printed nothing"
    return proc.stdout.readline()


@pytest.mark.slow
def test_two_processes_train_with_the_devices_their_claims_got(tmp_path: Path) -> None:
    from cluster_support import KAPOHO, running_cluster, wait_for

    model = load_model(REPO / "deploy/examples/split/split-learning.yaml")
    model = model.model_copy(update={"metadata": model.metadata.model_copy(update={"namespace": "snn-test"})})
    docs = render(plan_model(model))
    with running_cluster(KAPOHO) as (cluster, kube):
        for doc in docs:
            if doc["kind"] in ("ResourceClaimTemplate", "Pod"):
                kube.create(doc)
        envs: dict[str, dict[str, str]] = {}
        devices: dict[str, list[str]] = {}
        for pod, container in (("sl-edge", "client"), ("sl-server", "server")):

            def running(pod: str = pod) -> dict[str, Any] | None:
                obj = kube.get("Pod", pod, "snn-test")
                return obj if obj.get("status", {}).get("phase") == "Running" else None

            wait_for(running, f"pod {pod} to run")
            ids = cluster.kubelets["snn-node-0"].cdi_devices_for("snn-test", pod, container)
            edits = resolve(ids, [cluster.node_dirs("snn-node-0").cdi_dir])
            envs[container] = dict(line.split("=", 1) for line in edits["env"])
            claim = kube.get("Pod", pod, "snn-test")["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
            results = kube.get("ResourceClaim", claim, "snn-test")["status"]["allocation"]["devices"]["results"]
            devices[container] = sorted(r["device"] for r in results)

        server = _learn("server", envs["server"], "--listen", "127.0.0.1:0")
        client: subprocess.Popen[str] | None = None
        try:
            first = _first_line(server)
            assert first.startswith("server: listening on 127.0.0.1:")
            assert all(d in first for d in devices["server"]), first
            port = first.split("127.0.0.1:")[1].split(";")[0]
            client = _learn(
                "client", envs["client"], "--server", f"127.0.0.1:{port}", "--report", str(tmp_path / "client.json")
            )
            out, err = client.communicate(timeout=120)
            assert client.returncode == 0, err
            server_out, server_err = server.communicate(timeout=60)
            assert server.returncode == 0, server_err
        finally:
            for proc in (server, client):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        assert f"client: devices: {devices['client'][0]} (neuronCore" in out
        assert "stage 0" in out and "stage 1" in first and "stage 2" in first
        losses = [
            float(line.split("loss ")[1].split()[0]) for line in out.splitlines() if line.startswith("client: step")
        ]
        assert len(losses) == 25 and falls(losses), losses
        assert "server: done after 25 steps" in server_out
        summary = json.loads((tmp_path / "client.json").read_text())
        assert summary["role"] == "client" and summary["losses"] == pytest.approx(losses, abs=1e-4)
        assert [(d["name"], d["type"], d["stage"]) for d in summary["devices"]] == [
            (devices["client"][0], "neuronCore", "0")
        ]
        for pod in ("sl-edge", "sl-server"):
            kube.delete("Pod", pod, "snn-test")
        wait_for(lambda: not kube.list("ResourceClaim", "snn-test"), "the split-learning claims to be released")


@pytest.mark.slow
def test_split_demo_command_runs_both_sides_under_the_embedded_cluster() -> None:
    result = runner.invoke(app, ["split", "demo", "--steps", "15", "--deploy-dir", str(REPO / "deploy")])
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "pods and the devices their claims got" in err and "stage1/chip" in err
    done = next(line for line in err.splitlines() if line.startswith("split-learning demo complete"))
    first, last = (float(x) for x in done.split("loss ")[1].split(" over")[0].split(" -> "))
    assert last < 0.5 * first
