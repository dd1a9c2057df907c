"""DeviceClass and DeviceTaintRule validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snn_dra.driver.validation import CauseType, FieldError, validate_object
from snn_dra.driver.validation.common import validate_object_meta


def fields(errors: list[FieldError]) -> dict[str, FieldError]:
    return {e.field: e for e in errors}


def device_class() -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "snn-chip"},
        "spec": {
            "selectors": [{"cel": {"expression": 'device.driver == "snn.dra.dev"'}}],
            "config": [{"opaque": {"driver": "snn.dra.dev", "parameters": {"kind": "ChipConfig"}}}],
            "extendedResourceName": "snn.dra.dev/chip",
        },
    }


def test_good_class_is_accepted() -> None:
    assert validate_object(device_class(), None, "1.37") == []


@pytest.mark.parametrize(
    ("spec_update", "path", "ctype"),
    [
        ({"selectors": [{"cel": {"expression": "device.driver"}}] * 33}, "spec.selectors", CauseType.TOO_MANY),
        (
            {"selectors": [{"cel": {"expression": "device.driver =="}}]},
            "spec.selectors[0].cel.expression",
            CauseType.INVALID,
        ),
        ({"selectors": [{"cel": {"expression": "2"}}]}, "spec.selectors[0].cel.expression", CauseType.INVALID),
        ({"config": [{"opaque": {"driver": "snn.dra.dev", "parameters": {}}}] * 33}, "spec.config", CauseType.TOO_MANY),
        (
            {"config": [{"opaque": {"driver": "", "parameters": {}}}]},
            "spec.config[0].opaque.driver",
            CauseType.REQUIRED,
        ),
        ({"config": [{"opaque": {"driver": "snn.dra.dev"}}]}, "spec.config[0].opaque.parameters", CauseType.REQUIRED),
        ({"extendedResourceName": "kubernetes.io/chip"}, "spec.extendedResourceName", CauseType.INVALID),
        ({"extendedResourceName": "chip"}, "spec.extendedResourceName", CauseType.INVALID),
    ],
)
def test_bad_class_is_rejected(spec_update: dict[str, Any], path: str, ctype: CauseType) -> None:
    dc = device_class()
    dc["spec"].update(spec_update)
    errs = fields(validate_object(dc, None, "1.37"))
    assert path in errs, list(errs)
    assert errs[path].type == ctype


def test_object_metadata_is_left_to_the_api_server_but_checkable_offline() -> None:
    dc = device_class()
    dc["metadata"]["name"] = "SNN chip"
    assert validate_object(dc, None, "1.37") == []  # the embedded store runs the generic metadata rules
    errs = fields(validate_object_meta(dc["metadata"], namespaced=False))
    assert errs["metadata.name"].type == CauseType.INVALID


def test_stored_selectors_and_parameters_are_not_rechecked_on_update() -> None:
    old = device_class()
    old["spec"]["selectors"] = [{"cel": {"expression": "future(device)"}}]
    old["spec"]["config"][0]["opaque"]["parameters"] = {"blob": "a" * 11000}
    assert {"spec.selectors[0].cel.expression", "spec.config[0].opaque.parameters"} <= set(
        fields(validate_object(old, None, "1.37"))
    )
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"tier": "gold"}
    assert validate_object(new, old, "1.37") == []
    # ... but a changed expression is compiled
    new["spec"]["selectors"] = [{"cel": {"expression": "future(device) || true"}}]
    assert "spec.selectors[0].cel.expression" in fields(validate_object(new, old, "1.37"))


def test_extended_resource_name_is_gated_before_136() -> None:
    errs = fields(validate_object(device_class(), None, "1.35"))
    assert "DRAExtendedResource" in errs["spec.extendedResourceName"].message


def taint_rule() -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": "maintenance"},
        "spec": {
            "deviceSelector": {"driver": "snn.dra.dev", "pool": "node-1", "device": "chip-0"},
            "taint": {"key": "snn.dra.dev/maintenance", "value": "firmware", "effect": "NoExecute"},
        },
    }


def test_good_taint_rule_is_accepted() -> None:
    assert validate_object(taint_rule(), None, "1.37") == []


@pytest.mark.parametrize(
    ("mutate", "path", "ctype"),
    [
        (lambda r: r["spec"]["taint"].update(effect="Evict"), "spec.taint.effect", CauseType.NOT_SUPPORTED),
        (lambda r: r["spec"]["taint"].update(key="bad key"), "spec.taint.key", CauseType.INVALID),
        (lambda r: r["spec"]["taint"].update(value="v" * 64), "spec.taint.value", CauseType.INVALID),
        (
            lambda r: r["spec"]["deviceSelector"].update(device="Chip_0"),
            "spec.deviceSelector.device",
            CauseType.INVALID,
        ),
        (lambda r: r["spec"]["deviceSelector"].update(driver="-x-"), "spec.deviceSelector.driver", CauseType.INVALID),
        (lambda r: r["spec"]["taint"].update(effect=""), "spec.taint.effect", CauseType.REQUIRED),
    ],
)
def test_bad_taint_rule_is_rejected(mutate: Any, path: str, ctype: CauseType) -> None:
    r = taint_rule()
    mutate(r)
    errs = fields(validate_object(r, None, "1.37"))
    assert path in errs, list(errs)
    assert errs[path].type == ctype


def test_taint_rule_v1_not_served_before_137() -> None:
    errs = fields(validate_object(taint_rule(), None, "1.36"))
    assert errs["apiVersion"].type == CauseType.NOT_SUPPORTED


def test_taint_rule_status_conditions_limit() -> None:
    r = taint_rule()
    cond = {"status": "True", "reason": "Applied", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    r["status"] = {"conditions": [dict(cond, type=f"T{i}") for i in range(9)]}
    errs = fields(validate_object(r, None, "1.37"))
    assert errs["status.conditions"].type == CauseType.TOO_MANY
