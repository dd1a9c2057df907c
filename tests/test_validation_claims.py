"""ResourceClaim / ResourceClaimTemplate validation: every rule rejects a bad object at the upstream field path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from snn_dra.driver.validation import CauseType, FieldError, validate_object

UID = "4f2c7c0e-1b2a-4c3d-8e9f-0a1b2c3d4e5f"


def claim() -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "train", "namespace": "ml"},
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": "chips",
                        "exactly": {
                            "deviceClassName": "snn-chip",
                            "selectors": [{"cel": {"expression": 'device.attributes["snn.dra.dev"].cores >= 4'}}],
                            "allocationMode": "ExactCount",
                            "count": 2,
                        },
                    },
                    {
                        "name": "router",
                        "firstAvailable": [
                            {"name": "fast", "deviceClassName": "snn-router"},
                            {"name": "any", "deviceClassName": "snn-router", "allocationMode": "All"},
                        ],
                    },
                ],
                "constraints": [{"requests": ["chips", "router/fast"], "matchAttribute": "snn.dra.dev/board"}],
                "config": [
                    {
                        "requests": ["chips"],
                        "opaque": {
                            "driver": "snn.dra.dev",
                            "parameters": {"apiVersion": "snn.dra.dev/v1alpha1", "kind": "ChipConfig"},
                        },
                    }
                ],
            }
        },
    }


def allocated(c: dict[str, Any]) -> dict[str, Any]:
    c = copy.deepcopy(c)
    c["status"] = {
        "allocation": {
            "devices": {
                "results": [
                    {"request": "chips", "driver": "snn.dra.dev", "pool": "node-1", "device": "chip-0"},
                    {"request": "chips", "driver": "snn.dra.dev", "pool": "node-1", "device": "chip-1"},
                    {
                        "request": "router/fast",
                        "driver": "snn.dra.dev",
                        "pool": "node-1",
                        "device": "router-0",
                        "shareID": UID,
                    },
                ],
                "config": [
                    {
                        "source": "FromClaim",
                        "requests": ["chips"],
                        "opaque": {"driver": "snn.dra.dev", "parameters": {"kind": "ChipConfig"}},
                    }
                ],
            }
        },
        "reservedFor": [{"resource": "pods", "name": "p", "uid": UID}],
        "devices": [
            {
                "driver": "snn.dra.dev",
                "pool": "node-1",
                "device": "chip-0",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Prepared",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
                "data": {"cores": 128},
                "networkData": {"interfaceName": "snn0", "ips": ["10.0.0.2/24"], "hardwareAddress": "aa:bb"},
            }
        ],
    }
    return c


def fields(errors: list[FieldError]) -> dict[str, FieldError]:
    return {e.field: e for e in errors}


def test_good_claim_and_status_are_accepted() -> None:
    assert validate_object(claim(), None, "1.37") == []
    assert validate_object(allocated(claim()), claim(), "1.37") == []
    assert validate_object(claim(), None, "1.34") == []


Mutation = Callable[[dict[str, Any]], None]
REQ0 = "spec.devices.requests[0]"


def _set(path: list[Any], value: Any) -> Mutation:
    def apply(c: dict[str, Any]) -> None:
        node: Any = c
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value

    return apply


def _exact(**kw: Any) -> Mutation:
    def apply(c: dict[str, Any]) -> None:
        c["spec"]["devices"]["requests"][0]["exactly"].update(kw)

    return apply


def _devices(**kw: Any) -> Mutation:
    def apply(c: dict[str, Any]) -> None:
        c["spec"]["devices"].update(kw)

    return apply


def _sel(expr: str) -> list[dict[str, Any]]:
    return [{"cel": {"expression": 'device.driver == "snn.dra.dev"'}}, {"cel": {"expression": expr}}]


def _req(i: int) -> dict[str, Any]:
    return {"name": f"r{i}", "exactly": {"deviceClassName": "c"}}


BAD_SPECS: list[tuple[str, Mutation, str, CauseType, str]] = [
    (
        "request name",
        _set(["spec", "devices", "requests", 0, "name"], "Chips"),
        f"{REQ0}.name",
        CauseType.INVALID,
        "DNS label",
    ),
    (
        "duplicate request",
        _set(["spec", "devices", "requests", 1, "name"], "chips"),
        "spec.devices.requests[1]",
        CauseType.DUPLICATE,
        "",
    ),
    (
        "neither one-of",
        _set(["spec", "devices", "requests", 0], {"name": "chips"}),
        REQ0,
        CauseType.REQUIRED,
        "exactly one of",
    ),
    (
        "both one-of",
        _set(["spec", "devices", "requests", 0, "firstAvailable"], [{"name": "x", "deviceClassName": "c"}]),
        REQ0,
        CauseType.INVALID,
        "exactly one of",
    ),
    ("class name", _exact(deviceClassName="Snn_Chip"), f"{REQ0}.exactly.deviceClassName", CauseType.INVALID, ""),
    ("count zero", _exact(count=0), f"{REQ0}.exactly.count", CauseType.INVALID, "greater than zero"),
    ("count with All", _exact(allocationMode="All", count=3), f"{REQ0}.exactly.count", CauseType.INVALID, "All"),
    ("mode", _exact(allocationMode="Some"), f"{REQ0}.exactly.allocationMode", CauseType.NOT_SUPPORTED, "ExactCount"),
    (
        "selector syntax",
        _exact(selectors=_sel("device.driver ==")),
        f"{REQ0}.exactly.selectors[1].cel.expression",
        CauseType.INVALID,
        "compilation failed: ERROR: <input>:1:",
    ),
    (
        "selector type",
        _exact(selectors=_sel("device.nosuch == 1")),
        f"{REQ0}.exactly.selectors[1].cel.expression",
        CauseType.INVALID,
        "undefined field",
    ),
    (
        "selector empty",
        _exact(selectors=_sel("")),
        f"{REQ0}.exactly.selectors[1].cel.expression",
        CauseType.REQUIRED,
        "",
    ),
    (
        "selector too long",
        _exact(selectors=_sel("true" + " && true" * 1300)),
        f"{REQ0}.exactly.selectors[1].cel.expression",
        CauseType.TOO_LONG,
        "10240",
    ),
    (
        "selector too costly",
        _exact(
            selectors=_sel(
                "device.attributes.exists(a, device.attributes[a].exists(b, device.attributes.exists(c, "
                "device.attributes[c].exists(e, a + b + c + e == 'x'))))"
            )
        ),
        f"{REQ0}.exactly.selectors[1].cel.expression",
        CauseType.FORBIDDEN,
        "cost limit",
    ),
    (
        "too many selectors",
        _exact(selectors=[{"cel": {"expression": "true"}}] * 33),
        f"{REQ0}.exactly.selectors",
        CauseType.TOO_MANY,
        "at most 32",
    ),
    (
        "too many requests",
        _devices(requests=[_req(i) for i in range(33)]),
        "spec.devices.requests",
        CauseType.TOO_MANY,
        "32",
    ),
    (
        "too many subrequests",
        _set(
            ["spec", "devices", "requests", 1, "firstAvailable"],
            [{"name": f"s{i}", "deviceClassName": "c"} for i in range(9)],
        ),
        "spec.devices.requests[1].firstAvailable",
        CauseType.TOO_MANY,
        "at most 8",
    ),
    (
        "too many tolerations",
        _exact(tolerations=[{"operator": "Exists"}] * 17),
        f"{REQ0}.exactly.tolerations",
        CauseType.TOO_MANY,
        "16",
    ),
    (
        "toleration operator",
        _exact(tolerations=[{"key": "a", "operator": "In"}]),
        f"{REQ0}.exactly.tolerations[0].operator",
        CauseType.NOT_SUPPORTED,
        "",
    ),
    (
        "toleration effect",
        _exact(tolerations=[{"key": "a", "operator": "Exists", "effect": "Evict"}]),
        f"{REQ0}.exactly.tolerations[0].effect",
        CauseType.NOT_SUPPORTED,
        "",
    ),
    (
        "toleration exists with value",
        _exact(tolerations=[{"key": "a", "operator": "Exists", "value": "b"}]),
        f"{REQ0}.exactly.tolerations[0].value",
        CauseType.INVALID,
        "Exists",
    ),
    (
        "toleration key",
        _exact(tolerations=[{"key": "-bad-", "operator": "Exists"}]),
        f"{REQ0}.exactly.tolerations[0].key",
        CauseType.INVALID,
        "",
    ),
    (
        "capacity quantity",
        _exact(capacity={"requests": {"cores": "lots"}}),
        f"{REQ0}.exactly.capacity.requests[cores]",
        CauseType.INVALID,
        "quantities must match",
    ),
    (
        "capacity name",
        _exact(capacity={"requests": {"core-count": "1"}}),
        f"{REQ0}.exactly.capacity.requests",
        CauseType.INVALID,
        "C identifier",
    ),
    (
        "constraint unknown request",
        _devices(constraints=[{"requests": ["nope"], "matchAttribute": "snn.dra.dev/board"}]),
        "spec.devices.constraints[0].requests[0]",
        CauseType.INVALID,
        "name of a request",
    ),
    (
        "constraint unknown subrequest",
        _devices(constraints=[{"requests": ["router/slow"], "matchAttribute": "snn.dra.dev/board"}]),
        "spec.devices.constraints[0].requests[0]",
        CauseType.INVALID,
        "subrequest",
    ),
    (
        "constraint neither",
        _devices(constraints=[{"requests": ["chips"]}]),
        "spec.devices.constraints[0]",
        CauseType.REQUIRED,
        "matchAttribute",
    ),
    (
        "constraint both",
        _devices(constraints=[{"requests": ["chips"], "matchAttribute": "a.io/x", "distinctAttribute": "a.io/y"}]),
        "spec.devices.constraints[0]",
        CauseType.INVALID,
        "exactly one",
    ),
    (
        "constraint needs domain",
        _devices(constraints=[{"matchAttribute": "board"}]),
        "spec.devices.constraints[0].matchAttribute",
        CauseType.REQUIRED,
        "domain",
    ),
    (
        "too many constraints",
        _devices(constraints=[{"matchAttribute": "a.io/x"}] * 33),
        "spec.devices.constraints",
        CauseType.TOO_MANY,
        "32",
    ),
    (
        "config driver",
        _devices(config=[{"opaque": {"driver": "not a driver", "parameters": {}}}]),
        "spec.devices.config[0].opaque.driver",
        CauseType.INVALID,
        "DNS subdomain",
    ),
    (
        "config params too large",
        _devices(config=[{"opaque": {"driver": "snn.dra.dev", "parameters": {"x": "a" * 11000}}}]),
        "spec.devices.config[0].opaque.parameters",
        CauseType.TOO_LONG,
        "10240",
    ),
    (
        "config no opaque",
        _devices(config=[{"requests": ["chips"]}]),
        "spec.devices.config[0].opaque",
        CauseType.REQUIRED,
        "",
    ),
    (
        "config ref",
        _devices(config=[{"requests": ["ghost"], "opaque": {"driver": "snn.dra.dev", "parameters": {}}}]),
        "spec.devices.config[0].requests[0]",
        CauseType.INVALID,
        "",
    ),
    (
        "too many config",
        _devices(config=[{"opaque": {"driver": "snn.dra.dev", "parameters": {}}}] * 33),
        "spec.devices.config",
        CauseType.TOO_MANY,
        "32",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "ctype", "fragment"), [b[1:] for b in BAD_SPECS], ids=[b[0] for b in BAD_SPECS]
)
def test_bad_claim_spec_is_rejected_at_path(mutate: Mutation, path: str, ctype: CauseType, fragment: str) -> None:
    c = claim()
    mutate(c)
    errs = fields(validate_object(c, None, "1.37"))
    assert path in errs, f"expected an error at {path}, got {list(errs)}"
    assert errs[path].type == ctype
    assert fragment in errs[path].message


def test_opaque_parameters_must_be_object() -> None:
    c = claim()
    c["spec"]["devices"]["config"][0]["opaque"]["parameters"] = [1, 2]
    errs = fields(validate_object(c, None, "1.37"))
    assert "spec.devices.config[0].opaque.parameters" in errs


def test_spec_is_immutable_on_update() -> None:
    old = claim()
    new = claim()
    new["spec"]["devices"]["requests"][0]["exactly"]["count"] = 3
    errs = fields(validate_object(new, old, "1.37"))
    assert "immutable" in errs["spec"].message


def test_update_does_not_recompile_stored_selectors() -> None:
    # A stored object whose selector no longer compiles (e.g. written by a newer server) still updates.
    old = claim()
    old["spec"]["devices"]["requests"][0]["exactly"]["selectors"] = [{"cel": {"expression": "future(device)"}}]
    assert any(e.field.endswith("cel.expression") for e in validate_object(old, None, "1.37"))
    new = allocated(old)
    assert validate_object(new, old, "1.37") == []


def test_gated_fields_follow_the_profile() -> None:
    c = claim()
    c["spec"]["devices"]["requests"][0]["exactly"]["capacity"] = {"requests": {"cores": "4"}}
    c["spec"]["devices"]["requests"][0]["exactly"]["tolerations"] = [{"operator": "Exists"}]
    assert validate_object(c, None, "1.37") == []
    errs = fields(validate_object(c, None, "1.34"))
    assert "DRAConsumableCapacity" in errs[f"{REQ0}.exactly.capacity"].message
    assert "DRADeviceTaints" in errs[f"{REQ0}.exactly.tolerations"].message


# ---- status ----------------------------------------------------------------------------------------------

STATUS_RESULTS = "status.allocation.devices.results"


def _status(mutator: Callable[[dict[str, Any]], None]) -> list[FieldError]:
    c = allocated(claim())
    mutator(c["status"])
    return validate_object(c, claim(), "1.37")


def _result(i: int) -> dict[str, Any]:
    return {"request": "chips", "driver": "snn.dra.dev", "pool": "p", "device": f"d{i}"}


BAD_STATUS: list[tuple[str, Callable[[dict[str, Any]], None], str, CauseType, str]] = [
    (
        "too many results",
        lambda s: s["allocation"]["devices"].update(results=[_result(i) for i in range(33)]),
        STATUS_RESULTS,
        CauseType.TOO_MANY,
        "32",
    ),
    (
        "result request",
        lambda s: s["allocation"]["devices"]["results"][0].update(request="ghost"),
        f"{STATUS_RESULTS}[0].request",
        CauseType.INVALID,
        "",
    ),
    (
        "result device",
        lambda s: s["allocation"]["devices"]["results"][0].update(device="Chip_0"),
        f"{STATUS_RESULTS}[0].device",
        CauseType.INVALID,
        "",
    ),
    (
        "result pool",
        lambda s: s["allocation"]["devices"]["results"][0].update(pool="a//b"),
        f"{STATUS_RESULTS}[0].pool",
        CauseType.INVALID,
        "",
    ),
    (
        "result driver",
        lambda s: s["allocation"]["devices"]["results"][0].update(driver="x" * 64),
        f"{STATUS_RESULTS}[0].driver",
        CauseType.TOO_LONG,
        "63",
    ),
    (
        "shareID case",
        lambda s: s["allocation"]["devices"]["results"][2].update(shareID=UID.upper()),
        f"{STATUS_RESULTS}[2].shareID",
        CauseType.INVALID,
        "lower-case",
    ),
    (
        "shareID form",
        lambda s: s["allocation"]["devices"]["results"][2].update(shareID="1234"),
        f"{STATUS_RESULTS}[2].shareID",
        CauseType.INVALID,
        "UUID",
    ),
    (
        "binding conditions alone",
        lambda s: s["allocation"]["devices"]["results"][0].update(bindingConditions=["Attached"]),
        f"{STATUS_RESULTS}[0].bindingFailureConditions",
        CauseType.REQUIRED,
        "",
    ),
    (
        "too many alloc config",
        lambda s: s["allocation"]["devices"].update(
            config=[{"source": "FromClass", "opaque": {"driver": "snn.dra.dev", "parameters": {}}}] * 65
        ),
        "status.allocation.devices.config",
        CauseType.TOO_MANY,
        "64",
    ),
    (
        "alloc config source",
        lambda s: s["allocation"]["devices"]["config"][0].update(source="FromNowhere"),
        "status.allocation.devices.config[0].source",
        CauseType.NOT_SUPPORTED,
        "",
    ),
    (
        "too many reservedFor",
        lambda s: s.update(reservedFor=[{"resource": "pods", "name": "p", "uid": f"u{i}"} for i in range(257)]),
        "status.reservedFor",
        CauseType.TOO_MANY,
        "256",
    ),
    (
        "duplicate reservedFor",
        lambda s: s.update(reservedFor=[{"resource": "pods", "name": "p", "uid": "u"}] * 2),
        "status.reservedFor[1].uid",
        CauseType.DUPLICATE,
        "",
    ),
    (
        "reservedFor uid",
        lambda s: s.update(reservedFor=[{"resource": "pods", "name": "p"}]),
        "status.reservedFor[0].uid",
        CauseType.REQUIRED,
        "",
    ),
    (
        "device not allocated",
        lambda s: s["devices"][0].update(device="chip-9"),
        "status.devices[0]",
        CauseType.INVALID,
        "allocated device",
    ),
    (
        "too many conditions",
        lambda s: s["devices"][0].update(
            conditions=[
                {"type": f"T{i}", "status": "True", "reason": "R", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                for i in range(9)
            ]
        ),
        "status.devices[0].conditions",
        CauseType.TOO_MANY,
        "8",
    ),
    (
        "condition status",
        lambda s: s["devices"][0]["conditions"][0].update(status="Maybe"),
        "status.devices[0].conditions[0].status",
        CauseType.NOT_SUPPORTED,
        "",
    ),
    (
        "data too large",
        lambda s: s["devices"][0].update(data={"x": "a" * 11000}),
        "status.devices[0].data",
        CauseType.TOO_LONG,
        "10240",
    ),
    (
        "too many ips",
        lambda s: s["devices"][0]["networkData"].update(ips=[f"10.0.0.{i}/24" for i in range(17)]),
        "status.devices[0].networkData.ips",
        CauseType.TOO_MANY,
        "16",
    ),
    (
        "bad ip",
        lambda s: s["devices"][0]["networkData"].update(ips=["10.0.0.300/24"]),
        "status.devices[0].networkData.ips[0]",
        CauseType.INVALID,
        "CIDR",
    ),
    (
        "interface name",
        lambda s: s["devices"][0]["networkData"].update(interfaceName="i" * 257),
        "status.devices[0].networkData.interfaceName",
        CauseType.TOO_LONG,
        "256",
    ),
    (
        "hardware address",
        lambda s: s["devices"][0]["networkData"].update(hardwareAddress="a" * 129),
        "status.devices[0].networkData.hardwareAddress",
        CauseType.TOO_LONG,
        "128",
    ),
    (
        "reserved without allocation",
        lambda s: s.pop("allocation"),
        "status.reservedFor",
        CauseType.FORBIDDEN,
        "not allocated",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "ctype", "fragment"), [b[1:] for b in BAD_STATUS], ids=[b[0] for b in BAD_STATUS]
)
def test_bad_claim_status_is_rejected_at_path(
    mutate: Callable[[dict[str, Any]], None], path: str, ctype: CauseType, fragment: str
) -> None:
    errs = fields(_status(mutate))
    assert path in errs, f"expected an error at {path}, got {list(errs)}"
    assert errs[path].type == ctype
    assert fragment in errs[path].message


def test_allocation_is_immutable_once_set() -> None:
    old = allocated(claim())
    new = copy.deepcopy(old)
    new["status"]["allocation"]["devices"]["results"][0]["device"] = "chip-7"
    new["status"]["devices"] = []
    assert "status.allocation" in fields(validate_object(new, old, "1.37"))


def test_template_rules() -> None:
    c = claim()
    tmpl = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "t", "namespace": "ml"},
        "spec": {"metadata": {"labels": {"app": "snn"}}, "spec": c["spec"]},
    }
    assert validate_object(tmpl, None, "1.37") == []
    bad = copy.deepcopy(tmpl)
    bad["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] = -1
    bad["spec"]["metadata"]["labels"] = {"app": "not valid!"}
    errs = fields(validate_object(bad, None, "1.37"))
    assert "spec.spec.devices.requests[0].exactly.count" in errs
    assert "spec.metadata.labels[app]" in errs
    changed = copy.deepcopy(tmpl)
    changed["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] = 5
    assert "immutable" in fields(validate_object(changed, tmpl, "1.37"))["spec"].message
