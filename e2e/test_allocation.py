"""Claims get allocated from the driver's slices and their containers see the devices through CDI."""

from __future__ import annotations

from e2e import kube
from e2e.workloads import claim_template, container_env, snn_values, wait_ready, workload_pod


def test_core_group_claim_reaches_the_container_with_its_config(namespace: str) -> None:
    kube.apply(
        [
            claim_template(
                namespace,
                "tile",
                {
                    "requests": [{"name": "cores", "exactly": {"deviceClassName": "snn-core-group"}}],
                    "config": [
                        {
                            "requests": ["cores"],
                            "opaque": {
                                "driver": kube.DRIVER,
                                "parameters": {
                                    "apiVersion": "snn.dra.dev/v1alpha1",
                                    "kind": "SNNConfig",
                                    "neuronModel": "Izhikevich",
                                    "timestepMicroseconds": 250,
                                },
                            },
                        }
                    ],
                },
            ),
            workload_pod(namespace, "job", {"snn": "tile"}),
        ]
    )
    pod = wait_ready(namespace, "job")
    claim = kube.claim_of(namespace, "job", "snn")
    results = claim["status"]["allocation"]["devices"]["results"]
    assert [(r["request"], r["driver"], r["pool"]) for r in results] == [
        ("cores", kube.DRIVER, pod["spec"]["nodeName"])
    ]
    device = kube.pool_devices(pod["spec"]["nodeName"])[results[0]["device"]]
    assert kube.attribute(device, "type") == "coreGroup"

    env = container_env(namespace, "job")
    device_var = "SNN_DRA_DEVICE_" + results[0]["device"].upper().replace("-", "_").replace(".", "_")
    assert env.get(device_var) == results[0]["device"], env
    assert snn_values(env, "TYPE") == ["coreGroup"]
    assert snn_values(env, "NEURON_MODEL") == ["Izhikevich"]
    assert snn_values(env, "TIMESTEP_US") == ["250"]
    assert snn_values(env, "CLAIM_UID") == [claim["metadata"]["uid"]]


def test_split_model_stages_share_a_chip_and_each_container_sees_its_stage(namespace: str) -> None:
    def stage(index: int, name: str) -> dict[str, object]:
        return {
            "requests": [name],
            "opaque": {
                "driver": kube.DRIVER,
                "parameters": {
                    "apiVersion": "snn.dra.dev/v1alpha1",
                    "kind": "SNNConfig",
                    "splitStage": {"index": index, "name": name},
                },
            },
        }

    kube.apply(
        [
            claim_template(
                namespace,
                "split",
                {
                    "requests": [
                        {"name": "encoder", "exactly": {"deviceClassName": "snn-core-group"}},
                        {"name": "decoder", "exactly": {"deviceClassName": "snn-core-group"}},
                    ],
                    "constraints": [{"requests": ["encoder", "decoder"], "matchAttribute": "snn.dra.dev/chipID"}],
                    "config": [stage(0, "encoder"), stage(1, "decoder")],
                },
            ),
            workload_pod(
                namespace,
                "model",
                {"m": "split"},
                containers={"encoder": [("m", "encoder")], "decoder": [("m", "decoder")]},
            ),
        ]
    )
    pod = wait_ready(namespace, "model")
    results = {
        r["request"]: r["device"]
        for r in kube.claim_of(namespace, "model", "m")["status"]["allocation"]["devices"]["results"]
    }
    assert set(results) == {"encoder", "decoder"}
    assert results["encoder"] != results["decoder"]
    devices = kube.pool_devices(pod["spec"]["nodeName"])
    chips = {req: kube.attribute(devices[dev], "chipID") for req, dev in results.items()}
    assert chips["encoder"] == chips["decoder"], chips

    for index, name in enumerate(("encoder", "decoder")):
        env = container_env(namespace, "model", name)
        assert snn_values(env, "SPLIT_STAGE_INDEX") == [str(index)], f"container {name}: {env}"
        assert snn_values(env, "SPLIT_STAGE_NAME") == [name]
        assert snn_values(env, "CHIP_ID") == [chips[name]]


def test_two_claims_share_one_spike_router_by_capacity(namespace: str, worker: str) -> None:
    kube.apply(
        [
            claim_template(
                namespace,
                "router",
                {
                    "requests": [
                        {
                            "name": "router",
                            "exactly": {
                                "deviceClassName": "snn-spike-router",
                                "capacity": {"requests": {"eventThroughputMEPS": "128"}},
                            },
                        }
                    ]
                },
            ),
            workload_pod(namespace, "user-a", {"r": "router"}, node=worker),
            workload_pod(namespace, "user-b", {"r": "router"}, node=worker),
        ]
    )
    results = []
    for pod in ("user-a", "user-b"):
        wait_ready(namespace, pod)
        [result] = kube.claim_of(namespace, pod, "r")["status"]["allocation"]["devices"]["results"]
        results.append(result)
    # First fit: the first router has room for both 128-MEPS shares, so both land on it.
    assert results[0]["device"] == results[1]["device"], results
    share_ids = [r.get("shareID") for r in results]
    assert all(share_ids) and share_ids[0] != share_ids[1], share_ids
    for r in results:
        assert r["consumedCapacity"]["eventThroughputMEPS"] == "128"
    for pod, share_id in zip(("user-a", "user-b"), share_ids, strict=True):
        env = container_env(namespace, pod)
        assert snn_values(env, "SHARE_ID") == [share_id]
        assert snn_values(env, "SHARING") == ["shared"], "the DeviceClass config (FromClass) did not apply"
