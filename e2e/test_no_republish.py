"""Once the plugin has published a node config, it writes no ResourceSlice at all: 0 writes in 60 s.

The count comes from the API server's own record, never from the plugin's word: on the local cluster from the
API server's audit log (``$SNN_DRA_LOCAL_AUDIT_LOG``: create/update/patch/delete of resourceslices,
ResponseComplete) and from its ``apiserver_request_total`` metric; on kind from the metric alone. Every example
node config of ``deploy/node-configs/`` is tried: the test points the DaemonSet at a ConfigMap holding it (the
pods roll), waits until each node's pool is complete with the devices the project's model derives from it and
no older generation is left, then observes 60 s. The original config is restored at the end.

The 60 s window is the measurement itself, the only fixed wait of the suite.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e import apis, kube
from e2e.model import expected_types

WINDOW_S = 60.0
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
METRIC_WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}
NODE_CONFIGS = sorted((kube.REPO / "deploy/node-configs").glob("*.yaml"))
CONFIG_MAP_PREFIX = "snn-e2e-node-config-"


def _config_volume_index(ds: dict[str, Any]) -> int:
    for i, volume in enumerate(ds["spec"]["template"]["spec"]["volumes"]):
        if volume["name"] == kube.NODE_CONFIG_VOLUME:
            return i
    raise KeyError(kube.NODE_CONFIG_VOLUME)


def _point_daemonset_at(config_map: str) -> None:
    """Make the DaemonSet mount ``config_map`` as its node config; the pod template changes, so the pods roll."""
    ds = kube.daemonset()
    if kube.node_config_map(ds) == config_map:
        return
    index = _config_volume_index(ds)
    patch = [{"op": "replace", "path": f"/spec/template/spec/volumes/{index}/configMap/name", "value": config_map}]
    kube.kubectl(
        "-n", kube.DRIVER_NAMESPACE, "patch", "daemonset", kube.DAEMONSET, "--type=json", "-p", json.dumps(patch)
    )
    kube.wait_rollout(300)


def _settled(node_config: dict[str, Any], source: str) -> Callable[[], bool]:
    """True once every plugin node's pool is complete, holds the expected devices and no older generation."""

    def probe() -> bool:
        nodes = {p["spec"]["nodeName"] for p in kube.plugin_pods() if kube.pod_ready(p)}
        for node in nodes:
            slices = kube.driver_slices(node)
            current = kube.current_pool(slices)
            if current is None or len(current) != len(slices):
                return False
            published = Counter(kube.attribute(d, "type") for s in current for d in s["spec"].get("devices", []))
            if published != expected_types(node_config, node, source):
                return False
        return bool(nodes)

    return probe


def _wait_settled(node_config: dict[str, Any], source: str) -> None:
    kube.wait_until(f"every node's pool to be complete and current for {source}", _settled(node_config, source), 300)


@pytest.fixture(scope="module")
def original_config() -> Iterator[str]:
    """The ConfigMap the DaemonSet mounts now; pointed back to it, and the pools settled again, at the end."""
    original, text = kube.installed_node_config()
    yield original
    _point_daemonset_at(original)
    _wait_settled(yaml.safe_load(text), f"ConfigMap {original}")
    kube.kubectl(
        "-n",
        kube.DRIVER_NAMESPACE,
        "delete",
        "configmap",
        *(CONFIG_MAP_PREFIX + p.stem for p in NODE_CONFIGS),
        "--ignore-not-found",
        check=False,
    )


@dataclass
class Window:
    start: datetime
    end: datetime
    metric_before: float
    metric_after: float
    audit_offset: int


def _metric_writes() -> float:
    total = 0.0
    for family in apis.apiserver_metrics():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "apiserver_request_total"
                and labels.get("resource") == "resourceslices"
                and labels.get("group") == "resource.k8s.io"
                and labels.get("verb") in METRIC_WRITE_VERBS
            ):
                total += sample.value
    return total


def _audit_writes(path: Path, offset: int, window: Window) -> list[dict[str, Any]]:
    """ResourceSlice write events the API server logged for requests received inside the window."""
    with path.open("rb") as f:
        if f.seek(0, 2) < offset:  # rotated meanwhile: read the new file from the start (timestamps filter)
            offset = 0
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    writes = []
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (
            ref.get("resource") == "resourceslices"
            and event.get("verb") in WRITE_VERBS
            and event.get("stage") == "ResponseComplete"
        ):
            received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
            if window.start <= received <= window.end:
                writes.append(event)
    return writes


def _observe(audit_log: Path | None) -> Window:
    offset = audit_log.stat().st_size if audit_log else 0
    before = _metric_writes()
    start = datetime.now(UTC)
    time.sleep(WINDOW_S)  # the measurement window itself
    end = datetime.now(UTC)
    return Window(start, end, before, _metric_writes(), offset)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("config_file", NODE_CONFIGS, ids=[p.stem for p in NODE_CONFIGS])
def test_no_slice_writes_once_published(
    config_file: Path, original_config: str, target: kube.Target, report: Callable[[str], None]
) -> None:
    name = CONFIG_MAP_PREFIX + config_file.stem
    text = config_file.read_text()
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": kube.DRIVER_NAMESPACE},
        "data": {kube.NODE_CONFIG_KEY: text},
    }
    kube.apply(config_map)
    _point_daemonset_at(name)
    node_config = yaml.safe_load(text)
    _wait_settled(node_config, str(config_file.relative_to(kube.REPO)))
    slices = len(kube.driver_slices())
    devices = sum(len(s["spec"].get("devices", [])) for s in kube.driver_slices())

    audit_log = target.audit_log
    if target.kind == "local":
        assert audit_log is not None and audit_log.is_file(), (
            f"the local cluster's audit log is not readable (${kube.AUDIT_LOG_ENV}={audit_log}); "
            'run the suite after eval "$(hack/local-cluster.sh env)"'
        )
    window = _observe(audit_log)
    metric_writes = window.metric_after - window.metric_before
    audit = _audit_writes(audit_log, window.audit_offset, window) if audit_log else None

    sources = [f"apiserver_request_total {metric_writes:.0f}"]
    if audit is not None:
        sources.insert(0, f"audit log {len(audit)}")
    report(
        f"no-republish {config_file.stem:16} {slices:3} slices {devices:5} devices: ResourceSlice writes in "
        f"{WINDOW_S:.0f} s: " + ", ".join(sources)
    )
    if audit:
        seen = Counter((e["verb"], e["user"]["username"], (e.get("objectRef") or {}).get("name", "")) for e in audit)
        raise AssertionError(
            f"{len(audit)} ResourceSlice writes in {WINDOW_S:.0f} s after settling: {seen.most_common(10)}"
        )
    assert metric_writes == 0, f"apiserver_request_total counted {metric_writes:.0f} ResourceSlice writes in 60 s"
