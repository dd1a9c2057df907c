"""End to end on the embedded cluster: real plugin process, scheduler, kubelet emulation, CDI on disk."""

from __future__ import annotations

from cluster_support import (
    NAMESPACE,
    NODE,
    cdi_specs,
    checkpoint_claims,
    claims_of,
    pod,
    pod_running,
    pool_published,
    request,
    running_cluster,
    template,
    wait_for,
)

from snn_dra.driver.cdi import resolve


def test_pod_gets_its_devices_through_cdi_and_gives_them_back() -> None:
    with running_cluster() as (cluster, kube):
        slices = pool_published(kube)
        assert slices is not None
        assert all(s["metadata"]["ownerReferences"][0]["kind"] == "Node" for s in slices)
        kube.create(
            template(
                "group-and-router",
                [
                    request("cores", "snn-core-group"),
                    request("router", "snn-spike-router", capacity={"requests": {"eventThroughputMEPS": "64"}}),
                ],
                constraints=[{"requests": ["cores", "router"], "matchAttribute": "snn.dra.dev/chipID"}],
                config=[
                    {
                        "requests": ["cores"],
                        "opaque": {
                            "driver": "snn.dra.dev",
                            "parameters": {
                                "apiVersion": "snn.dra.dev/v1alpha1",
                                "kind": "SNNConfig",
                                "neuronModel": "Izhikevich",
                                "timestepMicroseconds": 250,
                            },
                        },
                    }
                ],
            )
        )
        kube.create(pod("job", {"snn": "group-and-router"}))
        wait_for(lambda: pod_running(kube, "job"), "pod job to run")

        (claim,) = claims_of(kube, "job")
        results = claim["status"]["allocation"]["devices"]["results"]
        assert {r["request"] for r in results} == {"cores", "router"}
        assert {r["pool"] for r in results} == {NODE}
        router = next(r for r in results if r["request"] == "router")
        assert router["consumedCapacity"] == {"eventThroughputMEPS": "64"} and router["shareID"]

        # The kubelet emulation got CDI IDs from the plugin; the runtime would resolve them from the CDI dir.
        kubelet = cluster.kubelets[NODE]
        ids = kubelet.cdi_devices_for(NAMESPACE, "job", "job")
        assert ids and all(i.startswith("snn.dra.dev/snn=") for i in ids)
        edits = resolve(ids, [cluster.node_dirs(NODE).cdi_dir])
        env = dict(e.split("=", 1) for e in edits["env"])
        cores = next(r["device"] for r in results if r["request"] == "cores")
        key = "SNN_DRA_" + cores.upper().replace("-", "_")
        assert env[f"{key}_NEURON_MODEL"] == "Izhikevich" and env[f"{key}_TIMESTEP_US"] == "250"
        assert env[f"{key}_TYPE"] == "coreGroup"
        rkey = "SNN_DRA_" + router["device"].upper().replace("-", "_")
        # The claim's config is scoped to "cores": the router gets the class config and the defaults.
        assert env[f"{rkey}_SHARING"] == "shared" and env[f"{rkey}_TIMESTEP_US"] == "1000"
        assert env[f"{rkey}_NEURON_MODEL"] == "LIF"
        assert env[f"{rkey}_SHARE_ID"] == router["shareID"]
        # Akida chips are PCIe char devices: the device node comes from discovery, never from the claim.
        assert [n["path"] for n in edits["deviceNodes"]] in (["/dev/akida0"], ["/dev/akida1"])

        ckpt = checkpoint_claims(cluster)
        assert ckpt[claim["metadata"]["uid"]]["state"] == "PrepareCompleted"
        assert len(cdi_specs(cluster)) == 1

        kube.delete("Pod", "job", NAMESPACE)
        wait_for(lambda: not cdi_specs(cluster), "the CDI spec to be removed after the pod is gone")
        wait_for(lambda: not checkpoint_claims(cluster), "the checkpoint entry to be removed")
        wait_for(lambda: not kube.list("ResourceClaim", NAMESPACE), "the generated claim to be deleted")


def test_partitions_never_overlap_across_pods() -> None:
    with running_cluster() as (_cluster, kube):
        # Two Akida chips: two whole-chip pods take both; a core-group pod then cannot be placed.
        kube.create(template("chip", [request("chip", "snn-chip")]))
        kube.create(template("group", [request("g", "snn-core-group")]))
        kube.create(pod("chip-a", {"c": "chip"}))
        kube.create(pod("chip-b", {"c": "chip"}))
        wait_for(lambda: pod_running(kube, "chip-a") and pod_running(kube, "chip-b"), "both chip pods to run")
        kube.create(pod("group", {"g": "group"}))

        def unschedulable() -> str | None:
            conds = kube.get("Pod", "group", NAMESPACE).get("status", {}).get("conditions") or []
            return next(
                (c.get("message", "") for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"), None
            )

        message = wait_for(unschedulable, "the core-group pod to be reported unschedulable")
        assert "group" in message
        kube.delete("Pod", "chip-a", NAMESPACE)
        wait_for(lambda: pod_running(kube, "group"), "the core-group pod to run once a chip is free")
        (group_claim,) = claims_of(kube, "group")
        (chip_claim,) = claims_of(kube, "chip-b")
        chip_b = chip_claim["status"]["allocation"]["devices"]["results"][0]["device"]
        group = group_claim["status"]["allocation"]["devices"]["results"][0]["device"]
        assert not group.startswith(chip_b), f"core group {group} overlaps chip {chip_b}"
