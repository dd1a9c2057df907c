"""DRA selector semantics: the Kubernetes device environment, its libraries and the error contract."""

from __future__ import annotations

from typing import Any

import pytest

from snn_dra.driver.cel import (
    MAX_EXPRESSION_LENGTH,
    CelCompileError,
    CelRuntimeError,
    compile_selector,
    device_view,
    matches_all,
)

DRIVER = "snn.dra.dev"

DEVICE: dict[str, Any] = {
    "name": "chip-0",
    "attributes": {
        "type": {"string": "chip"},
        "family": {"string": "loihi2"},
        "cores": {"int": 128},
        "healthy": {"bool": True},
        "firmware": {"version": "1.4.0-rc.2"},
        "example.com/rack": {"string": "r7"},
    },
    "capacity": {"cores": {"value": "128"}, "memory": {"value": "2Gi"}, "example.com/power": {"value": "1500m"}},
}


@pytest.fixture(scope="module")
def dev() -> Any:
    return device_view(DRIVER, DEVICE)


MATCHES = [
    ('device.driver == "snn.dra.dev"', True),
    ('device.attributes["snn.dra.dev"].type == "chip"', True),
    ('device.attributes["snn.dra.dev"].cores >= 64 && device.attributes["snn.dra.dev"].cores < 129', True),
    ('device.attributes["snn.dra.dev"].cores > 128', False),
    ('device.attributes["snn.dra.dev"].healthy', True),
    # names without a domain are keyed under the driver; names with one under that domain
    ('device.attributes["example.com"].rack == "r7"', True),
    ('"rack" in device.attributes["example.com"] && !("rack" in device.attributes["snn.dra.dev"])', True),
    # an unknown domain is an empty map
    ('device.attributes["other.io"].size() == 0', True),
    ('has(device.attributes["other.io"].x)', False),
    ('"other.io" in device.attributes', False),  # membership does not see the default empty map
    ('has(device.attributes["snn.dra.dev"].cores)', True),
    ('device.attributes["snn.dra.dev"].?missing.orValue(7) == 7', True),
    ('device.attributes["snn.dra.dev"].?cores.orValue(7) == 128', True),
    ('device.capacity["other.io"].size() == 0', True),
    # quantity library
    ('device.capacity["snn.dra.dev"].memory.compareTo(quantity("1Gi")) > 0', True),
    ('device.capacity["snn.dra.dev"].memory.isLessThan(quantity("2049Mi"))', True),
    ('device.capacity["snn.dra.dev"].memory.isGreaterThan(quantity("3G"))', False),
    ('device.capacity["example.com"].power.compareTo(quantity("1.5")) == 0', True),
    ('device.capacity["snn.dra.dev"].cores.add(quantity("500m")).compareTo(quantity("128.5")) == 0', True),
    ('device.capacity["snn.dra.dev"].cores.sub(28).asInteger() == 100', True),
    ('quantity("-3").sign() == -1 && quantity("0").sign() == 0', True),
    ('quantity("1500m").isInteger() == false && quantity("2k").isInteger()', True),
    ('quantity("1500m").asApproximateFloat() == 1.5', True),
    ('isQuantity("2Gi") && !isQuantity("2 Gi")', True),
    # semver library
    ('device.attributes["snn.dra.dev"].firmware.isGreaterThan(semver("1.3.9"))', True),
    ('device.attributes["snn.dra.dev"].firmware.isLessThan(semver("1.4.0"))', True),  # prerelease < release
    ('device.attributes["snn.dra.dev"].firmware.compareTo(semver("1.4.0-rc.10")) < 0', True),  # numeric ids
    (
        'device.attributes["snn.dra.dev"].firmware.major() == 1 && '
        'device.attributes["snn.dra.dev"].firmware.minor() == 4',
        True,
    ),
    ('semver("1.0.0+build.5").compareTo(semver("1.0.0")) == 0', True),
    ('semver("v1.2", true).patch() == 0 && semver("v1.2", true).minor() == 2', True),
    ('isSemver("1.2.3") && !isSemver("1.02.3") && isSemver("v1.02", true)', True),
    # standard + extensions
    ('device.attributes["snn.dra.dev"].family.startsWith("loihi")', True),
    ('device.attributes["snn.dra.dev"].family.upperAscii() == "LOIHI2"', True),
    ('device.attributes["snn.dra.dev"].family.matches("^loi.i[0-9]$")', True),
    ('device.attributes["snn.dra.dev"].family.split("i").size() == 3', True),
    ('cel.bind(c, device.attributes["snn.dra.dev"].cores, c > 100 && c < 200)', True),
    ('device.attributes["snn.dra.dev"].cores == 128.0', True),  # cross-type numeric comparison
    ('device.attributes.exists(d, d == "example.com")', True),
    ("device.allowMultipleAllocations == false", True),
]


@pytest.mark.parametrize(("expression", "expected"), MATCHES)
def test_selector_matrix(dev: Any, expression: str, expected: bool) -> None:
    assert compile_selector(expression).matches(dev) is expected


def test_allow_multiple_allocations_and_list_attributes() -> None:
    d = device_view(
        DRIVER,
        {"name": "router", "allowMultipleAllocations": True, "attributes": {"ports": {"ints": [1, 2, 3]}}},
    )
    assert compile_selector("device.allowMultipleAllocations").matches(d)
    assert compile_selector('2 in device.attributes["snn.dra.dev"].ports').matches(d)


def test_missing_attribute_is_a_runtime_error_with_hint(dev: Any) -> None:
    sel = compile_selector('device.attributes["snn.dra.dev"].nosuch == 1')
    with pytest.raises(CelRuntimeError, match=r"no such key: nosuch.*has\(") as info:
        sel.matches(dev)
    assert info.value.expression == sel.expression
    # memoised errors are raised again, never turned into False
    with pytest.raises(CelRuntimeError):
        sel.matches(dev)
    with pytest.raises(CelRuntimeError):
        sel.evaluate(dev)


def test_non_bool_result_is_an_error(dev: Any) -> None:
    with pytest.raises(CelCompileError, match="must evaluate to bool"):
        compile_selector("1 + 1")
    dyn = compile_selector('device.attributes["snn.dra.dev"].cores')  # dyn: only known at runtime
    with pytest.raises(CelRuntimeError, match="must evaluate to bool, got int"):
        dyn.matches(dev)


@pytest.mark.parametrize(
    "expression",
    [
        'quantity("12 apples").sign() == 1',
        'semver("1.2").major() == 1',
        'quantity("0.5").asInteger() == 0',
        "1 / 0 == 1",
    ],
)
def test_library_errors_are_runtime_errors(dev: Any, expression: str) -> None:
    with pytest.raises(CelRuntimeError):
        compile_selector(expression).matches(dev)


def test_syntax_error_has_position() -> None:
    with pytest.raises(CelCompileError) as info:
        compile_selector('device.attributes["snn.dra.dev"].cores == ')
    assert info.value.reason == "invalid"
    assert info.value.message.startswith("ERROR: <input>:1:43: Syntax error")
    assert "Syntax error" in info.value.message


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ('device.driver + 1 == "x"', "no matching overload"),
        ("nodevice.x == 1", "undeclared reference"),
        ("device.foo == 1", "undefined field 'foo' on device"),
        ('quantity("1").value == "1"', "kubernetes.Quantity has no field"),
        ('quantity("1").compareTo(semver("1.0.0")) == 0', "no matching overload"),
        ('device.attributes["d"].x.nosuchfn()', "undeclared reference"),
    ],
)
def test_type_errors_are_compile_errors(expression: str, fragment: str) -> None:
    with pytest.raises(CelCompileError, match=fragment):
        compile_selector(expression)


def test_too_long_is_rejected_before_compiling() -> None:
    expression = "true" + " && true" * ((MAX_EXPRESSION_LENGTH // 8) + 1)
    assert len(expression) > MAX_EXPRESSION_LENGTH
    with pytest.raises(CelCompileError, match="at most 10240") as info:
        compile_selector(expression)
    assert info.value.reason == "too_long"


def test_empty_expression_is_required() -> None:
    with pytest.raises(CelCompileError) as info:
        compile_selector("  ")
    assert info.value.reason == "required"


def test_cost_estimate_rejects_nested_comprehensions() -> None:
    cheap = compile_selector('device.attributes.all(d, device.attributes[d].all(k, k != ""))')
    assert cheap.cost < 100_000
    costly = (
        "device.attributes.exists(a, device.attributes[a].exists(b, "
        "device.attributes.exists(c, device.attributes[c].exists(e, a + b + c + e == 'x'))))"
    )
    with pytest.raises(CelCompileError, match="exceeds the limit of 1000000") as info:
        compile_selector(costly)
    assert info.value.reason == "too_costly"
    assert info.value.cost is not None and info.value.cost > 1_000_000


def test_iteration_budget_is_a_runtime_error(dev: Any) -> None:
    big = "[" + ",".join(["1"] * 150) + "]"
    sel = compile_selector(f"{big}.all(i, {big}.all(j, i == j))")
    with pytest.raises(CelRuntimeError, match="budget"):
        sel.evaluate(dev)


def test_compiled_selectors_are_cached() -> None:
    a = compile_selector('device.attributes["snn.dra.dev"].cores == 12345')
    assert compile_selector('device.attributes["snn.dra.dev"].cores == 12345') is a


def test_memo_follows_device_content() -> None:
    sel = compile_selector('device.attributes["snn.dra.dev"].cores == 4')
    four = device_view(DRIVER, {"name": "a", "attributes": {"cores": {"int": 4}}})
    eight = device_view(DRIVER, {"name": "a", "attributes": {"cores": {"int": 8}}})
    assert sel.matches(four) is True
    assert sel.matches(eight) is False
    other_driver = device_view("other.io", {"name": "a", "attributes": {"cores": {"int": 4}}})
    with pytest.raises(CelRuntimeError):  # keyed under other.io: snn.dra.dev domain is empty
        sel.matches(other_driver)


def test_matches_all_short_circuits_and_raises(dev: Any) -> None:
    ok = compile_selector('device.driver == "snn.dra.dev"')
    no = compile_selector('device.driver == "x"')
    bad = compile_selector('device.attributes["snn.dra.dev"].zzz')
    assert matches_all([ok], dev)
    assert not matches_all([no, bad], dev)
    with pytest.raises(CelRuntimeError):
        matches_all([ok, bad], dev)


def test_compile_errors_are_cached_and_raised_each_time() -> None:
    for _ in range(2):
        with pytest.raises(CelCompileError, match="Syntax error") as info:
            compile_selector("device.driver == == 1")
        assert info.value.reason == "invalid"
