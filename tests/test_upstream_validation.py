"""Rows of upstream's resource.k8s.io validation tables, sent through the official client to the embedded server.

Each row is a case from Kubernetes' ``pkg/apis/resource/validation`` tests (facts carried over, written as our
own rows): the object is created with ``kubernetes.client`` over HTTPS and the server must refuse it with 422
and the same field path, or accept it. The server is shared by the module; every row uses fresh object names.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embedded_api_objects import api_client_for
from kubernetes import client
from kubernetes.client.rest import ApiException

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

DRIVER = "snn.dra.dev"
_names = itertools.count()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    srv = EmbeddedApiServer(state_dir=Path(tmp_path_factory.mktemp("upstream-validation")), profile="1.37").start()
    api_client = api_client_for(srv)
    try:
        yield api_client
    finally:
        api_client.close()
        srv.stop()


@pytest.fixture(scope="module")
def api_fractional(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    """A 1.37 server with DRAFractionalCapacityRange on (as with a 1.37 compatibility version)."""
    srv = EmbeddedApiServer(
        state_dir=Path(tmp_path_factory.mktemp("upstream-fractional")),
        profile="1.37",
        feature_gates={"DRAFractionalCapacityRange": True},
    ).start()
    api_client = api_client_for(srv)
    try:
        yield api_client
    finally:
        api_client.close()
        srv.stop()


def _slice(**spec: Any) -> dict[str, Any]:
    name = f"s{next(_names)}"
    body: dict[str, Any] = {
        "driver": DRIVER,
        "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
        "devices": [{"name": "d0"}],
    }
    body.update(spec)
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name}, "spec": body}


def _create_slice(api: client.ApiClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    """[] when the server stored the slice, else the 422's causes."""
    res = client.ResourceV1Api(api)
    try:
        res.create_resource_slice(body)
    except ApiException as e:
        assert e.status == 422, e.body
        causes: list[dict[str, Any]] = json.loads(e.body)["details"]["causes"]
        return causes
    res.delete_resource_slice(body["metadata"]["name"])
    return []


def _expr(key: str = "example.com/rack", operator: str = "In", values: list[str] | None = None) -> dict[str, Any]:
    req: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        req["values"] = values
    return req


def _selector(*exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(exprs)}
    if fields:
        term["matchFields"] = fields
    return {"nodeSelectorTerms": [term]}


NS = "spec.nodeSelector.nodeSelectorTerms[0]"

# (id, nodeSelector, expected error fields; [] = accepted)
NODE_SELECTOR_ROWS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("valid-in", _selector(_expr(values=["r1", "r-2.b_c"])), []),
    ("valid-exists", _selector(_expr(operator="Exists")), []),
    ("valid-gt", _selector(_expr(operator="Gt", values=["5"])), []),
    ("valid-field", _selector(fields=[_expr("metadata.name", "In", ["node-a"])]), []),
    ("value-not-a-label-value", _selector(_expr(values=["has space"])), [f"{NS}.matchExpressions[0].values[0]"]),
    ("value-slash", _selector(_expr(values=["ok", "a/b"])), [f"{NS}.matchExpressions[0].values[1]"]),
    ("value-too-long", _selector(_expr(values=["a" * 64])), [f"{NS}.matchExpressions[0].values[0]"]),
    ("value-leading-dash", _selector(_expr(values=["-abc"])), [f"{NS}.matchExpressions[0].values[0]"]),
    ("in-without-values", _selector(_expr(values=[])), [f"{NS}.matchExpressions[0].values"]),
    ("exists-with-values", _selector(_expr(operator="Exists", values=["x"])), [f"{NS}.matchExpressions[0].values"]),
    ("gt-two-values", _selector(_expr(operator="Gt", values=["1", "2"])), [f"{NS}.matchExpressions[0].values"]),
    ("bad-operator", _selector(_expr(operator="Like", values=["x"])), [f"{NS}.matchExpressions[0].operator"]),
    ("bad-key", _selector(_expr(key="bad key", values=["x"])), [f"{NS}.matchExpressions[0].key"]),
    ("field-bad-key", _selector(fields=[_expr("metadata.uid", "In", ["x"])]), [f"{NS}.matchFields[0].key"]),
    (
        "field-two-values",
        _selector(fields=[_expr("metadata.name", "In", ["a", "b"])]),
        [f"{NS}.matchFields[0].values"],
    ),
    (
        "field-bad-node-name",
        _selector(fields=[_expr("metadata.name", "In", ["A_b"])]),
        [f"{NS}.matchFields[0].values[0]"],
    ),
    ("no-terms", {"nodeSelectorTerms": []}, ["spec.nodeSelector.nodeSelectorTerms"]),
]


@pytest.mark.parametrize(
    ("selector", "fields"), [r[1:] for r in NODE_SELECTOR_ROWS], ids=[r[0] for r in NODE_SELECTOR_ROWS]
)
def test_slice_node_selector(api: client.ApiClient, selector: dict[str, Any], fields: list[str]) -> None:
    causes = _create_slice(api, _slice(nodeSelector=selector))
    assert sorted({c["field"] for c in causes}) == sorted(set(fields)), causes
    for c in causes:
        if c["field"].endswith("]") and ".values[" in c["field"]:
            assert c["reason"] == "FieldValueInvalid"


def test_slice_node_selector_two_terms_is_refused(api: client.ApiClient) -> None:
    sel = _selector(_expr(values=["a"]))
    sel["nodeSelectorTerms"].append(copy.deepcopy(sel["nodeSelectorTerms"][0]))
    causes = _create_slice(api, _slice(nodeSelector=sel))
    assert [c["field"] for c in causes] == ["spec.nodeSelector.nodeSelectorTerms"]
    assert "exactly one node selector term" in causes[0]["message"]


def test_device_node_selector_may_have_several_terms_but_valid_values(api: client.ApiClient) -> None:
    good = _selector(_expr(values=["a"]))
    good["nodeSelectorTerms"].append({"matchExpressions": [_expr(values=["b"])]})
    ok = _slice(perDeviceNodeSelection=True, devices=[{"name": "d0", "nodeSelector": good}])
    assert _create_slice(api, ok) == []
    bad = copy.deepcopy(good)
    bad["nodeSelectorTerms"][1]["matchExpressions"][0]["values"] = ["not valid!"]
    causes = _create_slice(api, _slice(perDeviceNodeSelection=True, devices=[{"name": "d0", "nodeSelector": bad}]))
    assert [c["field"] for c in causes] == [
        "spec.devices[0].nodeSelector.nodeSelectorTerms[1].matchExpressions[0].values[0]"
    ]
    assert "label value" in causes[0]["message"]


def _claim(name: str, namespace: str = "default", **request: Any) -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": "snn-core", **request}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"devices": {"requests": [{"name": "r", "exactly": exactly}]}},
    }


def _allocation(node_selector: dict[str, Any]) -> dict[str, Any]:
    result = {"request": "r", "driver": DRIVER, "pool": "p", "device": "d0"}
    return {"devices": {"results": [result]}, "nodeSelector": node_selector}


def test_allocation_node_selector_values_must_be_label_values(api: client.ApiClient) -> None:
    res = client.ResourceV1Api(api)
    name = f"c{next(_names)}"
    res.create_namespaced_resource_claim("default", _claim(name))
    try:
        claim = res.read_namespaced_resource_claim(name, "default")
        body = api.sanitize_for_serialization(claim)
        body["status"] = {"allocation": _allocation(_selector(fields=[_expr("metadata.name", "In", ["node a"])]))}
        with pytest.raises(ApiException) as e:
            res.replace_namespaced_resource_claim_status(name, "default", body)
        assert e.value.status == 422
        fields = [c["field"] for c in json.loads(e.value.body)["details"]["causes"]]
        assert fields == ["status.allocation.nodeSelector.nodeSelectorTerms[0].matchFields[0].values[0]"]
        body["status"] = {"allocation": _allocation(_selector(fields=[_expr("metadata.name", "In", ["node-a"])]))}
        stored = api.sanitize_for_serialization(res.replace_namespaced_resource_claim_status(name, "default", body))
        assert stored["status"]["allocation"]["nodeSelector"]["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [
            "node-a"
        ]
    finally:
        res.delete_namespaced_resource_claim(name, "default")


# ---- consumable capacity: requestPolicy ranges, steps and values -------------------------------------------

P = f"spec.devices[0].capacity[{DRIVER}/bw].requestPolicy"
BIG = str(2**64)  # above int64: Go's Quantity.Value() would overflow


def _policy_slice(capacity: str, policy: dict[str, Any]) -> dict[str, Any]:
    dev = {
        "name": "d0",
        "allowMultipleAllocations": True,
        "capacity": {f"{DRIVER}/bw": {"value": capacity, "requestPolicy": policy}},
    }
    return _slice(nodeName="node-a", devices=[dev])


def _range(default: str, lo: str, step: str | None = None, hi: str | None = None) -> dict[str, Any]:
    rng = {"min": lo} | ({"step": step} if step else {}) | ({"max": hi} if hi else {})
    return {"default": default, "validRange": rng}


# (id, fractional gate on, capacity, policy, {field: message fragment}; {} = accepted)
POLICY_ROWS: list[tuple[str, bool, str, dict[str, Any], dict[str, str]]] = [
    ("range-valid", False, "100", _range("10", "0", "5", "100"), {}),
    ("max-above-int64", False, BIG, _range("1", "0", "1", BIG), {f"{P}.validRange.max": "9223372036854775807"}),
    ("default-above-int64", False, BIG, _range(BIG, "0", "1"), {f"{P}.validRange.default": "9223372036854775807"}),
    ("step-above-int64", False, BIG, _range("0", "0", BIG), {f"{P}.validRange.step": "9223372036854775807"}),
    ("above-int64-without-step", False, BIG, _range("1", "0", None, BIG), {}),
    ("negative-min", False, "10", _range("0", "-2", "2"), {f"{P}.validRange.min": "greater than or equal to 0"}),
    ("step-zero", False, "10", _range("0", "0", "0"), {f"{P}.validRange.step": "must be greater than zero"}),
    ("step-negative", False, "10", _range("0", "0", "-1"), {f"{P}.validRange.step": "must be greater than zero"}),
    ("step-over-capacity", False, "10", _range("4", "4", "8"), {f"{P}.validRange.step": "one step 12"}),
    ("default-not-on-step", False, "10", _range("3", "0", "2"), {f"{P}.validRange.step": "not a multiple"}),
    ("max-not-on-step", False, "10", _range("0", "0", "2", "9"), {f"{P}.validRange.step": "not a multiple"}),
    # Without the gate, the step check reads amounts rounded up to whole numbers.
    ("fraction-rounds-up-accepted", False, "10", _range("1", "0.5", "1"), {}),
    ("fraction-rounds-up-accepted-2", False, "10", _range("2", "0", "1.5"), {}),
    ("fraction-rounds-up-refused", False, "10", _range("3", "0", "1.5"), {f"{P}.validRange.step": "not a multiple"}),
    # With it, they are compared in thousandths.
    ("milli-exact-accepted", True, "10", _range("3", "0", "1.5"), {}),
    ("milli-exact-refused", True, "10", _range("1", "0.5", "1"), {f"{P}.validRange.step": "not a multiple"}),
    ("milli-half-step", True, "10", _range("1.5", "0", "0.5", "10"), {}),
    (
        "finer-than-milli",
        True,
        "10",
        _range("1.0005", "0", "0.5"),
        {f"{P}.validRange.default": "cannot be represented as a milli value"},
    ),
    ("whole-range-stays-integer", True, "10", _range("3", "0", "2"), {f"{P}.validRange.step": "not a multiple"}),
    ("values-valid", False, "10", {"default": "2", "validValues": ["1", "2", "8"]}, {}),
    (
        "values-unsorted",
        False,
        "10",
        {"default": "4", "validValues": ["4", "1"]},
        {f"{P}.validValues[1]": "sorted in ascending order"},
    ),
    (
        "values-over-capacity",
        False,
        "8",
        {"default": "1", "validValues": ["1", "16"]},
        {f"{P}.validValues[1]": "larger than capacity value"},
    ),
    (
        "values-without-default",
        False,
        "10",
        {"default": "3", "validValues": ["1", "2"]},
        {f"{P}.validValues": "default value is not valid"},
    ),
    (
        "values-same-whole-number",
        False,
        "10",
        {"default": "2", "validValues": ["1.5", "2"]},
        {f"{P}.validValues[1]": "Duplicate value"},
    ),
    ("values-distinct-fractions", True, "10", {"default": "2", "validValues": ["1.5", "2"]}, {}),
    ("default-over-capacity-alone", False, "10", {"default": "20"}, {}),
    (
        "values-duplicate-spelled-differently",
        False,
        "10Gi",
        {"default": "1Ki", "validValues": ["1Ki", "1024"]},
        {f"{P}.validValues[1]": "Duplicate value"},
    ),
    (
        "range-min-over-capacity-and-max",
        False,
        "10Gi",
        _range("2Gi", "20Gi", None, "1Gi"),
        {
            f"{P}.validRange.min": "min is larger than capacity value",
            f"{P}.validRange.default": "default is",
            f"{P}.validRange.max": "min is larger than max",
        },
    ),
    ("step-at-int64-max", False, str(2**63 - 1), _range("0", "0", str(2**63 - 1)), {}),
    (
        "step-int64-max-plus-one",
        False,
        str(2**63),
        _range("0", "0", str(2**63)),
        {f"{P}.validRange.step": "must not be larger than 9223372036854775807"},
    ),
    ("no-step-negative-bounds", False, "10Gi", _range("-1", "-1"), {}),
    (
        "fractional-default-integer-range",
        True,
        "10Gi",
        _range("100m", "0", "1"),
        {f"{P}.validRange.step": "not a multiple of a given step (1) from (0)"},
    ),
    ("fractional-step-gate-on", True, "1", _range("200m", "200m", "100m", "1"), {}),
    (
        "fractional-step-misaligned-gate-on",
        True,
        "1",
        _range("250m", "200m", "100m", "1"),
        {f"{P}.validRange.step": "not a multiple"},
    ),
    ("fractional-step-misaligned-gate-off", False, "1", _range("250m", "200m", "100m", "1"), {}),
    (
        "milli-overflow",
        True,
        "100P",
        _range("20P", "10P", "100m"),
        {
            f"{P}.validRange.default": "cannot be represented as a milli value",
            f"{P}.validRange.min": "cannot be represented as a milli value",
        },
    ),
]


@pytest.mark.parametrize(
    ("fractional", "capacity", "policy", "expected"), [r[1:] for r in POLICY_ROWS], ids=[r[0] for r in POLICY_ROWS]
)
def test_request_policy(
    request: pytest.FixtureRequest,
    fractional: bool,
    capacity: str,
    policy: dict[str, Any],
    expected: dict[str, str],
) -> None:
    api = request.getfixturevalue("api_fractional" if fractional else "api")
    causes = _create_slice(api, _policy_slice(capacity, policy))
    assert {c["field"] for c in causes} == set(expected), causes
    for c in causes:
        assert expected[c["field"]] in c["message"], c


# ---- admin access needs the namespace label (upstream's DRAAdminAccess admission) --------------------------

ADMIN_LABEL = "resource.kubernetes.io/admin-access"


def _namespace(api: client.ApiClient, labels: dict[str, str] | None = None) -> str:
    name = f"ns{next(_names)}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    client.CoreV1Api(api).create_namespace(body)
    return name


def _forbidden_fields(e: ApiException) -> list[tuple[str, str]]:
    assert e.status == 422, e.body
    causes = json.loads(e.body)["details"]["causes"]
    for c in causes:
        assert "admin access to devices requires the `resource.kubernetes.io/admin-access: true` label" in c["message"]
    return [(c["field"], c["reason"]) for c in causes]


def _admin_claim(name: str, namespace: str) -> dict[str, Any]:
    body = _claim(name, namespace)
    body["spec"]["devices"]["requests"].insert(0, {"name": "plain", "exactly": {"deviceClassName": "snn-core"}})
    body["spec"]["devices"]["requests"][1]["exactly"]["adminAccess"] = True
    return body


@pytest.mark.parametrize(
    "labels",
    [{}, {ADMIN_LABEL: "false"}, {ADMIN_LABEL: "True"}, {"other": "true"}],
    ids=["none", "false", "True", "other"],
)
def test_admin_access_claim_refused_without_the_label(api: client.ApiClient, labels: dict[str, str]) -> None:
    ns = _namespace(api, labels)
    res = client.ResourceV1Api(api)
    with pytest.raises(ApiException) as e:
        res.create_namespaced_resource_claim(ns, _admin_claim("admin", ns))
    assert _forbidden_fields(e.value) == [("spec.devices.requests[1].adminAccess", "FieldValueForbidden")]
    assert res.list_namespaced_resource_claim(ns).items == []


def test_admin_access_claim_and_template_allowed_with_the_label(api: client.ApiClient) -> None:
    ns = _namespace(api, {ADMIN_LABEL: "true"})
    res = client.ResourceV1Api(api)
    res.create_namespaced_resource_claim(ns, _admin_claim("admin", ns))
    assert res.read_namespaced_resource_claim("admin", ns).spec.devices.requests[1].exactly.admin_access is True
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "admin", "namespace": ns},
        "spec": {"spec": _admin_claim("x", ns)["spec"]},
    }
    res.create_namespaced_resource_claim_template(ns, template)


def test_admin_access_template_refused_without_the_label(api: client.ApiClient) -> None:
    ns = _namespace(api)
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "admin", "namespace": ns},
        "spec": {"spec": _admin_claim("x", ns)["spec"]},
    }
    with pytest.raises(ApiException) as e:
        client.ResourceV1Api(api).create_namespaced_resource_claim_template(ns, template)
    # Upstream reports the template's request at the claim's path.
    assert _forbidden_fields(e.value) == [("spec.devices.requests[1].adminAccess", "FieldValueForbidden")]


def test_claims_without_admin_access_need_no_label(api: client.ApiClient) -> None:
    ns = _namespace(api)
    body = _claim("plain", ns)
    body["spec"]["devices"]["requests"][0]["exactly"]["adminAccess"] = False
    client.ResourceV1Api(api).create_namespaced_resource_claim(ns, body)


def test_admin_access_allocation_refused_without_the_label(api: client.ApiClient) -> None:
    ns = _namespace(api)
    res = client.ResourceV1Api(api)
    res.create_namespaced_resource_claim(ns, _claim("c", ns))
    body = api.sanitize_for_serialization(res.read_namespaced_resource_claim("c", ns))
    allocation = _allocation(_selector(fields=[_expr("metadata.name", "In", ["node-a"])]))
    allocation["devices"]["results"][0]["adminAccess"] = True
    body["status"] = {"allocation": allocation}
    with pytest.raises(ApiException) as e:
        res.replace_namespaced_resource_claim_status("c", ns, body)
    assert _forbidden_fields(e.value) == [("status.allocation.devices.results[0].adminAccess", "FieldValueForbidden")]
    # Once the namespace is labelled, the same status is accepted.
    client.CoreV1Api(api).patch_namespace(ns, {"metadata": {"labels": {ADMIN_LABEL: "true"}}})
    stored = res.replace_namespaced_resource_claim_status("c", ns, body)
    assert stored.status.allocation is not None


# ---- ratcheting: what a stored slice already had is not validated again on update ---------------------------


@pytest.fixture(scope="module")
def server(api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedApiServer]:
    srv = EmbeddedApiServer(state_dir=Path(tmp_path_factory.mktemp("upstream-ratchet")), profile="1.37").start()
    try:
        yield srv
    finally:
        srv.stop()


def test_stored_capacity_and_taints_are_not_revalidated_on_update(server: EmbeddedApiServer) -> None:
    """A slice written while DRAFractionalCapacityRange was on (1.5 is a duplicate of 2 without it) and with a
    taint effect this version does not know can still be updated as long as those fields stay as they were."""
    stale = _policy_slice("10", {"default": "2", "validValues": ["1.5", "2"]})
    stale["spec"]["devices"].append(
        {"name": "d1", "taints": [{"key": "example.com/k", "effect": "Sometimes", "timeAdded": "2026-01-01T00:00:00Z"}]}
    )
    server.store.load_unchecked("resourceslices", stale)
    name = stale["metadata"]["name"]
    api_client = api_client_for(server)
    try:
        res = client.ResourceV1Api(api_client)
        body = api_client.sanitize_for_serialization(res.read_resource_slice(name))
        body["metadata"]["labels"] = {"touched": "yes"}
        body["spec"]["devices"][0]["attributes"] = {"model": {"string": "x"}}
        res.replace_resource_slice(name, body)  # accepted: capacity and taints unchanged

        body = api_client.sanitize_for_serialization(res.read_resource_slice(name))
        body["spec"]["devices"][0]["capacity"][f"{DRIVER}/bw"]["value"] = "11"
        body["spec"]["devices"][1]["taints"].append({"key": "example.com/other", "effect": "NoSchedule"})
        with pytest.raises(ApiException) as e:
            res.replace_resource_slice(name, body)
        assert e.value.status == 422
        fields = sorted(c["field"] for c in json.loads(e.value.body)["details"]["causes"])
        assert fields == [f"{P}.validValues[1]", "spec.devices[1].taints[0].effect"]
    finally:
        api_client.close()


# ---- partitionTypeAttribute (1.37, DRAPartitionableDevicesType) -------------------------------------------


@pytest.fixture(scope="module")
def api_partition_type(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    srv = EmbeddedApiServer(
        state_dir=Path(tmp_path_factory.mktemp("upstream-partition-type")),
        profile="1.37",
        feature_gates={"DRAPartitionableDevicesType": True},
    ).start()
    api_client = api_client_for(srv)
    try:
        yield api_client
    finally:
        api_client.close()
        srv.stop()


def _partition(name: str, **attributes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "attributes": attributes,
        "consumesCounters": [{"counterSet": "chip", "counters": {"cores": {"value": "4"}}}],
    }


TYPE = f"{DRIVER}/partitionType"

# (id, partitionTypeAttribute, devices, expected error fields)
PARTITION_TYPE_ROWS: list[tuple[str, str, list[dict[str, Any]], list[str]]] = [
    ("qualified", TYPE, [_partition("p0", **{TYPE: {"string": "half"}})], []),
    ("bare-in-driver-domain", TYPE, [_partition("p0", partitionType={"string": "half"})], []),
    ("exempt-device", TYPE, [_partition("p0", **{TYPE: {"string": "half"}}), {"name": "whole"}], []),
    ("no-partitionable-devices", TYPE, [{"name": "whole"}], ["spec.partitionTypeAttribute"]),
    ("missing-on-a-partition", TYPE, [_partition("p0")], [f"spec.devices[0].attributes[{TYPE}]"]),
    (
        "not-a-string",
        TYPE,
        [_partition("p0", **{TYPE: {"int": 2}})],
        [f"spec.devices[0].attributes[{TYPE}]"],
    ),
    (
        "other-domain-not-bare",
        "other.example.com/partitionType",
        [_partition("p0", partitionType={"string": "half"})],
        ["spec.devices[0].attributes[other.example.com/partitionType]"],
    ),
    (
        "bare-name-refused",
        "partitionType",
        [_partition("p0", partitionType={"string": "x"})],
        ["spec.partitionTypeAttribute"],
    ),
]


@pytest.mark.parametrize(
    ("attribute", "devices", "fields"), [r[1:] for r in PARTITION_TYPE_ROWS], ids=[r[0] for r in PARTITION_TYPE_ROWS]
)
def test_partition_type_attribute(
    api_partition_type: client.ApiClient, attribute: str, devices: list[dict[str, Any]], fields: list[str]
) -> None:
    body = _slice(nodeName="node-a", devices=devices, partitionTypeAttribute=attribute)
    causes = _create_slice(api_partition_type, body)
    assert sorted(c["field"] for c in causes) == sorted(fields), causes


def test_partition_type_attribute_is_dropped_while_its_gate_is_off(api: client.ApiClient) -> None:
    res = client.ResourceV1Api(api)
    body = _slice(nodeName="node-a", devices=[{"name": "whole"}], partitionTypeAttribute=TYPE)
    res.create_resource_slice(body)
    try:
        stored = api.sanitize_for_serialization(res.read_resource_slice(body["metadata"]["name"]))
        assert "partitionTypeAttribute" not in stored["spec"]
    finally:
        res.delete_resource_slice(body["metadata"]["name"])


# ---- claim status: stored allocations are not validated again; a deleted claim takes no new consumers ------


def _pod_ref(i: int) -> dict[str, Any]:
    return {"resource": "pods", "name": f"pod-{i}", "uid": f"uid-{i}"}


def test_stored_allocation_is_not_validated_again(server: EmbeddedApiServer) -> None:
    """An allocation written under looser rules (label value "-1") does not block adding consumers."""
    stale = _claim("stale", "default", allocationMode="ExactCount", count=1)  # as the server defaults it
    stale["status"] = {"allocation": _allocation(_selector(_expr("foo", "In", ["-1"])))}
    server.store.load_unchecked("resourceclaims", stale)
    api_client = api_client_for(server)
    try:
        res = client.ResourceV1Api(api_client)
        body = api_client.sanitize_for_serialization(res.read_namespaced_resource_claim("stale", "default"))
        body["status"]["reservedFor"] = [_pod_ref(i) for i in range(3)]
        stored = res.replace_namespaced_resource_claim_status("stale", "default", body)
        assert [r.name for r in stored.status.reserved_for] == ["pod-0", "pod-1", "pod-2"]
        # Changing it is still refused (immutable), whatever its content.
        body = api_client.sanitize_for_serialization(stored)
        body["status"]["allocation"]["nodeSelector"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = ["1"]
        with pytest.raises(ApiException) as e:
            res.replace_namespaced_resource_claim_status("stale", "default", body)
        assert e.value.status == 422
        assert [c["field"] for c in json.loads(e.value.body)["details"]["causes"]] == ["status.allocation"]
    finally:
        api_client.close()


def test_claim_being_deleted_takes_no_new_consumers(api: client.ApiClient) -> None:
    res = client.ResourceV1Api(api)
    name = f"c{next(_names)}"
    body = _claim(name)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    res.create_namespaced_resource_claim("default", body)
    current = api.sanitize_for_serialization(res.read_namespaced_resource_claim(name, "default"))
    current["status"] = {
        "allocation": _allocation(_selector(_expr(values=["r1"]))),
        "reservedFor": [_pod_ref(0), _pod_ref(1)],
    }
    res.replace_namespaced_resource_claim_status(name, "default", current)
    res.delete_namespaced_resource_claim(name, "default")
    try:
        current = api.sanitize_for_serialization(res.read_namespaced_resource_claim(name, "default"))
        assert current["metadata"]["deletionTimestamp"]
        current["status"]["reservedFor"].append(_pod_ref(2))
        with pytest.raises(ApiException) as e:
            res.replace_namespaced_resource_claim_status(name, "default", current)
        assert e.value.status == 422
        causes = json.loads(e.value.body)["details"]["causes"]
        assert [(c["field"], c["reason"]) for c in causes] == [("status.reservedFor", "FieldValueForbidden")]
        assert "new entries may not be added" in causes[0]["message"]
        # Consumers may still leave.
        current["status"]["reservedFor"] = current["status"]["reservedFor"][:1]
        stored = res.replace_namespaced_resource_claim_status(name, "default", current)
        assert [r.name for r in stored.status.reserved_for] == ["pod-0"]
    finally:
        res.patch_namespaced_resource_claim(name, "default", {"metadata": {"finalizers": None}})


def test_stored_taint_rule_effect_is_not_validated_again(server: EmbeddedApiServer) -> None:
    rule = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": "stale"},
        "spec": {
            "deviceSelector": {"driver": DRIVER},
            "taint": {"key": "example.com/k", "effect": "SomeOtherEffect", "timeAdded": "2026-01-01T00:00:00Z"},
        },
    }
    server.store.load_unchecked("devicetaintrules", rule)
    api_client = api_client_for(server)
    try:
        res = client.ResourceV1Api(api_client)
        body = api_client.sanitize_for_serialization(res.read_device_taint_rule("stale"))
        body["metadata"]["labels"] = {"a": "b"}
        res.replace_device_taint_rule("stale", body)  # the taint is as stored: accepted
        body = api_client.sanitize_for_serialization(res.read_device_taint_rule("stale"))
        body["spec"]["taint"]["effect"] = "AnotherEffect"
        with pytest.raises(ApiException) as e:
            res.replace_device_taint_rule("stale", body)
        assert e.value.status == 422
        causes = json.loads(e.value.body)["details"]["causes"]
        assert [(c["field"], c["reason"]) for c in causes] == [("spec.taint.effect", "FieldValueNotSupported")]
    finally:
        api_client.close()


# ---- claim spec rows -------------------------------------------------------------------------------------

R0 = "spec.devices.requests[0]"


def _spec_with(**devices: Any) -> dict[str, Any]:
    body = _claim(f"c{next(_names)}")
    body["spec"]["devices"].update(devices)
    return body


def _sub(name: str) -> dict[str, Any]:
    return {"name": name, "deviceClassName": "snn-core"}


CLAIM_ROWS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "constraint-bad-request-names",
        _spec_with(
            constraints=[
                {"requests": ["r", "Bad_Name"], "matchAttribute": "missing-domain"},
                {"matchAttribute": ""},
                {},
            ]
        ),
        [
            "spec.devices.constraints[0].requests[1]",
            "spec.devices.constraints[0].matchAttribute",
            "spec.devices.constraints[1].matchAttribute",
            "spec.devices.constraints[2]",  # with DRAConsumableCapacity (on in 1.37) neither field is named
        ],
    ),
    (
        "config-bad-request-name",
        _spec_with(config=[{"requests": ["r", "Bad_Name"], "opaque": {"driver": DRIVER, "parameters": {"kind": "X"}}}]),
        ["spec.devices.config[0].requests[1]"],
    ),
    (
        "first-available-and-exactly",
        _spec_with(requests=[{"name": "r", "exactly": {"deviceClassName": "snn-core"}, "firstAvailable": [_sub("a")]}]),
        [R0],
    ),
    (
        "duplicate-request-names",
        _spec_with(
            requests=[
                {"name": "r", "exactly": {"deviceClassName": "snn-core"}},
                {"name": "r", "exactly": {"deviceClassName": "snn-core"}},
            ]
        ),
        ["spec.devices.requests[1]"],
    ),
    (
        "subrequest-reference-valid",
        _spec_with(
            requests=[{"name": "r", "firstAvailable": [_sub("a"), _sub("b")]}],
            constraints=[{"requests": ["r/a"], "matchAttribute": f"{DRIVER}/chip"}],
        ),
        [],
    ),
    (
        "subrequest-reference-unknown",
        _spec_with(
            requests=[{"name": "r", "firstAvailable": [_sub("a")]}],
            constraints=[{"requests": ["r/z"], "matchAttribute": f"{DRIVER}/chip"}],
        ),
        ["spec.devices.constraints[0].requests[0]"],
    ),
    (
        "subrequests-same-name",
        _spec_with(requests=[{"name": "r", "firstAvailable": [_sub("a"), _sub("a")]}]),
        [f"{R0}.firstAvailable[1]"],
    ),
]


@pytest.mark.parametrize(("body", "fields"), [r[1:] for r in CLAIM_ROWS], ids=[r[0] for r in CLAIM_ROWS])
def test_claim_spec(api: client.ApiClient, body: dict[str, Any], fields: list[str]) -> None:
    res = client.ResourceV1Api(api)
    try:
        res.create_namespaced_resource_claim("default", body)
    except ApiException as e:
        assert e.status == 422, e.body
        got = sorted({c["field"] for c in json.loads(e.body)["details"]["causes"]})
        assert got == sorted(set(fields)), e.body
        return
    res.delete_namespaced_resource_claim(body["metadata"]["name"], "default")
    assert fields == []


def test_allocation_with_an_empty_node_selector_is_refused(api: client.ApiClient) -> None:
    res = client.ResourceV1Api(api)
    name = f"c{next(_names)}"
    res.create_namespaced_resource_claim("default", _claim(name))
    try:
        body = api.sanitize_for_serialization(res.read_namespaced_resource_claim(name, "default"))
        body["status"] = {"allocation": _allocation({"nodeSelectorTerms": []})}
        with pytest.raises(ApiException) as e:
            res.replace_namespaced_resource_claim_status(name, "default", body)
        causes = json.loads(e.value.body)["details"]["causes"]
        assert [(c["field"], c["reason"]) for c in causes] == [
            ("status.allocation.nodeSelector.nodeSelectorTerms", "FieldValueRequired")
        ]
    finally:
        res.delete_namespaced_resource_claim(name, "default")


@pytest.mark.parametrize(
    "devices",
    [{"requests": 9223372036854775808}, {"requests": "x"}, {"requests": [7]}],
    ids=["huge-int", "string", "int-entry"],
)
def test_admin_access_check_leaves_wrongly_typed_requests_to_the_schema(
    api: client.ApiClient, devices: dict[str, Any]
) -> None:
    """Admission runs before the schema check: a request list of the wrong type must come back as the schema's 422
    naming the field, never as a 500 from the admin-access check (found by tests/test_hardening_fuzz.py)."""
    from hardening_support import send

    ns = _namespace(api)
    body = json.dumps(
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "typed"},
         "spec": {"devices": devices}}
    )  # fmt: skip
    reply = send(api, "POST", f"/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims", body)
    assert reply.status == 422, reply.body
    assert "spec.devices.requests" in reply.json()["message"]
