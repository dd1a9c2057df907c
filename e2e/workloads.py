"""Workload objects and in-pod checks shared by the e2e tests."""

from __future__ import annotations

from typing import Any

from e2e import kube


def claim_template(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"spec": {"devices": spec}},
    }


def workload_pod(
    namespace: str,
    name: str,
    claims: dict[str, str],
    containers: dict[str, list[tuple[str, str | None]]] | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    """A pod that holds its claims and sleeps; ``claims`` maps pod claim name -> template name.

    ``containers`` maps container name -> [(pod claim, request or None)]; by default one container uses
    every claim. The driver image is the workload image because every node already has it.
    """
    image, pull_policy = kube.workload_image()
    if containers is None:
        containers = {"job": [(c, None) for c in claims]}
    spec: dict[str, Any] = {
        "resourceClaims": [{"name": c, "resourceClaimTemplateName": t} for c, t in claims.items()],
        "containers": [
            {
                "name": cname,
                "image": image,
                "imagePullPolicy": pull_policy,
                "command": ["sleep", "infinity"],
                "resources": {"claims": [{"name": c} if r is None else {"name": c, "request": r} for c, r in uses]},
            }
            for cname, uses in containers.items()
        ],
        "terminationGracePeriodSeconds": 1,
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def wait_ready(namespace: str, pod: str, timeout: float = 180) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        obj = kube.get_json("pod", "-n", namespace, pod)
        return obj if kube.pod_ready(obj) else None

    try:
        return kube.wait_until(f"pod {namespace}/{pod} to be Ready", ready, timeout=timeout)
    except AssertionError as exc:
        events = kube.kubectl(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={pod}", check=False
        )
        raise AssertionError(f"{exc}\nevents:\n{events}") from None


def container_env(namespace: str, pod: str, container: str | None = None) -> dict[str, str]:
    args = ["exec", "-n", namespace, pod]
    if container:
        args += ["-c", container]
    out = kube.kubectl(*args, "--", "env")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def snn_values(env: dict[str, str], suffix: str) -> list[str]:
    """Values of the driver's per-device variables ``SNN_DRA_<D>_<suffix>``, one per device of the container.

    The devices come from ``SNN_DRA_DEVICE_<D>``; matching on the exact name matters because backend access
    variables are copied per device too (``SNN_DRA_<D>_LOIHI_CHIP_ID`` must not count as ``CHIP_ID``).
    """
    devices = sorted(k.removeprefix("SNN_DRA_DEVICE_") for k in env if k.startswith("SNN_DRA_DEVICE_"))
    return [env[f"SNN_DRA_{d}_{suffix}"] for d in devices if f"SNN_DRA_{d}_{suffix}" in env]
