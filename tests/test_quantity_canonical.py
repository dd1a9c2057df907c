"""Quantities read back in the API server's canonical text, whatever spelling was written.

Every expected string follows the apimachinery ``resource.Quantity`` rules (suffix picks the format; value kept to
nano, rounded away from zero; BinarySI capped at 2^63-1; canonical mantissa and suffix; already-canonical-looking
int64 input kept verbatim) and was checked against v0.36.3's own encoder. Objects go in and come out over HTTPS
through the official client, as any controller sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from embedded_fixtures import api_client_for, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
from snn_dra.driver.kubejson import KubeJSON
from snn_dra.driver.quantity import INT64_MAX, QuantityError, canonical, format_value, integer, parse_as_server

DRIVER = "snn.dra.dev"

# (written, stored): non-negative, so every one is also a valid device capacity.
CASES: list[tuple[Any, str]] = [
    # decimal SI: the largest suffix that keeps an integer mantissa
    ("100000", "100k"),
    ("8000000", "8M"),
    ("1500", "1500"),
    ("1.5k", "1500"),
    ("10000", "10k"),
    ("1000M", "1G"),
    ("12E", "12E"),
    ("18446744073709551616", "18446744073709551616"),  # no int64 cap for decimal forms
    # milli and finer: fractions become an integer number of m, u or n
    ("0.5", "500m"),
    ("1.5", "1500m"),
    ("1000m", "1"),
    ("0.001", "1m"),
    (".0001k", "100m"),
    ("1.08", "1080m"),
    ("1.0000000001", "1000000001n"),  # finer than nano: rounded away from zero
    ("0.1n", "1n"),
    ("0.00000012345", "124n"),
    ("3.001n", "4n"),
    # binary SI: the largest power of 1024 that keeps an integer; small or fractional amounts print in decimal
    ("1024Mi", "1Gi"),
    ("1.5Gi", "1536Mi"),
    ("1024Ki", "1Mi"),
    ("1025Ki", "1025Ki"),
    ("0.5Ki", "512"),
    ("1.1Ki", "1126400m"),
    (".001Ki", "1024m"),
    ("0.000000000001Ki", "2n"),
    ("9Ei", str(INT64_MAX)),  # capped at 2^63-1
    # decimal exponent: the power lowered to a multiple of three, printed with "e"
    ("1e3", "1e3"),
    ("100e3", "100e3"),
    ("1e1", "10"),
    ("1.5e3", "1500"),
    ("0.001e0", "1e-3"),
    ("1.3E+6", "1300e3"),
    # zero, in any spelling
    ("0", "0"),
    ("0.0", "0"),
    ("0Ki", "0"),
    ("000", "0"),
    ("0e3", "0"),
    # input that already looks canonical to the int64 fast path is kept verbatim, quirks and all
    ("+1k", "+1k"),
    ("0100", "0100"),
    ("1E3", "1E3"),
    ("01Ki", "01Ki"),
    ("100.035k", "100.035k"),
]

# JSON numbers are quantities too (the official client's models only send strings, so these go as raw JSON).
NUMBER_CASES: list[tuple[Any, str]] = [(100000, "100k"), (1.5, "1500m"), (0, "0"), (2, "2"), (1e21, "1e21")]


@pytest.fixture
def api(embedded_server: EmbeddedApiServer) -> Iterator[client.ApiClient]:  # noqa: F811
    api = api_client_for(embedded_server)
    yield api
    api.close()


def slice_body(name: str, capacities: list[Any], **device: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {
            "driver": DRIVER,
            "nodeName": "node-a",
            "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1},
            "devices": [
                {"name": f"d{i}", "capacity": {"amount": {"value": value}}, **device}
                for i, value in enumerate(capacities)
            ],
        },
    }


def test_device_capacities_read_back_canonical(api: client.ApiClient) -> None:
    resources = client.ResourceV1Api(api)
    resources.create_resource_slice(slice_body("table", [written for written, _ in CASES]))
    got = resources.read_resource_slice("table").spec.devices
    assert [d.capacity["amount"].value for d in got] == [stored for _, stored in CASES]


def test_json_numbers_read_back_as_canonical_strings(api: client.ApiClient) -> None:
    body = slice_body("numbers", [written for written, _ in NUMBER_CASES])
    KubeJSON(api).create("/apis/resource.k8s.io/v1/resourceslices", body)
    got = client.ResourceV1Api(api).read_resource_slice("numbers").spec.devices
    assert [d.capacity["amount"].value for d in got] == [stored for _, stored in NUMBER_CASES]


def test_the_module_gives_the_same_table_and_signs_mirror() -> None:
    for written, stored in CASES:
        text = str(written)
        assert canonical(text) == stored, text
        if stored != "0" and not text.startswith("+"):
            assert canonical("-" + text) == "-" + stored, text
    assert canonical("-0") == "0"
    assert canonical("-1Ki") == "-1Ki" and canonical("-1023") == "-1023" and canonical("-0.1n") == "-1n"
    # Upstream 1.36 prints the bare mantissa past E (10^18), losing the power; the exponent form keeps the value.
    assert canonical("1000E") == "1e21"
    assert parse_as_server("1000E").value == Decimal("1e21")


@pytest.mark.parametrize("text", ["", "1K", "1i", "1e", "--1", "1 k", "0x10", "NaN"])
def test_text_that_is_no_quantity_is_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        canonical(text)


def test_whole_numbers_are_written_as_the_server_keeps_them() -> None:
    assert integer(100_000, binary=True) == "100k"  # bytes that are no whole KiB: decimal, or the server rewrites
    assert integer(131_072, binary=True) == "128Ki"
    assert integer(1536, binary=True) == "1536"
    assert integer(1000, binary=True) == "1k"
    assert integer(2_000_000) == "2M"
    for n in [0, 1, 999, 1000, 1024, 100_000, 7_800_000, 2**40, 3 * 2**60, 10**21]:
        for binary in (False, True):
            assert canonical(integer(n, binary)) == integer(n, binary)
            assert parse_as_server(integer(n, binary)).value == n
    assert format_value(Decimal("0.5"), "BinarySI") == "500m"


def test_request_policy_and_counters_read_back_canonical(api: client.ApiClient) -> None:
    resources = client.ResourceV1Api(api)
    counters = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": "counters"},
        "spec": {
            "driver": DRIVER,
            "nodeName": "node-a",
            "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 2},
            "sharedCounters": [{"name": "chip", "counters": {"memory": {"value": "2048Ki"}}}],
        },
    }
    resources.create_resource_slice(counters)
    shared = slice_body(
        "shared",
        ["100000"],
        allowMultipleAllocations=True,
        consumesCounters=[{"counterSet": "chip", "counters": {"memory": {"value": "1048576"}}}],
    )
    shared["spec"]["pool"]["resourceSliceCount"] = 2
    shared["spec"]["devices"][0]["capacity"]["amount"]["requestPolicy"] = {
        "default": "6250.0",
        "validRange": {"min": "1000m", "max": "100000", "step": "1.0"},
    }
    resources.create_resource_slice(shared)
    assert resources.read_resource_slice("counters").spec.shared_counters[0].counters["memory"].value == "2Mi"
    device = resources.read_resource_slice("shared").spec.devices[0]
    policy = device.capacity["amount"].request_policy
    assert (device.capacity["amount"].value, policy.default) == ("100k", "6250")
    assert (policy.valid_range.min, policy.valid_range.max, policy.valid_range.step) == ("1", "100k", "1")
    assert device.consumes_counters[0].counters["memory"].value == "1048576"

    choices = slice_body("choices", ["8000000"])
    choices["metadata"]["name"] = "choices"
    choices["spec"]["pool"] = {"name": "other", "generation": 1, "resourceSliceCount": 1}
    choices["spec"]["devices"][0]["allowMultipleAllocations"] = True
    choices["spec"]["devices"][0]["capacity"]["amount"]["requestPolicy"] = {
        "default": "1000000",
        "validValues": ["1000000", "2e6", "8000000"],
    }
    resources.create_resource_slice(choices)
    policy = resources.read_resource_slice("choices").spec.devices[0].capacity["amount"].request_policy
    assert (policy.default, policy.valid_values) == ("1M", ["1M", "2e6", "8M"])


def test_an_update_and_a_patch_store_canonical_text_and_a_respelling_is_no_change(api: client.ApiClient) -> None:
    resources = client.ResourceV1Api(api)
    created = resources.create_resource_slice(slice_body("s", ["1"]))
    body = api.sanitize_for_serialization(created)
    body["spec"]["devices"][0]["capacity"]["amount"]["value"] = "0.25"
    updated = resources.replace_resource_slice("s", body)
    assert updated.spec.devices[0].capacity["amount"].value == "250m"
    # The same value in another spelling stores the same text: a no-op, the resourceVersion stays.
    body = api.sanitize_for_serialization(updated)
    body["spec"]["devices"][0]["capacity"]["amount"]["value"] = "250000u"
    again = resources.replace_resource_slice("s", body)
    assert again.metadata.resource_version == updated.metadata.resource_version
    assert again.spec.devices[0].capacity["amount"].value == "250m"

    patch = {"spec": {"devices": [{"name": "d0", "capacity": {"amount": {"value": "3000000"}}}]}}
    patched = resources.patch_resource_slice("s", patch)
    assert patched.spec.devices[0].capacity["amount"].value == "3M"


def test_claim_and_template_capacity_requests_read_back_canonical(api: client.ApiClient) -> None:
    resources = client.ResourceV1Api(api)
    request = {
        "name": "r",
        "exactly": {"deviceClassName": "snn", "capacity": {"requests": {f"{DRIVER}/amount": "0.5Ki"}}},
    }
    alternative = {
        "name": "r2",
        "firstAvailable": [{"name": "a", "deviceClassName": "snn", "capacity": {"requests": {"amount": "1e3"}}}],
    }
    claim = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "c"},
        "spec": {"devices": {"requests": [request, alternative]}},
    }
    resources.create_namespaced_resource_claim("default", claim)
    got = resources.read_namespaced_resource_claim("c", "default").spec.devices.requests
    assert got[0].exactly.capacity.requests == {f"{DRIVER}/amount": "512"}
    assert got[1].first_available[0].capacity.requests == {"amount": "1e3"}

    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "t"},
        "spec": {"spec": {"devices": {"requests": [request]}}},
    }
    resources.create_namespaced_resource_claim_template("default", template)
    got_t = resources.read_namespaced_resource_claim_template("t", "default").spec.spec.devices.requests
    assert got_t[0].exactly.capacity.requests == {f"{DRIVER}/amount": "512"}


def test_pod_resources_and_node_status_read_back_canonical(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    container = {
        "name": "c",
        "image": "busybox",
        "resources": {"requests": {"cpu": "0.5", "memory": "1073741824"}, "limits": {"cpu": "2.0", "memory": "1024Mi"}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [container], "initContainers": [{**container, "name": "init"}]},
    }
    core.create_namespaced_pod("default", pod)
    got = core.read_namespaced_pod("p", "default").spec
    for c in (got.containers[0], got.init_containers[0]):
        assert c.resources.requests == {"cpu": "500m", "memory": "1073741824"}
        assert c.resources.limits == {"cpu": "2", "memory": "1Gi"}
    patched = core.patch_namespaced_pod(
        "p", "default", {"metadata": {"labels": {"a": "b"}}, "spec": {"activeDeadlineSeconds": 60}}
    )
    assert patched.spec.containers[0].resources.requests["cpu"] == "500m"

    node = core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
    body = api.sanitize_for_serialization(node)
    body["status"] = {"capacity": {"cpu": "4000m", "memory": "8388608Ki"}, "allocatable": {"pods": "110.0"}}
    core.replace_node_status("node-a", body)
    status = core.read_node("node-a").status
    assert status.capacity == {"cpu": "4", "memory": "8Gi"} and status.allocatable == {"pods": "110"}


def test_malformed_quantities_are_still_refused_with_the_field(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.ResourceV1Api(api).create_resource_slice(slice_body("bad", ["12 GB"]))
    assert err.value.status == 422
    assert "spec.devices[0].capacity[amount].value" in str(err.value.body)
