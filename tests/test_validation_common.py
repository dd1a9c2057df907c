"""Shared field checks and the structural (schema) layer."""

from __future__ import annotations

import pytest

from snn_dra.driver.validation import CauseType, validate_object
from snn_dra.driver.validation import common as c
from snn_dra.driver.validation.structural import validate_structure


@pytest.mark.parametrize("name", ["snn.dra.dev", "gpu.example.com", "a", "SNN.Dra.Dev"])
def test_driver_name_ok(name: str) -> None:
    assert c.validate_driver_name(name, "d") == []


@pytest.mark.parametrize("name", ["", "-snn.dev", "snn_dra.dev", "a" * 64, "snn..dev"])
def test_driver_name_bad(name: str) -> None:
    assert c.validate_driver_name(name, "d")


@pytest.mark.parametrize("name", ["cores", "snn.dra.dev/cores", "_x1", "a" * 32])
def test_qualified_name_ok(name: str) -> None:
    assert c.validate_qualified_name(name, "q") == []


@pytest.mark.parametrize("name", ["core-count", "1cores", "a/b/c", "/x", "snn.dra.dev/", "a" * 33, "Bad_Domain!/x"])
def test_qualified_name_bad(name: str) -> None:
    assert c.validate_qualified_name(name, "q")


def test_pool_name() -> None:
    assert c.validate_pool_name("node-1/chips", "p") == []
    assert c.validate_pool_name("node-1//chips", "p")
    assert c.validate_pool_name("x" * 254, "p")[0].type == CauseType.TOO_LONG


def test_attribute_values() -> None:
    assert c.validate_attribute_value({"int": 3}, "a") == []
    assert c.validate_attribute_value({"version": "1.2.3-rc.1+b"}, "a") == []
    assert c.validate_attribute_value({}, "a")[0].type == CauseType.REQUIRED
    assert c.validate_attribute_value({"int": 1, "string": "x"}, "a")[0].type == CauseType.INVALID
    assert c.validate_attribute_value({"string": "x" * 65}, "a")[0].field == "a.string"
    assert c.validate_attribute_value({"version": "1.02.3"}, "a")[0].field == "a.version"
    assert c.validate_attribute_value({"ints": [1, 2]}, "a") != []  # list types need allow_lists
    assert c.validate_attribute_value({"ints": [1, 2]}, "a", allow_lists=True) == []


def test_uuid_quantity_labels() -> None:
    assert c.validate_uuid("4f2c7c0e-1b2a-4c3d-8e9f-0a1b2c3d4e5f", "u") == []
    assert c.validate_uuid("4F2C7C0E-1B2A-4C3D-8E9F-0A1B2C3D4E5F", "u")
    assert c.validate_quantity("2Gi", "q") == []
    assert c.validate_quantity("2 Gi", "q")
    assert c.validate_quantity("-1", "q", non_negative=True)
    assert c.validate_labels({"app.kubernetes.io/name": "snn"}, "l") == []
    assert c.validate_labels({"bad key!": "x"}, "l")
    assert c.validate_labels({"k": "-x"}, "l")[0].field == "l[k]"


def test_gates_by_profile() -> None:
    assert not c.gate_enabled("1.35", "DRAConsumableCapacity")
    assert c.gate_enabled("1.36", "DRAConsumableCapacity")
    assert c.taint_effects("1.34") == ["NoSchedule", "NoExecute"]
    assert "None" in c.taint_effects("1.37")


def test_structural_reports_every_schema_error_with_paths() -> None:
    obj = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "a", "namespace": "d"},
        "spec": {
            "devices": {"requests": [{"name": "r", "exactly": {"deviceClassName": "c", "count": "2", "atributes": 1}}]}
        },
    }
    errs = {e.field: e for e in validate_structure(obj, "1.37")}
    assert errs["spec.devices.requests[0].exactly.atributes"].type == CauseType.INVALID
    assert "unknown field" in errs["spec.devices.requests[0].exactly.atributes"].message
    assert errs["spec.devices.requests[0].exactly.count"].type == CauseType.TYPE_INVALID


def test_structural_required_and_unknown_profile() -> None:
    obj = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": "a"},
        "spec": {"taint": {}},
    }
    errs = {e.field: e for e in validate_structure(obj, "1.37")}
    assert errs["spec.taint.key"].type == CauseType.REQUIRED
    with pytest.raises(ValueError, match=r"1\.34"):
        validate_object(obj, None, "1.30")


def test_unknown_kind_is_not_supported() -> None:
    obj = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimList", "metadata": {}, "items": []}
    errs = validate_object(obj, None, "1.37")
    assert any(e.field == "kind" and e.type == CauseType.NOT_SUPPORTED for e in errs)


def test_device_taint_effect_none_only_from_136() -> None:
    taint = {"key": "snn.dra.dev/degraded", "effect": "None"}
    assert c.validate_device_taint(taint, "t", "1.37") == []
    errs = c.validate_device_taint(taint, "t", "1.34")
    assert errs[0].field == "t.effect" and errs[0].type == CauseType.NOT_SUPPORTED


def test_conditions_rules() -> None:
    good = {"type": "Ready", "status": "True", "reason": "Prepared", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    assert c.validate_conditions([good], "s", 8) == []
    errs = {e.field: e for e in c.validate_conditions([good, dict(good, reason="bad reason")], "s", 8)}
    assert errs["s[1].type"].type == CauseType.DUPLICATE
    assert errs["s[1].reason"].type == CauseType.INVALID
    assert c.validate_conditions([good] * 9, "s", 8)[0].type == CauseType.TOO_MANY


def test_beta_versions_get_schema_checks_only() -> None:
    beta = {
        "apiVersion": "resource.k8s.io/v1beta1",
        "kind": "ResourceClaim",
        "metadata": {"name": "a", "namespace": "d"},
        "spec": {"devices": {"requests": [{"name": "r", "deviceClassName": "c"}]}},
    }
    assert validate_object(beta, None, "1.34") == []
    beta["spec"]["devices"]["requests"][0]["count"] = "x"
    assert [e.field for e in validate_object(beta, None, "1.34")] == ["spec.devices.requests[0].count"]
