"""The repository's deploy/ manifests, found and applied for the embedded cluster (``cluster up``, ``demo``).

The DeviceClasses of ``deploy/base`` are what every claim names, so a cluster without them accepts no
workload; ``cluster up`` and ``demo`` install the same file a real install applies with kustomize.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from kubernetes import client

_REPO = Path(__file__).resolve().parents[2]
DEVICE_CLASSES = Path("base") / "deviceclasses.yaml"


def default_deploy_dir() -> Path:
    """``./deploy`` when run from a checkout, else the checkout this package was installed from (editable)."""
    for candidate in (Path.cwd() / "deploy", _REPO / "deploy"):
        if (candidate / "demo" / "kustomization.yaml").is_file():
            return candidate
    return Path.cwd() / "deploy"


def device_class_documents(path: Path) -> list[dict[str, Any]]:
    """The DeviceClass documents of a manifest file; anything else in it is refused with its kind."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    others = sorted({str(d.get("kind")) for d in docs if d.get("kind") != "DeviceClass"})
    if others:
        raise ValueError(f"{path} holds {', '.join(others)} as well; give a file of DeviceClasses only")
    return docs


def apply_device_classes(api: client.ApiClient, docs: list[dict[str, Any]]) -> list[str]:
    """Create each DeviceClass (one that exists already is left as it is); returns their names."""
    # Imported here: the kubernetes client is only needed once a cluster runs (see driver/cli/lazy.py).
    from kubernetes.client.exceptions import ApiException

    from snn_dra.driver.kubejson import KubeJSON, resource_path

    kube = KubeJSON(api)
    names = []
    for doc in docs:
        try:
            kube.create(resource_path("resource.k8s.io", "v1", "deviceclasses"), doc)
        except ApiException as e:
            if e.status != 409:
                raise
        names.append(str(doc["metadata"]["name"]))
    return names
