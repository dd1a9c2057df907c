"""The plugin is SIGKILLed at every step of prepare and unprepare; restarted, it ends each claim exactly once.

The kubelet emulation retries as a kubelet does, over the restarted plugin's new sockets. After recovery every
claim is prepared exactly once with its CDI spec on disk, no device is held by two claims, and unprepare leaves
nothing behind.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from cluster_support import (
    AKIDA,
    NAMESPACE,
    NODE,
    cdi_specs,
    checkpoint_claims,
    claims_of,
    pod,
    pod_running,
    request,
    running_cluster,
    template,
    wait_for,
)

from snn_dra.driver.cdi import resolve
from snn_dra.driver.embedded.cluster import EmbeddedCluster
from snn_dra.driver.embedded.kubelet import KubeletEmulator
from snn_dra.driver.prepare import FAULT_INJECTION_FLAG, FAULT_STEP_ENV, FAULT_STEPS

PREPARE_STEPS = [s for s in FAULT_STEPS if not s.startswith(("unprepare", "rollback"))]
UNPREPARE_STEPS = [s for s in FAULT_STEPS if s.startswith("unprepare")]


def _restart_plugin(cluster: EmbeddedCluster, *args: str, env: dict[str, str] | None = None) -> None:
    cluster.plugins[NODE].stop()
    cluster.start_plugin(NODE, AKIDA, *args, env=env)


def _two_claim_pod(kube: Any) -> None:
    kube.create(template("groups", [request("a", "snn-core-group"), request("b", "snn-core-group")]))
    kube.create(template("core", [request("c", "snn-neuron-core")]))
    kube.create(pod("job", {"g": "groups", "n": "core"}))


def _assert_prepared_exactly_once(cluster: EmbeddedCluster, kube: Any) -> None:
    claims = claims_of(kube, "job")
    assert len(claims) == 2
    ckpt = checkpoint_claims(cluster)
    specs = cdi_specs(cluster)
    uids = {c["metadata"]["uid"] for c in claims}
    assert set(ckpt) == uids, "checkpoint must hold exactly the pod's claims"
    assert all(e["state"] == "PrepareCompleted" for e in ckpt.values())
    assert len(specs) == len(uids) and all(any(u in name for name in specs) for u in uids)
    held = [d["device"] for e in ckpt.values() for d in e["devices"]]
    assert len(held) == len(set(held)), f"a device is held twice: {held}"
    ids = cluster.kubelets[NODE].cdi_devices_for(NAMESPACE, "job", "job")
    assert len(ids) == 3
    resolve(ids, [cluster.node_dirs(NODE).cdi_dir])  # every ID the kubelet holds resolves


@pytest.mark.parametrize("step", PREPARE_STEPS)
@pytest.mark.parametrize("wipe_cdi", [False, True], ids=["keep-cdi", "wipe-cdi"])
def test_sigkill_during_prepare_then_restart(step: str, wipe_cdi: bool) -> None:
    with running_cluster(env={FAULT_STEP_ENV: step}, plugin_args=(FAULT_INJECTION_FLAG,)) as (cluster, kube):
        handle = cluster.plugins[NODE]
        _two_claim_pod(kube)
        assert handle.proc.wait(timeout=60) == -9, f"the plugin should have been killed at {step}"
        if wipe_cdi:  # a reboot empties the tmpfs CDI dir; the checkpoint survives on disk
            shutil.rmtree(cluster.node_dirs(NODE).cdi_dir)
            cluster.node_dirs(NODE).cdi_dir.mkdir()
        handle.stop()
        cluster.start_plugin(NODE, AKIDA)
        wait_for(lambda: pod_running(kube, "job"), f"the pod to run after a crash at {step}")
        _assert_prepared_exactly_once(cluster, kube)


def test_cdi_wiped_after_completion_is_rewritten_on_retry() -> None:
    """A completed claim whose spec vanished gets it back when prepare is called again (kubelet restart)."""
    with running_cluster() as (cluster, kube):
        _two_claim_pod(kube)
        wait_for(lambda: pod_running(kube, "job"), "the pod to run")
        before = cdi_specs(cluster)
        for p in cluster.node_dirs(NODE).cdi_dir.glob("*.json"):
            p.unlink()
        # A kubelet restart re-sends NodePrepareResources for the pod's claims; the plugin must heal the specs.
        cluster.kubelets[NODE].stop()
        dirs = cluster.node_dirs(NODE)
        cluster.kubelets[NODE] = KubeletEmulator(
            cluster.store, NODE, dirs.registry_dir, kubelet_root=dirs.kubelet_root
        ).start()
        wait_for(lambda: cdi_specs(cluster) == before, "the CDI specs to be rewritten byte for byte")


@pytest.mark.parametrize("step", UNPREPARE_STEPS)
def test_sigkill_during_unprepare_then_restart(step: str) -> None:
    with running_cluster() as (cluster, kube):
        _two_claim_pod(kube)
        wait_for(lambda: pod_running(kube, "job"), "the pod to run")
        _restart_plugin(cluster, FAULT_INJECTION_FLAG, env={FAULT_STEP_ENV: step})
        handle = cluster.plugins[NODE]
        kube.delete("Pod", "job", NAMESPACE)
        assert handle.proc.wait(timeout=60) == -9, f"the plugin should have been killed at {step}"
        handle.stop()
        cluster.start_plugin(NODE, AKIDA)
        wait_for(lambda: not cdi_specs(cluster), f"CDI specs to be gone after a crash at {step}")
        wait_for(lambda: not checkpoint_claims(cluster), f"the checkpoint to be empty after a crash at {step}")
        wait_for(lambda: not cluster.kubelets[NODE].prepared_claims(), "the kubelet to see both claims unprepared")


def test_the_fault_variable_alone_cannot_arm_the_hook() -> None:
    """A production process (no hidden flag) ignores $SNN_DRA_FAULT_STEP: it prepares and keeps running."""
    with running_cluster(env={FAULT_STEP_ENV: "after_cdi_written"}) as (cluster, kube):
        _two_claim_pod(kube)
        wait_for(lambda: pod_running(kube, "job"), "the pod to run although the fault variable is set")
        assert cluster.plugins[NODE].proc.poll() is None, "the plugin died: the variable alone armed the hook"
        _assert_prepared_exactly_once(cluster, kube)
        assert "is set but ignored" in cluster.plugins[NODE].log_path.read_text()
