"""The kubeconfig that points kubectl and the official client at the embedded API server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

CONTEXT = "snn-dra"


def kubeconfig_dict(server: str, ca_pem: bytes, token: str, name: str = CONTEXT) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, token: str, name: str = CONTEXT) -> Path:
    """Write with mode 0600 (it holds the bearer token), replacing any file there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(kubeconfig_dict(server, ca_pem, token, name), f, sort_keys=False)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
