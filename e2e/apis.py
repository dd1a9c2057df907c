"""Both sides of the differential tests: the cluster under test and an embedded API server started in-process.

The embedded server gets the cluster's own Kubernetes minor version as its profile and the cluster's own DRA
feature gates, read from the API server's ``kubernetes_feature_enabled`` metric (not from a copy of the
cluster script's flags), so a difference between the two is a difference in behaviour, not in configuration.
Both are reached the same way: the official client's ApiClient over HTTPS, raw JSON bodies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from kubernetes import config
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from e2e import kube
from snn_dra.driver.embedded.profiles import SUPPORTED_PROFILES, resolve_profile
from snn_dra.driver.kubejson import KubeJSON


def cluster_profile() -> str:
    """The embedded profile of the cluster's Kubernetes minor version (e.g. ``1.36``)."""
    version = json.loads(kube.kubectl("version", "-o", "json"))["serverVersion"]
    profile = f"{version['major']}.{version['minor'].rstrip('+')}"
    if profile not in SUPPORTED_PROFILES:
        raise AssertionError(
            f"the cluster runs Kubernetes {version['gitVersion']}; the embedded server has no profile {profile} "
            f"(supported: {', '.join(SUPPORTED_PROFILES)})"
        )
    return profile


def apiserver_metrics() -> list[Any]:
    """The API server's own Prometheus metrics (``kubectl get --raw /metrics``), parsed."""
    return list(text_string_to_metric_families(kube.kubectl("get", "--raw", "/metrics")))


def cluster_feature_gates(profile: str) -> dict[str, bool]:
    """The cluster API server's effective value of every gate the embedded profile knows."""
    known = resolve_profile(profile).gates
    gates: dict[str, bool] = {}
    for family in apiserver_metrics():
        if family.name != "kubernetes_feature_enabled":
            continue
        for sample in family.samples:
            name = sample.labels.get("name", "")
            if name in known:
                gates[name] = sample.value == 1
    missing = sorted(set(known) - set(gates))
    assert not missing, f"the API server reports no kubernetes_feature_enabled sample for {missing}"
    return gates


def cluster_client() -> KubeJSON:
    """Raw-JSON client for the cluster under test, from the same kubeconfig and context kubectl uses."""
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=os.environ.get("KUBECONFIG") or None, context=kube.target().context
    )
    return KubeJSON(api)


@dataclass(frozen=True)
class Answer:
    """What an API server said to one request: the HTTP status, the object or Status it returned."""

    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return 200 <= self.status <= 299

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx"

    @property
    def fields(self) -> list[str]:
        causes = (self.body.get("details") or {}).get("causes") or []
        return sorted({str(c.get("field", "")) for c in causes if c.get("field")})

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


def send(api: KubeJSON, method: str, path: str, body: Any = None, **query: str) -> Answer:
    try:
        return Answer(200, api.request(method, path, query=query, body=body))
    except ApiException as exc:
        try:
            decoded = json.loads(exc.body) if exc.body else {}
        except ValueError:
            decoded = {"message": str(exc.body)}
        return Answer(int(exc.status or 0), decoded if isinstance(decoded, dict) else {"message": str(decoded)})
