"""Review fixes for upstream fidelity: gate overrides reach validation, finalizer merge, list attributes behind
their gate, request-policy and counter rules, tolerations, field selectors per version, the CEL base environment.

API-server behaviour is checked through the official client over HTTPS against the embedded server.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from embedded_api_objects import DRIVER, api_client_for, claim, device_class, resource_slice
from kubernetes import client
from kubernetes.client.rest import ApiException

from snn_dra.driver.cel import CelCompileError, compile_selector
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.kubejson import KubeJSON
from snn_dra.driver.validation import validate_object
from snn_dra.driver.validation.claims import validate_toleration
from snn_dra.driver.validation.errors import CauseType
from snn_dra.driver.validation.resourceslice import lint_slice, validate_resource_slice

pytest_plugins = ["embedded_fixtures"]
ServerFactory = Callable[..., EmbeddedApiServer]

STRATEGIC = "application/strategic-merge-patch+json"
PROTECTION = "resource.kubernetes.io/delete-protection"


def raw(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    resp = call(*args, _preload_content=False, **kwargs)
    data: dict[str, Any] = json.loads(resp.data)
    return data


def causes(exc: ApiException) -> list[dict[str, Any]]:
    body: dict[str, Any] = json.loads(exc.body)
    found: list[dict[str, Any]] = body.get("details", {}).get("causes", [])
    return found


def _tolerating_claim(name: str) -> dict[str, Any]:
    return claim(name, tolerations=[{"key": f"{DRIVER}/degraded", "operator": "Exists", "effect": "NoSchedule"}])


# ---- 1. feature-gate overrides reach validation ------------------------------------------------------------


def test_enabled_gate_override_keeps_tolerations_on_1_35(embedded_server_factory: ServerFactory) -> None:
    srv = embedded_server_factory(profile="1.35", feature_gates={"DRADeviceTaints": True})
    with api_client_for(srv) as api:
        res = client.ResourceV1Api(api)
        created = raw(res.create_namespaced_resource_claim, "default", _tolerating_claim("c1"))
    tol = created["spec"]["devices"]["requests"][0]["exactly"]["tolerations"]
    assert tol == [{"key": f"{DRIVER}/degraded", "operator": "Exists", "effect": "NoSchedule"}]


def test_disabled_gate_override_drops_tolerations_on_1_37(embedded_server_factory: ServerFactory) -> None:
    srv = embedded_server_factory(profile="1.37", feature_gates={"DRADeviceTaints": False})
    with api_client_for(srv) as api:
        res = client.ResourceV1Api(api)
        created = raw(res.create_namespaced_resource_claim, "default", _tolerating_claim("c1"))
    assert "tolerations" not in created["spec"]["devices"]["requests"][0]["exactly"]


def test_validate_object_gates_override_version_defaults() -> None:
    obj = _tolerating_claim("c1")
    assert any("DRADeviceTaints" in e.message for e in validate_object(obj, None, "1.35"))
    assert validate_object(obj, None, "1.35", gates={"DRADeviceTaints": True}) == []
    off = validate_object(obj, None, "1.37", gates={"DRADeviceTaints": False})
    assert [e.type for e in off] == [CauseType.FORBIDDEN] and "disabled" in off[0].message
    assert validate_object(obj, None, "1.37") == []  # the three-argument form still works


# ---- 2. strategic merge unions metadata.finalizers -----------------------------------------------------------


def test_strategic_merge_patch_adds_finalizers_and_keeps_delete_protection(
    embedded_server: EmbeddedApiServer,
) -> None:
    with api_client_for(embedded_server) as api:
        res = client.ResourceV1Api(api)
        c = _tolerating_claim("c1")
        c["metadata"]["finalizers"] = [PROTECTION]
        res.create_namespaced_resource_claim("default", c)
        patched = raw(res.patch_namespaced_resource_claim, "c1", "default",
                      {"metadata": {"finalizers": ["example.com/mine"]}}, _content_type=STRATEGIC)
        assert patched["metadata"]["finalizers"] == [PROTECTION, "example.com/mine"]
        again = raw(res.patch_namespaced_resource_claim, "c1", "default",
                    {"metadata": {"finalizers": ["example.com/mine"]}}, _content_type=STRATEGIC)
        assert again["metadata"]["finalizers"] == [PROTECTION, "example.com/mine"]  # no duplicates
        removed = raw(res.patch_namespaced_resource_claim, "c1", "default",
                      {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/mine"]}},
                      _content_type=STRATEGIC)
        assert removed["metadata"]["finalizers"] == [PROTECTION]
        merge = raw(res.patch_namespaced_resource_claim, "c1", "default",
                    {"metadata": {"finalizers": ["example.com/other"]}},
                    _content_type="application/merge-patch+json")
        assert merge["metadata"]["finalizers"] == ["example.com/other"]  # a JSON merge patch still replaces
        cleared = raw(res.patch_namespaced_resource_claim, "c1", "default",
                      {"metadata": {"finalizers": None}}, _content_type=STRATEGIC)
        assert "finalizers" not in cleared["metadata"]


# ---- 3. DRAListTypeAttributes: dropped while the gate is off ----------------------------------------------------


def _list_slice(name: str) -> dict[str, Any]:
    return resource_slice("node-a", name=name, devices=[
        {"name": "chip-0", "attributes": {f"{DRIVER}/family": {"string": "loihi2"},
                                          f"{DRIVER}/ports": {"ints": [1, 2]}}}])


@pytest.mark.parametrize("profile", ["1.36", "1.37"])
def test_list_attributes_are_dropped_while_the_gate_is_off(
    embedded_server_factory: ServerFactory, profile: str
) -> None:
    srv = embedded_server_factory(profile=profile)
    with api_client_for(srv) as api:
        res = client.ResourceV1Api(api)
        with pytest.raises(ApiException) as e:
            res.create_resource_slice(_list_slice("s1"))
    assert e.value.status == 422
    assert [c["field"] for c in causes(e.value)] == [f"spec.devices[0].attributes[{DRIVER}/ports]"]


def test_list_attributes_are_kept_with_the_gate_on(embedded_server_factory: ServerFactory) -> None:
    srv = embedded_server_factory(profile="1.37", feature_gates={"DRAListTypeAttributes": True})
    with api_client_for(srv) as api:
        res = client.ResourceV1Api(api)
        created = raw(res.create_resource_slice, _list_slice("s1"))
    assert created["spec"]["devices"][0]["attributes"][f"{DRIVER}/ports"] == {"ints": [1, 2]}


def test_list_attributes_need_the_gate_in_offline_validation() -> None:
    s = _list_slice("s1")
    errs = validate_resource_slice(s, None, "1.37")
    assert [(e.field, e.type) for e in errs] == [(f"spec.devices[0].attributes[{DRIVER}/ports].ints",
                                                  CauseType.FORBIDDEN)]
    assert validate_object(s, None, "1.37", gates={"DRAListTypeAttributes": True}) == []
    assert validate_resource_slice(s, s, "1.37") == []  # the stored slice already has them


def test_list_attributes_count_for_the_64_device_limit_only_with_the_gate() -> None:
    s = _list_slice("s1")
    s["spec"]["devices"] = [
        {**copy.deepcopy(s["spec"]["devices"][0]), "name": f"chip-{i}"} for i in range(65)
    ]
    errs = validate_object(s, None, "1.37", gates={"DRAListTypeAttributes": True})
    assert [(e.field, e.type) for e in errs] == [("spec.devices", CauseType.TOO_MANY)]


# ---- 4./5. request policy and counter consumption -------------------------------------------------------------


def _shared(policy: dict[str, Any], value: str = "8") -> dict[str, Any]:
    return resource_slice("node-a", name="s1", devices=[
        {"name": "router", "allowMultipleAllocations": True,
         "capacity": {f"{DRIVER}/bandwidth": {"value": value, "requestPolicy": policy}}}])


POLICY = f"spec.devices[0].capacity[{DRIVER}/bandwidth].requestPolicy"


@pytest.mark.parametrize("policy", [{"validValues": ["1", "2"]}, {"validRange": {"min": "1"}}])
def test_request_policy_needs_a_default(embedded_server: EmbeddedApiServer, policy: dict[str, Any]) -> None:
    with api_client_for(embedded_server) as api, pytest.raises(ApiException) as e:
        client.ResourceV1Api(api).create_resource_slice(_shared(policy))
    assert e.value.status == 422
    assert [(c["field"], c["reason"]) for c in causes(e.value)] == [(f"{POLICY}.default", "FieldValueRequired")]


def test_request_policy_min_plus_step_must_fit_the_capacity(embedded_server: EmbeddedApiServer) -> None:
    bad = _shared({"default": "6", "validRange": {"min": "6", "step": "4"}})  # 6 + 4 > 8, although 4 <= 8
    with api_client_for(embedded_server) as api:
        res = client.ResourceV1Api(api)
        with pytest.raises(ApiException) as e:
            res.create_resource_slice(bad)
        res.create_resource_slice(_shared({"default": "4", "validRange": {"min": "4", "step": "4"}}))
    assert [c["field"] for c in causes(e.value)] == [f"{POLICY}.validRange.step"]
    assert "10" in causes(e.value)[0]["message"]


def test_duplicate_counter_set_in_one_device_is_a_duplicate(embedded_server: EmbeddedApiServer) -> None:
    s = resource_slice("node-a", name="s1", devices=[
        {"name": "core-0", "consumesCounters": [
            {"counterSet": "chip-0", "counters": {"cores": {"value": "1"}}},
            {"counterSet": "chip-0", "counters": {"memory": {"value": "1"}}}]}])
    with api_client_for(embedded_server) as api, pytest.raises(ApiException) as e:
        client.ResourceV1Api(api).create_resource_slice(s)
    assert [(c["field"], c["reason"]) for c in causes(e.value)] == [
        ("spec.devices[0].consumesCounters[1]", "FieldValueDuplicate")
    ]


# ---- 6. tolerations --------------------------------------------------------------------------------------------


def test_toleration_with_empty_key_and_equal_is_accepted(embedded_server: EmbeddedApiServer) -> None:
    tol = {"operator": "Equal", "value": "maintenance", "effect": "NoSchedule", "tolerationSeconds": 5}
    with api_client_for(embedded_server) as api:
        res = client.ResourceV1Api(api)
        created = raw(res.create_namespaced_resource_claim, "default", claim("c1", tolerations=[tol]))
    assert created["spec"]["devices"]["requests"][0]["exactly"]["tolerations"] == [tol]


def test_toleration_rules_that_stay() -> None:
    assert [e.field for e in validate_toleration({"operator": "Exists", "value": "x"}, "t")] == ["t.value"]
    assert [e.field for e in validate_toleration({"operator": "Maybe"}, "t")] == ["t.operator"]
    assert [e.field for e in validate_toleration({"key": "a b", "operator": "Exists"}, "t")] == ["t.key"]


# ---- 7. unqualified/qualified name collisions are a lint, not an API error -------------------------------------


def test_attribute_published_with_and_without_domain_is_accepted_but_linted(
    embedded_server: EmbeddedApiServer,
) -> None:
    s = resource_slice("node-a", name="s1", devices=[
        {"name": "chip-0", "attributes": {"cores": {"int": 4}, f"{DRIVER}/cores": {"int": 4}},
         "capacity": {"neurons": {"value": "1"}, f"{DRIVER}/neurons": {"value": "1"}}}])
    with api_client_for(embedded_server) as api:
        client.ResourceV1Api(api).create_resource_slice(s)
    assert sorted((e.field, e.type) for e in lint_slice(s)) == [
        (f"spec.devices[0].attributes[{DRIVER}/cores]", CauseType.DUPLICATE),
        (f"spec.devices[0].capacity[{DRIVER}/neurons]", CauseType.DUPLICATE),
    ]


# ---- 8. spec.pool.name field selector from 1.37 ------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "supported"), [("1.34", False), ("1.36", False), ("1.37", True)])
def test_pool_name_field_selector_needs_1_37(
    embedded_server_factory: ServerFactory, profile: str, supported: bool
) -> None:
    srv = embedded_server_factory(profile=profile)
    with api_client_for(srv) as api:
        res = client.ResourceV1Api(api)
        res.create_resource_slice(resource_slice("node-a", name="s1"))
        if supported:
            items = res.list_resource_slice(field_selector="spec.pool.name=node-a").items
            assert [s.metadata.name for s in items] == ["s1"]
        else:
            with pytest.raises(ApiException) as e:
                res.list_resource_slice(field_selector="spec.pool.name=node-a")
            assert e.value.status == 400 and "field label not supported: spec.pool.name" in e.value.body
        assert [s.metadata.name for s in res.list_resource_slice(field_selector="spec.nodeName=node-a").items] == [
            "s1"
        ]


# ---- 9. CEL environment = the Kubernetes base environment ------------------------------------------------------


@pytest.mark.parametrize("expression", ["math.greatest(1, 2) == 2", 'base64.encode(b"a") == "YQ=="'])
def test_cel_rejects_functions_outside_the_kubernetes_environment(expression: str) -> None:
    with pytest.raises(CelCompileError):
        compile_selector(expression)


def test_device_class_with_math_selector_is_rejected(embedded_server: EmbeddedApiServer) -> None:
    cls = device_class("mathy")
    cls["spec"]["selectors"] = [{"cel": {"expression": "math.greatest(1, 2) == 2"}}]
    with api_client_for(embedded_server) as api, pytest.raises(ApiException) as e:
        client.ResourceV1Api(api).create_device_class(cls)
    assert e.value.status == 422
    assert [c["field"] for c in causes(e.value)] == ["spec.selectors[0].cel.expression"]


def test_watch_on_pool_name_before_1_37_is_a_plain_400(embedded_server_factory: Any) -> None:
    """The watch path rejects the 1.37-only field label up front, like list does, instead of streaming an error."""
    server = embedded_server_factory(profile="1.36")
    api = api_client_for(server)
    try:
        with pytest.raises(ApiException) as err:
            KubeJSON(api).get(
                "/apis/resource.k8s.io/v1/resourceslices", watch="true", fieldSelector="spec.pool.name=x"
            )
        assert err.value.status == 400
    finally:
        api.close()
