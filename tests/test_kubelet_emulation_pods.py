"""Kubelet emulation, pod side: one NodePrepareResources per driver per pod, CDI IDs per container request,
pods marked Running, failures recorded and retried, NodeUnprepareResources when the last pod is gone.

Objects are created through the embedded API server over HTTPS with the official client; the emulation watches
the same store. The plugin is an in-process PluginServer whose Preparer is a fixed-result test double, so the
assertions pin the kubelet side of the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embedded_fixtures import api_client_for, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client
from plugin_support import Dev, FixedPreparer, Result, running_server, short_dir

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.embedded.kubelet import KubeletEmulator
from snn_dra.driver.plugin.health import DeviceHealthEntry, HealthStatus
from snn_dra.driver.plugin.server import PluginServer

DRIVER = "snn.dra.dev"
NODE = "node-a"


@pytest.fixture
def base() -> Iterator[Path]:
    with short_dir() as path:
        yield path


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:  # noqa: F811
    api = api_client_for(embedded_server)
    yield api
    api.close()


@pytest.fixture
def preparer() -> FixedPreparer:
    return FixedPreparer()


@pytest.fixture
def plugin(base: Path, preparer: FixedPreparer) -> Iterator[PluginServer]:
    with running_server(base, preparer) as server:
        yield server


@pytest.fixture
def kubelet(
    base: Path, embedded_server: EmbeddedApiServer, plugin: PluginServer  # noqa: F811
) -> Iterator[KubeletEmulator]:
    emu = KubeletEmulator(
        embedded_server.store, NODE, base / "plugins_registry", retry_initial_seconds=0.05, retry_max_seconds=0.2
    ).start()
    assert emu.wait_for(lambda k: DRIVER in k.registered_plugins())
    yield emu
    emu.stop()


def _pod(name: str, claims: dict[str, str], containers: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "resourceClaims": [{"name": k, "resourceClaimName": v} for k, v in claims.items()],
            "containers": [
                {"name": c, "image": "registry.example/snn:1", "resources": {"claims": refs}}
                for c, refs in containers.items()
            ],
        },
    }


def _create_pod(api: client.ApiClient, body: dict[str, Any]) -> str:
    created = client.CoreV1Api(api).create_namespaced_pod("default", body)
    return str(created.metadata.uid)


def _requests(names: list[str]) -> list[dict[str, Any]]:
    """One request per base name; ``npu/big`` becomes a firstAvailable request ``npu`` with subrequest ``big``."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        base, _, sub = name.partition("/")
        if sub:
            out.setdefault(base, {"name": base, "firstAvailable": []})["firstAvailable"].append(
                {"name": sub, "deviceClassName": "snn.dra.dev"}
            )
        else:
            out.setdefault(base, {"name": base, "exactly": {"deviceClassName": "snn.dra.dev"}})
    return list(out.values())


def _allocated_claim(api: client.ApiClient, name: str, results: list[tuple[str, str]], pod_uids: list[str],
                     pod_names: list[str]) -> str:  # fmt: skip
    res = client.ResourceV1Api(api)
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"devices": {"requests": _requests([r for r, _ in results])}},
    }
    created = json.loads(res.create_namespaced_resource_claim("default", body, _preload_content=False).data)
    created["status"] = {
        "allocation": {
            "devices": {
                "results": [
                    {"request": request, "driver": DRIVER, "pool": NODE, "device": device}
                    for request, device in results
                ]
            },
            "nodeSelector": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}
                ]
            },
        },
        "reservedFor": [
            {"resource": "pods", "name": n, "uid": u} for n, u in zip(pod_names, pod_uids, strict=True)
        ],
    }
    res.replace_namespaced_resource_claim_status(name, "default", created, _preload_content=False)
    return str(created["metadata"]["uid"])


def _phase(api: client.ApiClient, name: str) -> str:
    return str(client.CoreV1Api(api).read_namespaced_pod_status(name, "default").status.phase)


def _condition(api: client.ApiClient, name: str, ctype: str) -> Any:
    pod = client.CoreV1Api(api).read_namespaced_pod_status(name, "default")
    return next((c for c in pod.status.conditions or [] if c.type == ctype), None)


def _cdi(uid: str, dev: str) -> str:
    return f"snn.dra.dev/claim={uid}-{dev}"


def test_prepare_cdi_per_container_running_and_unprepare(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    pod_uid = _create_pod(
        api,
        _pod(
            "trainer",
            {"accel": "c1"},
            {
                "main": [{"name": "accel", "request": "npu"}],
                "sidecar": [{"name": "accel", "request": "router"}],
                "all": [{"name": "accel"}],
            },
        ),
    )
    uid = _allocated_claim(api, "c1", [("npu/big", "chip0"), ("router", "router0")], [pod_uid], ["trainer"])
    preparer.results[uid] = Result(
        devices=(
            Dev(("npu/big",), NODE, "chip0", (_cdi(uid, "chip0"),)),
            Dev(("router",), NODE, "router0", (_cdi(uid, "router0"),), share_id="s1"),
        )
    )
    assert kubelet.wait_for(lambda k: _phase(api, "trainer") == "Running")
    assert _condition(api, "trainer", "Ready").status == "True"
    assert preparer.calls == [("prepare", [uid])]
    assert kubelet.cdi_devices_for("default", "trainer", "main") == [_cdi(uid, "chip0")]
    assert kubelet.cdi_devices_for("default", "trainer", "sidecar") == [_cdi(uid, "router0")]
    assert kubelet.cdi_devices_for("default", "trainer", "all") == [_cdi(uid, "chip0"), _cdi(uid, "router0")]
    claim = kubelet.prepared_claims()[uid]
    assert claim.pods == {pod_uid}
    assert [d.share_id for d in claim.devices[DRIVER]] == [None, "s1"]  # v1 carries share_id

    client.CoreV1Api(api).delete_namespaced_pod("trainer", "default")
    assert kubelet.wait_for(lambda k: uid not in k.prepared_claims())
    assert preparer.calls == [("prepare", [uid]), ("unprepare", [uid])]


def test_failed_claim_is_recorded_retried_and_recovers(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    pod_uid = _create_pod(api, _pod("flaky", {"accel": "c2"}, {"main": [{"name": "accel"}]}))
    uid = _allocated_claim(api, "c2", [("npu", "chip1")], [pod_uid], ["flaky"])
    preparer.results[uid] = Result(error="chip1 is tainted unhealthy")
    assert kubelet.wait_for(lambda k: sum(1 for c in preparer.calls if c[0] == "prepare") >= 3)  # backoff retries
    cond = _condition(api, "flaky", "PodReadyToStartContainers")
    assert (cond.status, cond.reason) == ("False", "FailedPrepareDynamicResources")
    assert "chip1 is tainted unhealthy" in cond.message
    assert _phase(api, "flaky") == "Pending"
    events = client.CoreV1Api(api).list_namespaced_event("default").items
    failed = [e for e in events if e.reason == "FailedPrepareDynamicResources" and e.involved_object.name == "flaky"]
    assert len(failed) == 1  # retries with the same error do not pile up events
    assert failed[0].type == "Warning" and "chip1 is tainted unhealthy" in failed[0].message
    assert uid not in kubelet.prepared_claims()

    preparer.results[uid] = Result(devices=(Dev(("npu",), NODE, "chip1", (_cdi(uid, "chip1"),)),))
    assert kubelet.wait_for(lambda k: _phase(api, "flaky") == "Running")
    assert kubelet.cdi_devices_for("default", "flaky", "main") == [_cdi(uid, "chip1")]
    assert kubelet.pod_error("default", "flaky") == ""


def test_shared_claim_prepared_once_and_unprepared_after_last_pod(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    uids = [
        _create_pod(api, _pod(n, {"accel": "shared"}, {"main": [{"name": "accel"}]})) for n in ("p-one", "p-two")
    ]
    uid = _allocated_claim(api, "shared", [("npu", "chip2")], uids, ["p-one", "p-two"])
    preparer.results[uid] = Result(devices=(Dev(("npu",), NODE, "chip2", (_cdi(uid, "chip2"),)),))
    assert kubelet.wait_for(lambda k: _phase(api, "p-one") == "Running" and _phase(api, "p-two") == "Running")
    assert preparer.calls == [("prepare", [uid])]  # the second pod found it prepared already
    assert kubelet.prepared_claims()[uid].pods == set(uids)

    client.CoreV1Api(api).delete_namespaced_pod("p-one", "default")
    assert kubelet.wait_for(lambda k: k.prepared_claims()[uid].pods == {uids[1]})
    assert all(c[0] == "prepare" for c in preparer.calls)
    client.CoreV1Api(api).delete_namespaced_pod("p-two", "default")
    assert kubelet.wait_for(lambda k: uid not in k.prepared_claims())
    assert preparer.calls[-1] == ("unprepare", [uid])


def test_one_call_per_pod_with_all_its_claims_and_pods_on_other_nodes_ignored(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    other = _pod("elsewhere", {"a": "c-x"}, {"main": [{"name": "a"}]})
    other["spec"]["nodeName"] = "node-b"
    _create_pod(api, other)
    pod_uid = _create_pod(api, _pod("multi", {"a": "c-a", "b": "c-b"}, {"main": [{"name": "a"}, {"name": "b"}]}))
    ua = _allocated_claim(api, "c-a", [("npu", "chip3")], [pod_uid], ["multi"])
    ub = _allocated_claim(api, "c-b", [("npu", "chip4")], [pod_uid], ["multi"])
    for u, d in ((ua, "chip3"), (ub, "chip4")):
        preparer.results[u] = Result(devices=(Dev(("npu",), NODE, d, (_cdi(u, d),)),))
    assert kubelet.wait_for(lambda k: _phase(api, "multi") == "Running")
    assert [sorted(c[1]) for c in preparer.calls] == [sorted([ua, ub])]
    assert kubelet.cdi_devices_for("default", "multi", "main") == [_cdi(ua, "chip3"), _cdi(ub, "chip4")]
    assert _phase(api, "elsewhere") == "Pending"


def test_plugin_preferring_v1beta1_is_called_over_v1beta1(
    base: Path, api: client.ApiClient, embedded_server: EmbeddedApiServer  # noqa: F811
) -> None:
    prep = FixedPreparer()
    with running_server(base, prep, supported_versions=("v1beta1.DRAPlugin", "v1.DRAPlugin")):
        emu = KubeletEmulator(embedded_server.store, NODE, base / "plugins_registry", retry_initial_seconds=0.05,
                              retry_max_seconds=0.2).start()  # fmt: skip
        try:
            assert emu.wait_for(lambda k: DRIVER in k.registered_plugins())
            (ep,) = emu.registered_plugins()[DRIVER]
            assert (ep.dra_service, ep.health_service) == ("v1beta1.DRAPlugin", None)
            pod_uid = _create_pod(api, _pod("beta", {"a": "c-beta"}, {"main": [{"name": "a"}]}))
            uid = _allocated_claim(api, "c-beta", [("router", "router0")], [pod_uid], ["beta"])
            prep.results[uid] = Result(devices=(Dev(("router",), NODE, "router0", (_cdi(uid, "r"),), share_id="s9"),))
            assert emu.wait_for(lambda k: _phase(api, "beta") == "Running")
            (dev,) = emu.prepared_claims()[uid].devices[DRIVER]
            assert dev.share_id is None  # v1beta1 has no share_id on the wire
            assert dev.cdi_device_ids == (_cdi(uid, "r"),)
        finally:
            emu.stop()


def test_device_health_reaches_pod_status(
    base: Path, api: client.ApiClient, embedded_server: EmbeddedApiServer  # noqa: F811
) -> None:
    health = {"chip5": HealthStatus.HEALTHY}

    def provider() -> list[DeviceHealthEntry]:
        return [DeviceHealthEntry(NODE, d, h, 1_700_000_000, 60) for d, h in health.items()]

    prep = FixedPreparer()
    with running_server(base, prep, provider) as server:
        emu = KubeletEmulator(embedded_server.store, NODE, base / "plugins_registry", retry_initial_seconds=0.05,
                              retry_max_seconds=0.2).start()  # fmt: skip
        try:
            pod_uid = _create_pod(
                api,
                _pod("watched", {"accel": "c-h"}, {"main": [{"name": "accel", "request": "npu"}], "aux": []}),
            )
            uid = _allocated_claim(api, "c-h", [("npu", "chip5"), ("router", "router5")], [pod_uid], ["watched"])
            prep.results[uid] = Result(
                devices=(
                    Dev(("npu",), NODE, "chip5", (_cdi(uid, "chip5"),)),
                    Dev(("router",), NODE, "router5", ()),
                )
            )
            assert emu.wait_for(lambda k: _phase(api, "watched") == "Running")

            def allocated(container: str) -> list[dict[str, Any]]:
                pod = client.CoreV1Api(api).read_namespaced_pod_status("watched", "default", _preload_content=False)
                statuses = json.loads(pod.data)["status"]["containerStatuses"]
                status = next(s for s in statuses if s["name"] == container)
                return list(status.get("allocatedResourcesStatus", []))

            def healths() -> list[str]:
                return [r["health"] for a in allocated("main") for r in a["resources"]]

            assert emu.wait_for(lambda k: healths() == ["Healthy"])
            assert allocated("main") == [
                {"name": "claim:accel/npu", "resources": [{"resourceID": _cdi(uid, "chip5"), "health": "Healthy"}]}
            ]
            assert allocated("aux") == []
            health["chip5"] = HealthStatus.UNHEALTHY
            server.health.notify_changed()
            assert emu.wait_for(lambda k: healths() == ["Unhealthy"])
        finally:
            emu.stop()


def test_partial_failure_keeps_prepared_claims_and_retries_only_the_rest(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    pod_uid = _create_pod(api, _pod("half", {"a": "c-ok", "b": "c-bad"}, {"main": [{"name": "a"}, {"name": "b"}]}))
    ok = _allocated_claim(api, "c-ok", [("npu", "chip6")], [pod_uid], ["half"])
    bad = _allocated_claim(api, "c-bad", [("npu", "chip7")], [pod_uid], ["half"])
    preparer.results[ok] = Result(devices=(Dev(("npu",), NODE, "chip6", (_cdi(ok, "chip6"),)),))
    preparer.results[bad] = Result(error="chip7 busy")
    assert kubelet.wait_for(lambda k: len(preparer.calls) >= 3)
    assert all(kind == "prepare" for kind, _ in preparer.calls)  # the good claim is never unprepared meanwhile
    assert sorted(preparer.calls[0][1]) == sorted([ok, bad])
    assert all(uids == [bad] for _, uids in preparer.calls[1:])  # retries carry only the not-yet-prepared claim
    assert kubelet.prepared_claims()[ok].pods == {pod_uid}
    preparer.results[bad] = Result(devices=(Dev(("npu",), NODE, "chip7", (_cdi(bad, "chip7"),)),))
    assert kubelet.wait_for(lambda k: _phase(api, "half") == "Running")


def test_finished_pod_releases_its_claim(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    pod_uid = _create_pod(api, _pod("job", {"a": "c-job"}, {"main": [{"name": "a"}]}))
    uid = _allocated_claim(api, "c-job", [("npu", "chip8")], [pod_uid], ["job"])
    preparer.results[uid] = Result(devices=(Dev(("npu",), NODE, "chip8", (_cdi(uid, "chip8"),)),))
    assert kubelet.wait_for(lambda k: _phase(api, "job") == "Running")
    core = client.CoreV1Api(api)
    pod = json.loads(core.read_namespaced_pod_status("job", "default", _preload_content=False).data)
    pod["status"]["phase"] = "Succeeded"
    core.replace_namespaced_pod_status("job", "default", pod, _preload_content=False)
    assert kubelet.wait_for(lambda k: uid not in k.prepared_claims())
    assert preparer.calls[-1] == ("unprepare", [uid])
    final = json.loads(core.read_namespaced_pod_status("job", "default", _preload_content=False).data)
    assert final["status"]["phase"] == "Succeeded"
    assert final["status"]["containerStatuses"][0]["allocatedResourcesStatus"][0]["resources"] == [
        {"resourceID": _cdi(uid, "chip8"), "health": "Unknown"}
    ]  # written while running (no health stream here); not rewritten after the pod finished


def test_template_claim_waits_for_the_generated_claim_name(
    api: client.ApiClient, preparer: FixedPreparer, kubelet: KubeletEmulator
) -> None:
    body = _pod("templated", {}, {"main": [{"name": "accel"}]})
    body["spec"]["resourceClaims"] = [{"name": "accel", "resourceClaimTemplateName": "snn-template"}]
    pod_uid = _create_pod(api, body)
    assert kubelet.wait_for(lambda k: "to be generated" in k.pod_error("default", "templated"))
    uid = _allocated_claim(api, "templated-accel-x7k2p", [("npu", "chip9")], [pod_uid], ["templated"])
    preparer.results[uid] = Result(devices=(Dev(("npu",), NODE, "chip9", (_cdi(uid, "chip9"),)),))
    core = client.CoreV1Api(api)
    pod = json.loads(core.read_namespaced_pod_status("templated", "default", _preload_content=False).data)
    pod["status"]["resourceClaimStatuses"] = [{"name": "accel", "resourceClaimName": "templated-accel-x7k2p"}]
    core.replace_namespaced_pod_status("templated", "default", pod, _preload_content=False)
    assert kubelet.wait_for(lambda k: _phase(api, "templated") == "Running")
    assert kubelet.cdi_devices_for("default", "templated", "main") == [_cdi(uid, "chip9")]
