"""Quantities stored the way the real API server stores them: in canonical text, on every write.

A real server decodes each quantity and re-encodes it, so ``"100000"`` is read back as ``"100k"`` and a JSON
number ``1.5`` as ``"1500m"`` (rules in :mod:`snn_dra.driver.quantity`). Clients tested only against a server that
echoed their spelling would miss that, as the slice publisher once did (it rewrote its slices forever). Text that
is no quantity is left alone for validation to report with its field path.
"""

from __future__ import annotations

from typing import Any

from snn_dra.driver.quantity import QuantityError, canonical, json_text
from snn_dra.driver.quantity_paths import QUANTITY_PATHS, map_quantities


def _canonical_or_as_is(raw: Any) -> Any:
    text = json_text(raw)
    if text is None:
        return raw
    try:
        return canonical(text)
    except QuantityError:
        return raw


def canonicalize_quantities(resource: str, obj: dict[str, Any]) -> None:
    """Rewrite, in place, every quantity of ``obj`` (an object of ``resource``, plural name) in canonical text."""
    paths = QUANTITY_PATHS.get(resource)
    if paths:
        map_quantities(obj, paths, _canonical_or_as_is)
