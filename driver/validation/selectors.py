"""CEL device selectors and opaque device configuration, shared by DeviceClass and ResourceClaim validation.

Upstream compiles only new or changed selector expressions on update ("stored" ones compiled once already) and
checks the size of opaque parameters only when they are new or changed; ``stored`` sets carry that knowledge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snn_dra.driver.cel import MAX_EXPRESSION_LENGTH, CelCompileError, compile_selector
from snn_dra.driver.validation.common import (
    as_mapping,
    check_list,
    child,
    forbidden,
    index,
    invalid,
    required,
    validate_driver_name,
    validate_opaque_parameters,
)
from snn_dra.driver.validation.errors import CauseType, FieldError

DEVICE_SELECTORS_MAX_SIZE = 32


def collect_expressions(node: Any) -> set[str]:
    """Every ``cel.expression`` anywhere under ``node`` (the stored expressions of the old object)."""
    found: set[str] = set()

    def walk(n: Any) -> None:
        if isinstance(n, Mapping):
            cel = n.get("cel")
            if isinstance(cel, Mapping) and isinstance(cel.get("expression"), str):
                found.add(cel["expression"])
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return found


def validate_selectors(value: Any, path: str, stored: set[str]) -> list[FieldError]:
    selectors, errs = check_list(value, path, DEVICE_SELECTORS_MAX_SIZE, "selectors")
    for i, sel in enumerate(selectors):
        p = index(path, i)
        if not isinstance(sel, Mapping) or not isinstance(sel.get("cel"), Mapping):
            errs.append(required(child(p, "cel"), "a selector needs cel.expression (the only selector type)"))
            continue
        errs.extend(validate_cel_expression(sel["cel"].get("expression"), child(child(p, "cel"), "expression"), stored))
    return errs


def validate_cel_expression(expression: Any, path: str, stored: set[str]) -> list[FieldError]:
    if expression is None or expression == "":
        return [required(path, "a CEL expression such as 'device.driver == \"snn.dra.dev\"' is required")]
    if not isinstance(expression, str):
        return [FieldError(CauseType.TYPE_INVALID, path, "Invalid value: must be a string")]
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return [
            FieldError(
                CauseType.TOO_LONG,
                path,
                f"Too long: may not be more than {MAX_EXPRESSION_LENGTH} bytes (has {len(expression)}); "
                "split it into several selectors, which must all match",
            )
        ]
    if expression in stored:
        return []
    try:
        compile_selector(expression)
    except CelCompileError as e:
        if e.reason == "too_costly":
            return [forbidden(path, f"too complex, exceeds cost limit: {e.message}")]
        if e.reason == "required":
            return [required(path, e.message)]
        if e.reason == "result_type":
            return [invalid(path, expression, e.message)]
        return [invalid(path, expression, f"compilation failed: {e.message}")]
    return []


def validate_opaque(
    value: Any, path: str, stored_parameters: list[Any], *, driver_check: Callable[[Any, str], list[FieldError]]
) -> list[FieldError]:
    """``opaque: {driver, parameters}``; the 10 KiB size limit applies to parameters not stored before."""
    if not isinstance(value, Mapping):
        return [required(path, "opaque configuration with driver and parameters is required")]
    errs = driver_check(value.get("driver"), child(path, "driver"))
    params = value.get("parameters")
    errs.extend(
        validate_opaque_parameters(params, child(path, "parameters"), check_size=params not in stored_parameters)
    )
    return errs


def stored_parameters(old_configs: Any) -> list[Any]:
    out: list[Any] = []
    for cfg in old_configs if isinstance(old_configs, list) else []:
        params = as_mapping(as_mapping(cfg).get("opaque")).get("parameters")
        if params is not None:
            out.append(params)
    return out


def validate_config_entry(
    cfg: Any, path: str, stored: list[Any], extra: Callable[[Mapping[str, Any], str], list[FieldError]] | None = None
) -> list[FieldError]:
    """One ``config[]`` entry with its ``opaque`` member (the only configuration type)."""
    if not isinstance(cfg, Mapping):
        return [required(path, "a configuration entry is required")]
    errs: list[FieldError] = []
    if extra is not None:
        errs.extend(extra(cfg, path))
    if cfg.get("opaque") is None:
        errs.append(required(child(path, "opaque"), "opaque configuration (driver + parameters) is required"))
    else:
        errs.extend(validate_opaque(cfg["opaque"], child(path, "opaque"), stored, driver_check=validate_driver_name))
    return errs
