"""Read a ``SplitModel`` file; every problem is reported with its field path and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from snn_dra.api.split import SplitModel
from snn_dra.driver.yamlfile import YamlFileError, read_yaml


class SplitModelError(ValueError):
    """The model file is missing, not YAML, or invalid; ``problems`` holds (field path, what is wrong)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {loc or '(top level)'}: {msg}" for loc, msg in problems)
        super().__init__(f"invalid split model {source}:\n{lines}")


def load_model(path: str | Path) -> SplitModel:
    source = str(path)
    try:
        data = read_yaml(path)
    except YamlFileError as e:
        raise SplitModelError(source, [("", e.problem)]) from None
    return parse_model(data, source)


def parse_model(data: Any, source: str = "<split model>") -> SplitModel:
    """Validate parsed YAML. JSON mode keeps the schema strict (no "1" for 1) while enums accept their names."""
    if not isinstance(data, dict):
        raise SplitModelError(source, [("", f"expected a mapping of fields, got {type(data).__name__}")])
    try:
        return SplitModel.model_validate_json(json.dumps(data, default=str))
    except ValidationError as e:
        raise SplitModelError(source, [_describe(err) for err in e.errors()]) from None


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: Any) -> tuple[str, str]:
    loc: tuple[int | str, ...] = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    msg: str = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; fields are camelCase, e.g. spikeRateKEPS, stageLimits)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    return _loc(loc), msg
