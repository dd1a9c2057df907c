"""The embedded cluster with the real plugin process, driven over HTTPS with the official client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config

from snn_dra.driver.checkpoint import FILE_NAME
from snn_dra.driver.embedded.cluster import ClusterTimeoutError, EmbeddedCluster, wait_until
from snn_dra.driver.kubejson import KubeJSON, resource_path

REPO = Path(__file__).resolve().parent.parent
NODE = "snn-node-0"
AKIDA = REPO / "deploy/node-configs/akida-pcie.yaml"
KAPOHO = REPO / "deploy/node-configs/kapoho-point.yaml"
DEVICE_CLASSES = REPO / "deploy/base/deviceclasses.yaml"
NAMESPACE = "snn-test"

T = TypeVar("T")

_PLURALS = {
    "Namespace": ("", "v1", "namespaces", False),
    "Pod": ("", "v1", "pods", True),
    "DeviceClass": ("resource.k8s.io", "v1", "deviceclasses", False),
    "ResourceClaim": ("resource.k8s.io", "v1", "resourceclaims", True),
    "ResourceClaimTemplate": ("resource.k8s.io", "v1", "resourceclaimtemplates", True),
}


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll a condition (the cluster is asynchronous); fail the test naming ``what`` if it never holds."""
    try:
        return wait_until(predicate, what, timeout)
    except ClusterTimeoutError as exc:
        raise AssertionError(str(exc)) from None


class Kube:
    """Object-level helpers over the official client's ApiClient (raw JSON)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.json = KubeJSON(api)

    @staticmethod
    def path(kind: str, name: str | None = None, namespace: str | None = None) -> str:
        group, version, plural, namespaced = _PLURALS[kind]
        return resource_path(group, version, plural, name, namespace if namespaced else None)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        ns = obj.get("metadata", {}).get("namespace")
        return self.json.create(self.path(obj["kind"], namespace=ns), obj)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.json.get(self.path(kind, name, namespace))

    def list(self, kind: str, namespace: str | None = None, **query: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json.get(self.path(kind, namespace=namespace), **query).get("items") or []
        return items

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.json.delete(self.path(kind, name, namespace))

    def apply_file(self, path: Path) -> None:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                self.create(doc)

    def slices(self) -> list[dict[str, Any]]:
        return self.json.get(resource_path("resource.k8s.io", "v1", "resourceslices"))["items"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def kube_for(cluster: EmbeddedCluster) -> Iterator[Kube]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))  # type: ignore[no-untyped-call]
    try:
        yield Kube(api)
    finally:
        api.close()


def pool_published(kube: Kube) -> list[dict[str, Any]] | None:
    """The node's slices once the whole pool of the newest generation is there."""
    slices = [s for s in kube.slices() if s["spec"].get("nodeName") == NODE]
    if not slices:
        return None
    gen = max(s["spec"]["pool"]["generation"] for s in slices)
    current = [s for s in slices if s["spec"]["pool"]["generation"] == gen]
    return current if len(current) == current[0]["spec"]["pool"]["resourceSliceCount"] else None


@contextlib.contextmanager
def running_cluster(
    node_config: Path = AKIDA, env: Mapping[str, str] | None = None, plugin_args: tuple[str, ...] = ()
) -> Iterator[tuple[EmbeddedCluster, Kube]]:
    """A cluster with the plugin published on node snn-node-0, device classes and a test namespace.

    The cluster lives in a short temp dir of its own (socket paths must stay under 107 bytes) that
    ``EmbeddedCluster.stop`` removes.
    """
    with EmbeddedCluster(nodes=(NODE,)) as cluster, kube_for(cluster) as kube:
        cluster.start_plugin(NODE, node_config, *plugin_args, env=env)
        kube.apply_file(DEVICE_CLASSES)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        wait_for(lambda: pool_published(kube), "the plugin to publish its pool")
        yield cluster, kube


def template(name: str, requests: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"spec": {"devices": {"requests": requests, **spec}}},
    }


def request(name: str, device_class: str, count: int = 1, **extra: Any) -> dict[str, Any]:
    return {"name": name, "exactly": {"deviceClassName": device_class, "count": count, **extra}}


def pod(name: str, claims: Mapping[str, str]) -> dict[str, Any]:
    """A pod whose one container uses every claim (pod claim name -> template name)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "resourceClaims": [{"name": c, "resourceClaimTemplateName": t} for c, t in claims.items()],
            "containers": [
                {"name": "job", "image": "busybox:1.36", "resources": {"claims": [{"name": c} for c in claims]}}
            ],
        },
    }


def pod_running(kube: Kube, name: str) -> dict[str, Any] | None:
    obj = kube.get("Pod", name, NAMESPACE)
    return obj if obj.get("status", {}).get("phase") == "Running" else None


def claims_of(kube: Kube, pod_name: str) -> list[dict[str, Any]]:
    statuses = kube.get("Pod", pod_name, NAMESPACE).get("status", {}).get("resourceClaimStatuses") or []
    return [kube.get("ResourceClaim", s["resourceClaimName"], NAMESPACE) for s in statuses]


def checkpoint_claims(cluster: EmbeddedCluster) -> dict[str, Any]:
    """Checkpoint entries as plain JSON (state, devices) keyed by claim UID, read without side effects.

    ``CheckpointStore.load`` is for the plugin only: under its serialization lock it also clears stale temp
    files, which from another process would race the plugin's own writes.
    """
    path = cluster.node_dirs(NODE).plugin_dir / FILE_NAME
    try:
        claims: dict[str, Any] = json.loads(path.read_text())["claims"]
    except FileNotFoundError:
        return {}
    return claims


def cdi_specs(cluster: EmbeddedCluster) -> dict[str, dict[str, Any]]:
    """The node's CDI specs by file name, read while the plugin may be removing them.

    A spec the plugin unlinks between the directory listing and the read is gone, so it is left out (it
    is not an error): the specs are written atomically (temp file + rename), so any file that can be
    opened holds a complete spec.
    """
    d = cluster.node_dirs(NODE).cdi_dir
    specs: dict[str, dict[str, Any]] = {}
    for p in sorted(d.glob("*.json")) if d.exists() else ():
        try:
            specs[p.name] = json.loads(p.read_text())
        except FileNotFoundError:
            continue
    return specs
