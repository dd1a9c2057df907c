"""What the driver should publish, derived from the project's own model of a node config."""

from __future__ import annotations

from collections import Counter
from typing import Any

from snn_dra.driver.backends import load_backend, parse_node_config
from snn_dra.driver.model import build_model


def expected_types(node_config: dict[str, Any], node: str, source: str = "the installed node config") -> Counter[str]:
    """Device counts per type that the project's own model derives from a node config."""
    config = parse_node_config(node_config, source)
    model = build_model(load_backend(config, node).discover(), config.publish)
    return Counter(str(d.type) for d in model.devices)
