"""Namespace deletion (Terminating, content removed, then the namespace) and graceful pod termination.

Through the official client over HTTPS; pods on a node whose kubelet emulation runs stay (deletionTimestamp,
deletionGracePeriodSeconds) until that kubelet stopped them and unprepared their claims, as on a cluster.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embedded_api_objects import api_client_for, claim
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from plugin_support import Dev, FixedPreparer, Result, running_server, short_dir

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.kubelet import KubeletEmulator

pytest_plugins = ["embedded_fixtures"]

DRIVER = "snn.dra.dev"
NODE = "node-a"


def _pod(name: str, namespace: str = "default", node: str = NODE, claim_name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "containers": [{"name": "main", "image": "registry.example/snn:1"}]}
    if claim_name:
        spec["resourceClaims"] = [{"name": "accel", "resourceClaimName": claim_name}]
        spec["containers"][0]["resources"] = {"claims": [{"name": "accel"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:
    a = api_client_for(embedded_server)
    yield a
    a.close()


@pytest.fixture
def preparer() -> FixedPreparer:
    return FixedPreparer()


@pytest.fixture
def kubelet(embedded_server: EmbeddedApiServer, preparer: FixedPreparer) -> Iterator[KubeletEmulator]:
    with short_dir() as base, running_server(base, preparer):
        emu = KubeletEmulator(embedded_server.store, NODE, Path(base) / "plugins_registry",
                              retry_initial_seconds=0.05, retry_max_seconds=0.2).start()
        assert emu.wait_for(lambda k: DRIVER in k.registered_plugins())
        yield emu
        emu.stop()


def _events(api: client.ApiClient, list_call: Any, *args: Any, until: str, **kwargs: Any) -> tuple[
        threading.Thread, threading.Event, list[tuple[str, dict[str, Any]]]]:
    """Watch in a thread until an event of type ``until``; (thread, watch-established event, events seen)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()
    rv = list_call(*args, **kwargs).metadata.resource_version

    def run() -> None:
        w = watch.Watch()
        ready.set()
        for ev in w.stream(list_call, *args, resource_version=rv, timeout_seconds=20, **kwargs):
            seen.append((ev["type"], ev["raw_object"]))
            if ev["type"] == until:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    ready.wait(5)
    return t, ready, seen


def test_pod_on_a_running_kubelet_terminates_gracefully(api: client.ApiClient, kubelet: KubeletEmulator,
                                                        preparer: FixedPreparer) -> None:
    core = client.CoreV1Api(api)
    pod = core.create_namespaced_pod("default", _pod("worker", claim_name="c1"))
    res = client.ResourceV1Api(api)
    created = res.create_namespaced_resource_claim("default", claim("c1"))
    uid = created.metadata.uid
    body = res.read_namespaced_resource_claim("c1", "default")
    body.status = {"allocation": {"devices": {"results": [
        {"request": "npu", "driver": DRIVER, "pool": NODE, "device": "chip0"}]}},
        "reservedFor": [{"resource": "pods", "name": "worker", "uid": pod.metadata.uid}]}
    res.replace_namespaced_resource_claim_status("c1", "default", body)
    preparer.results[uid] = Result(devices=(Dev(("npu",), NODE, "chip0", ()),))
    assert kubelet.wait_for(lambda k: core.read_namespaced_pod("worker", "default").status.phase == "Running")
    t, _, seen = _events(api, core.list_namespaced_pod, "default", until="DELETED",
                         field_selector="metadata.name=worker")
    calls_at_delete: list[list[Any]] = []

    deleted = core.delete_namespaced_pod("worker", "default")
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30  # the upstream default
    t.join(20)
    calls_at_delete.append(list(preparer.calls))
    assert [e[0] for e in seen] == ["MODIFIED", "DELETED"]
    assert seen[0][1]["metadata"]["deletionGracePeriodSeconds"] == 30
    assert ("unprepare", [uid]) in calls_at_delete[0]  # released before the pod went
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("worker", "default")
    assert exc.value.status == 404


def test_pods_without_a_kubelet_or_with_grace_zero_go_at_once(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("default", _pod("orphan", node="no-kubelet-here"))
    deleted = core.delete_namespaced_pod("orphan", "default")
    assert deleted.metadata.name == "orphan"
    with pytest.raises(ApiException):
        core.read_namespaced_pod("orphan", "default")


def test_grace_period_zero_removes_at_once(api: client.ApiClient, kubelet: KubeletEmulator) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("default", _pod("quick"))
    assert kubelet.wait_for(lambda k: core.read_namespaced_pod("quick", "default").status.phase == "Running")
    core.delete_namespaced_pod("quick", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("quick", "default")
    assert exc.value.status == 404


def test_namespace_terminates_then_goes_once_empty(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    res = client.ResourceV1Api(api)
    created = core.create_namespace({"metadata": {"name": "team"}})
    assert created.spec.finalizers == ["kubernetes"] and created.status.phase == "Active"
    held = claim("held", "team")
    held["metadata"]["finalizers"] = ["example.com/keep"]
    res.create_namespaced_resource_claim("team", held)
    res.create_namespaced_resource_claim("team", claim("plain", "team"))
    t, _, seen = _events(api, core.list_namespace, until="DELETED", field_selector="metadata.name=team")

    marked = json.loads(core.delete_namespace("team", _preload_content=False).data)
    assert marked["status"]["phase"] == "Terminating" and marked["metadata"]["deletionTimestamp"]
    assert core.read_namespace("team").status.phase == "Terminating"  # the claim's finalizer holds it
    deadline = time.monotonic() + 10  # the namespace controller deletes the content after a moment
    while len(res.list_namespaced_resource_claim("team").items) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    remaining = res.list_namespaced_resource_claim("team").items
    assert [c.metadata.name for c in remaining] == ["held"]
    assert remaining[0].metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as exc:
        res.create_namespaced_resource_claim("team", claim("late", "team"))
    assert exc.value.status == 403 and "because it is being terminated" in exc.value.body
    res.patch_namespaced_resource_claim("held", "team", {"metadata": {"finalizers": None}},
                                        _content_type="application/merge-patch+json")
    t.join(20)
    assert [e[0] for e in seen] == ["MODIFIED", "DELETED"]
    assert seen[0][1]["status"]["phase"] == "Terminating"
    assert seen[1][1]["spec"].get("finalizers") in (None, [])
    with pytest.raises(ApiException) as exc:
        core.read_namespace("team")
    assert exc.value.status == 404


def test_namespace_waits_for_its_pods_to_terminate(api: client.ApiClient, kubelet: KubeletEmulator) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "jobs"}})
    core.create_namespaced_pod("jobs", _pod("runner", namespace="jobs"))
    assert kubelet.wait_for(lambda k: core.read_namespaced_pod("runner", "jobs").status.phase == "Running")
    t, _, seen = _events(api, core.list_namespace, until="DELETED", field_selector="metadata.name=jobs")
    core.delete_namespace("jobs")
    t.join(20)
    assert [e[0] for e in seen] == ["MODIFIED", "DELETED"]
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("runner", "jobs")
    assert exc.value.status == 404
