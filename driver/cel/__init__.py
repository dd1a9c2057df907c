"""Kubernetes DRA CEL selectors (resource.k8s.io/v1 ``device`` environment) behind a replaceable engine adapter."""

from snn_dra.driver.cel.errors import CelCompileError, CelError, CelRuntimeError
from snn_dra.driver.cel.selector import (
    MAX_COST,
    MAX_EXPRESSION_LENGTH,
    DeviceView,
    Selector,
    compile_selector,
    device_view,
    evaluate_many,
    matches_all,
)

__all__ = [
    "MAX_COST",
    "MAX_EXPRESSION_LENGTH",
    "CelCompileError",
    "CelError",
    "CelRuntimeError",
    "DeviceView",
    "Selector",
    "compile_selector",
    "device_view",
    "evaluate_many",
    "matches_all",
]
