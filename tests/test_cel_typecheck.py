"""Selectors are type-checked at admission against upstream's typed ``device``, with the API server's wording.

Upstream declares ``device.driver`` a string, ``device.attributes`` a ``map(string, map(string, dyn))`` and
``device.capacity`` a ``map(string, map(string, kubernetes.Quantity))``; the checker's issues come back as
``compilation failed: ERROR: <input>:L:C: ...`` and a non-bool result as
``must evaluate to bool or the unknown type, not <type>``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from snn_dra.driver.cel import CelCompileError, compile_selector, device_view

pytest_plugins = ["embedded_fixtures"]

D = "snn.dra.dev"

REJECTED = [
    # (expression, reason, message fragment)
    ("device.driver", "result_type", "must evaluate to bool or the unknown type, not string"),
    ('device.capacity["snn.dra.dev"].memory', "result_type", "not kubernetes.Quantity"),
    ("device.attributes", "result_type", "not map(string, map(string, dyn))"),
    ('quantity("1")', "result_type", "not kubernetes.Quantity"),
    ('"x".size()', "result_type", "not int"),
    (
        "device.attributes[1]",
        "invalid",
        "ERROR: <input>:1:18: found no matching overload for '_[_]' applied to '(map(string, map(string, dyn)), int)'",
    ),
    (
        'device.attributes["snn.dra.dev"][true] == 1',
        "invalid",
        "found no matching overload for '_[_]' applied to '(map(string, dyn), bool)'",
    ),
    (
        'device.capacity["snn.dra.dev"].memory > 5',
        "invalid",
        "found no matching overload for '_>_' applied to '(kubernetes.Quantity, int)'",
    ),
    (
        'quantity("1Gi") == 1073741824',
        "invalid",
        "found no matching overload for '_==_' applied to '(kubernetes.Quantity, int)'",
    ),
    (
        'device.capacity["snn.dra.dev"].memory.compareTo(5) > 0',
        "invalid",
        "found no matching overload for 'compareTo' applied to '(kubernetes.Quantity, int)'",
    ),
    ("device.driver == 1", "invalid", "found no matching overload for '_==_' applied to '(string, int)'"),
    ('device.allowMultipleAllocations == "yes"', "invalid", "applied to '(bool, string)'"),
    ('device.attributes["snn.dra.dev"].cores ==', "invalid", "ERROR: <input>:1:42: Syntax error"),
    ("math.greatest(1, 2) == 2", "invalid", "undeclared reference"),
]

ACCEPTED = [
    # expressions upstream accepts, including dynamic attribute values and unknown domains
    'device.attributes["snn.dra.dev"].cores >= 4',
    'device.attributes["other.example.com"].anything == "x"',
    'device.attributes.exists(d, d.endsWith(".dev"))',
    'device.capacity["snn.dra.dev"].memory.compareTo(quantity("1Gi")) >= 0',
    'device.capacity["snn.dra.dev"].memory.isGreaterThan(quantity("1"))',
    'device.attributes["snn.dra.dev"].firmware.isGreaterThan(semver("1.0.0"))',
    'has(device.attributes["snn.dra.dev"].cores)',
    "has(device.driver)",
    'device.attributes["snn.dra.dev"].?cores.orValue(0) > 1',
    'cel.bind(a, device.attributes["snn.dra.dev"], a.cores > 1)',
    'device.attributes["snn.dra.dev"].type',  # dyn: a bool attribute is a valid result
    "device.allowMultipleAllocations",
]


@pytest.mark.parametrize(("expression", "reason", "fragment"), REJECTED)
def test_type_errors_are_compile_errors(expression: str, reason: str, fragment: str) -> None:
    with pytest.raises(CelCompileError) as info:
        compile_selector(expression)
    assert info.value.reason == reason
    assert fragment in info.value.message


@pytest.mark.parametrize("expression", ACCEPTED)
def test_upstream_valid_selectors_compile(expression: str) -> None:
    assert compile_selector(expression).expression == expression


def test_unknown_domain_reads_as_empty_map_at_runtime() -> None:
    dev = device_view(D, {"name": "c0", "attributes": {"cores": {"int": 8}}})
    assert compile_selector('!has(device.attributes["other.example.com"].cores)').matches(dev)
    assert compile_selector('device.attributes["other.example.com"].size() == 0').matches(dev)


# ---- at admission, through the official client ------------------------------------------------------------

BAD = "device.attributes[1]"
BAD_MESSAGE = "found no matching overload for '_[_]' applied to '(map(string, map(string, dyn)), int)'"


def _causes(exc: ApiException) -> list[dict[str, Any]]:
    assert exc.status == 422
    body = json.loads(exc.body)
    assert body["reason"] == "Invalid"
    causes: list[dict[str, Any]] = body["details"]["causes"]
    return causes


def _request(expression: str) -> dict[str, Any]:
    return {"name": "r", "exactly": {"deviceClassName": "snn-core", "selectors": [{"cel": {"expression": expression}}]}}


def test_device_class_with_a_mistyped_selector_is_rejected(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "bad"},
        "spec": {
            "selectors": [{"cel": {"expression": 'device.driver == "snn.dra.dev"'}}, {"cel": {"expression": BAD}}]
        },
    }
    with pytest.raises(ApiException) as e:
        res.create_device_class(body)
    causes = _causes(e.value)
    assert [c["field"] for c in causes] == ["spec.selectors[1].cel.expression"]
    assert causes[0]["reason"] == "FieldValueInvalid"
    assert causes[0]["message"].startswith(
        f"Invalid value: {json.dumps(BAD)}: compilation failed: ERROR: <input>:1:18: "
    )
    assert BAD_MESSAGE in causes[0]["message"]
    with pytest.raises(ApiException):
        res.read_device_class("bad")  # nothing was stored


def test_claim_with_a_non_bool_selector_is_rejected(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "c"},
        "spec": {"devices": {"requests": [_request("device.driver")]}},
    }
    with pytest.raises(ApiException) as e:
        res.create_namespaced_resource_claim("default", body)
    causes = _causes(e.value)
    assert [c["field"] for c in causes] == ["spec.devices.requests[0].exactly.selectors[0].cel.expression"]
    assert "must evaluate to bool or the unknown type, not string" in causes[0]["message"]


def test_claim_template_comparing_a_quantity_with_an_int_is_rejected(embedded_api_client: client.ApiClient) -> None:
    res = client.ResourceV1Api(embedded_api_client)
    expression = 'device.capacity["snn.dra.dev"].memory > 5'
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "t"},
        "spec": {"spec": {"devices": {"requests": [_request(expression)]}}},
    }
    with pytest.raises(ApiException) as e:
        res.create_namespaced_resource_claim_template("default", body)
    causes = _causes(e.value)
    assert [c["field"] for c in causes] == ["spec.spec.devices.requests[0].exactly.selectors[0].cel.expression"]
    assert "found no matching overload for '_>_' applied to '(kubernetes.Quantity, int)'" in causes[0]["message"]
    # the same template with a well-typed comparison is stored
    good = 'device.capacity["snn.dra.dev"].memory.compareTo(quantity("5")) > 0'
    body["spec"]["spec"]["devices"]["requests"] = [_request(good)]
    created = res.create_namespaced_resource_claim_template("default", body)
    assert created.spec.spec.devices.requests[0].exactly.selectors[0].cel.expression == good
