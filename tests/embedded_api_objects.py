"""Small object builders shared by the embedded API server tests (JSON, camelCase, valid upstream)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubernetes import client, config

if TYPE_CHECKING:
    from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

DRIVER = "snn.dra.dev"


def api_client_for(server: EmbeddedApiServer) -> client.ApiClient:
    """An official-client ApiClient from the server's kubeconfig (HTTPS, CA data, bearer token)."""
    return config.new_client_from_config(config_file=str(server.kubeconfig_path))


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def resource_slice(node_name: str, *, name: str | None = None, owner_uid: str | None = None,
                   devices: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
                   pool: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name} if name else {"generateName": f"{node_name}-{DRIVER}-"}
    if labels:
        meta["labels"] = labels
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": owner_uid,
                                    "controller": True}]
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": meta,
            "spec": {"driver": DRIVER, "nodeName": node_name,
                     "pool": {"name": pool or node_name, "generation": 1, "resourceSliceCount": 1},
                     "devices": devices if devices is not None else [
                         {"name": "chip-0", "attributes": {f"{DRIVER}/family": {"string": "loihi2"}},
                          "capacity": {f"{DRIVER}/cores": {"value": "128"}}}]}}


def claim(name: str, namespace: str = "default", **request: Any) -> dict[str, Any]:
    exactly = {"deviceClassName": "snn.dra.dev", **request}
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"devices": {"requests": [{"name": "npu", "exactly": exactly}]}}}


def device_class(name: str = "snn.dra.dev") -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": name},
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]}}
