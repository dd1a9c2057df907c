"""Version profiles: gated fields dropped on write like a real API server with default gates, and overrides."""

from __future__ import annotations

import json
from typing import Any

import pytest
from embedded_api_objects import DRIVER, api_client_for, claim, resource_slice
from kubernetes import client
from kubernetes.client.rest import ApiException

from snn_dra.driver.embedded.profiles import ProfileError, resolve_profile
from snn_dra.driver.embedded.store import Store

ADVANCED_DEVICE: dict[str, Any] = {
    "name": "chip-0",
    "attributes": {f"{DRIVER}/family": {"string": "loihi2"}},
    "capacity": {f"{DRIVER}/cores": {"value": "128", "requestPolicy": {
        "default": "1", "validRange": {"min": "1", "max": "128", "step": "1"}}}},
    "allowMultipleAllocations": True,
    "consumesCounters": [{"counterSet": "chip-0-counters", "counters": {"cores": {"value": "128"}}}],
    "taints": [{"key": f"{DRIVER}/degraded", "value": "true", "effect": "NoSchedule"}],
}

pytest_plugins = ["embedded_fixtures"]


def _advanced_slice() -> dict[str, Any]:
    return resource_slice("node-a", name="adv", devices=[json.loads(json.dumps(ADVANCED_DEVICE))])


def _counter_slice() -> dict[str, Any]:
    body = resource_slice("node-a", name="counters", devices=[])
    del body["spec"]["devices"]
    body["spec"]["sharedCounters"] = [{"name": "chip-0-counters", "counters": {"cores": {"value": "128"}}}]
    return body


def _advanced_claim() -> dict[str, Any]:
    return claim("adv", capacity={"requests": {f"{DRIVER}/cores": "4"}},
                 tolerations=[{"key": f"{DRIVER}/degraded", "effect": "NoSchedule"}])


def _distinct_claim() -> dict[str, Any]:
    body = claim("distinct")
    body["spec"]["devices"]["constraints"] = [{"requests": ["npu"], "distinctAttribute": f"{DRIVER}/family"}]
    return body


def _raw(call: Any, *args: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(call(*args, _preload_content=False).data)
    return data


def test_profile_134_drops_gated_fields(embedded_server_factory: Any) -> None:
    srv = embedded_server_factory(profile="1.34")
    api = api_client_for(srv)
    try:
        res = client.ResourceV1Api(api)
        dev = _raw(res.create_resource_slice, _advanced_slice())["spec"]["devices"][0]
        assert set(dev) == {"name", "attributes", "capacity"}
        assert dev["capacity"][f"{DRIVER}/cores"] == {"value": "128"}
        counters = _raw(res.create_resource_slice, _counter_slice())
        assert "sharedCounters" not in counters["spec"]
        c = _raw(res.create_namespaced_resource_claim, "default", _advanced_claim())
        ex = c["spec"]["devices"]["requests"][0]["exactly"]
        assert "capacity" not in ex and "tolerations" not in ex
        # As on a 1.34 cluster: distinctAttribute is dropped, leaving a constraint that fails validation.
        with pytest.raises(ApiException) as e:
            res.create_namespaced_resource_claim("default", _distinct_claim())
        causes = json.loads(e.value.body)["details"]["causes"]
        assert e.value.status == 422 and causes[0]["field"] == "spec.devices.constraints[0].matchAttribute"
        resources = {r.name for r in client.ResourceV1Api(api).get_api_resources().resources}
        assert "devicetaintrules" not in resources and "resourceslices" in resources
        with pytest.raises(ApiException) as e:
            res.list_device_taint_rule()
        assert e.value.status == 404
        assert client.VersionApi(api).get_code().minor == "34"
    finally:
        api.close()


def test_profile_137_keeps_gated_fields(embedded_server_factory: Any) -> None:
    srv = embedded_server_factory(profile="1.37")
    api = api_client_for(srv)
    try:
        res = client.ResourceV1Api(api)
        dev = _raw(res.create_resource_slice, _advanced_slice())["spec"]["devices"][0]
        assert dev["allowMultipleAllocations"] is True and dev["taints"][0]["effect"] == "NoSchedule"
        assert dev["consumesCounters"][0]["counterSet"] == "chip-0-counters"
        assert dev["capacity"][f"{DRIVER}/cores"]["requestPolicy"]["default"] == "1"
        assert _raw(res.create_resource_slice, _counter_slice())["spec"]["sharedCounters"][0]["name"] == \
            "chip-0-counters"
        c = _raw(res.create_namespaced_resource_claim, "default", _advanced_claim())
        ex = c["spec"]["devices"]["requests"][0]["exactly"]
        assert ex["capacity"] == {"requests": {f"{DRIVER}/cores": "4"}}
        assert ex["tolerations"] == [{"key": f"{DRIVER}/degraded", "effect": "NoSchedule", "operator": "Equal"}]
        d = _raw(res.create_namespaced_resource_claim, "default", _distinct_claim())
        assert d["spec"]["devices"]["constraints"][0]["distinctAttribute"] == f"{DRIVER}/family"
        assert res.list_device_taint_rule().items == []
    finally:
        api.close()


def test_gate_override_enables_partitionable_devices_on_134() -> None:
    store = Store(profile="1.34", feature_gates={"DRAPartitionableDevices": True})
    body = _advanced_slice()  # 1.34 keeps counter sets in the slice of the devices that consume them
    body["spec"]["sharedCounters"] = _counter_slice()["spec"]["sharedCounters"]
    created = store.create("resourceslices", body)["spec"]
    dev = created["devices"][0]
    assert created["sharedCounters"][0]["name"] == "chip-0-counters"
    assert "consumesCounters" in dev and "taints" not in dev and "allowMultipleAllocations" not in dev


def test_fields_already_stored_survive_updates_after_gate_is_disabled() -> None:
    on = Store(profile="1.37")
    stored = on.create("resourceslices", _advanced_slice())
    off = Store(profile="1.37", feature_gates={"DRADeviceTaints": False, "DRAPartitionableDevices": False},
                namespaces=())
    off._objs["resourceslices"][("", "adv")] = stored  # as if the server were downgraded under existing data
    stored["metadata"]["labels"] = {"touched": "yes"}
    kept = off.update("resourceslices", stored)["spec"]["devices"][0]
    assert kept["taints"] and kept["consumesCounters"]


def test_unknown_profile_and_gate_are_clear_errors() -> None:
    with pytest.raises(ProfileError, match=r"use one of 1\.34, 1\.35, 1\.36, 1\.37"):
        resolve_profile("1.30")
    with pytest.raises(ProfileError, match=r"DRAOptionalNodeOperations.*does not exist in Kubernetes 1\.34"):
        resolve_profile("1.34", {"DRAOptionalNodeOperations": True})
    assert resolve_profile("1.36").enabled("DRADeviceTaints")
    assert not resolve_profile("1.36").enabled("DRADeviceTaintRules")
