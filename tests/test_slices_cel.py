"""Published slices against the project's CEL engine: no selector on a published attribute ever hits a
missing key (which would abort scheduling), and type-guarded capacity selectors work on every device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from snn_dra.api import attributes as attr
from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.cel import compile_selector, device_view
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices

REPO = Path(__file__).resolve().parent.parent
NODE_CONFIGS = sorted((REPO / "deploy" / "node-configs").glob("*.yaml"))
INT_ATTRIBUTES = [
    attr.CHIP_X, attr.CHIP_Y, attr.CHIP_Z, attr.HOPS_TO_HOST, attr.CORE_COUNT,
    attr.CORE_X, attr.CORE_Y, attr.CORE_WIDTH, attr.CORE_HEIGHT,
]  # fmt: skip
STRING_ATTRIBUTES = [attr.TYPE, attr.FAMILY, attr.MODEL, attr.CHIP_ID, attr.CHIP_SERIAL, attr.BOARD_ID, attr.SYSTEM_ID]


def published(path: Path) -> list[dict[str, Any]]:
    config = load_node_config(path)
    inventory = load_backend(config, "node-a").discover()
    slices = build_slices(build_model(inventory, config.publish), "node-a")
    return [d for s in slices for d in s["spec"].get("devices") or ()]


@pytest.mark.parametrize("path", NODE_CONFIGS, ids=lambda p: p.stem)
def test_every_attribute_is_readable_on_every_device(path: Path) -> None:
    a = 'device.attributes["snn.dra.dev"]'
    expression = " && ".join(
        [f"{a}.{name} >= 0" for name in INT_ATTRIBUTES]
        + [f'{a}.{name} != ""' for name in STRING_ATTRIBUTES]
        + [f'{a}.{attr.VERSION}.isGreaterThan(semver("0.0.1"))']
    )
    selector = compile_selector(expression)
    devices = published(path)
    assert all(selector.matches(device_view("snn.dra.dev", d)) for d in devices)


@pytest.mark.parametrize("path", NODE_CONFIGS, ids=lambda p: p.stem)
def test_type_guarded_capacity_selectors_never_fail(path: Path) -> None:
    cores = compile_selector(
        'device.attributes["snn.dra.dev"].type in ["chip", "coreGroup", "neuronCore"] && '
        'device.capacity["snn.dra.dev"].cores.compareTo(quantity("4")) >= 0'
    )
    shared = compile_selector(
        'device.attributes["snn.dra.dev"].type == "spikeRouter" && '
        'device.capacity["snn.dra.dev"].eventThroughputMEPS.isGreaterThan(quantity("100"))'
    )
    devices = published(path)
    views = [device_view("snn.dra.dev", d) for d in devices]
    with_cores = [d for d, v in zip(devices, views, strict=True) if cores.matches(v)]
    assert with_cores and all(int(d["capacity"]["cores"]["value"]) >= 4 for d in with_cores)
    routers = [d for d, v in zip(devices, views, strict=True) if shared.matches(v)]
    assert {d["attributes"]["type"]["string"] for d in routers} == {"spikeRouter"}
