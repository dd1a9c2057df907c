"""Hardware backends: the only code that knows how SNN hardware is found and reached.

``load_node_config`` turns an operator's YAML file into a validated :class:`NodeConfig` (or one
error listing every problem with its field path), and ``load_backend`` picks the backend it names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from snn_dra.api.nodeconfig import BoardConfig, NodeConfig
from snn_dra.driver.backends.base import Backend, BackendError, NodeConfigError
from snn_dra.driver.backends.families import CHIP_SPECS, spec_for
from snn_dra.driver.backends.simulated import SimulatedBackend
from snn_dra.driver.backends.sysfs import SysfsBackend
from snn_dra.driver.yamlfile import YamlFileError, read_yaml

__all__ = [
    "Backend",
    "BackendError",
    "NodeConfigError",
    "SimulatedBackend",
    "SysfsBackend",
    "load_backend",
    "load_node_config",
    "parse_node_config",
]


def load_backend(config: NodeConfig, node_name: str) -> Backend:
    """The backend ``config.backend`` names, for this node."""
    if config.backend == "sysfs":
        return SysfsBackend(config, node_name)
    return SimulatedBackend(config, node_name)


def load_node_config(path: str | Path) -> NodeConfig:
    """Read and validate a node config file; every problem is reported with its field path."""
    source = str(path)
    try:
        data = read_yaml(path)
    except YamlFileError as e:
        raise NodeConfigError(source, [("", e.problem)]) from None
    if data is None:
        raise NodeConfigError(
            source,
            [("", "the file is empty (no YAML document); write a NodeConfig into it (see deploy/node-configs/)")],
        )
    return parse_node_config(data, source)


def parse_node_config(data: Any, source: str = "<node config>") -> NodeConfig:
    """Validate already-parsed YAML/JSON data; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise NodeConfigError(source, [("", f"expected a mapping of fields, got {type(data).__name__}")])
    try:
        config = NodeConfig.model_validate(data)
    except ValidationError as e:
        problems = [_describe(err) for err in e.errors()]
        # The family checks need validated boards: run them on every board that is valid on its own, so
        # the operator sees those problems in the same run.
        boards = data.get("boards")
        for b, raw in enumerate(boards if isinstance(boards, list) else ()):
            try:
                board = BoardConfig.model_validate(raw)
            except ValidationError:
                continue
            problems += _board_problems(b, board)
        raise NodeConfigError(source, sorted(problems, key=_path_order)) from None
    problems = _family_problems(config)
    if problems:
        raise NodeConfigError(source, problems)
    return config


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _path_order(problem: tuple[str, str]) -> float:
    """Board by board (a stable sort keeps pydantic's field order inside a board), then the rest."""
    found = re.match(r"boards\[(\d+)\]", problem[0])
    return int(found.group(1)) if found else float("inf")


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last field of ``loc``, to list what fields it allows."""
    model: type[BaseModel] = NodeConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        candidates = [a for a in _types_in(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return None
        model = candidates[0]
    return model


def _types_in(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [t for a in args for t in _types_in(a)]


def _describe(err: Any) -> tuple[str, str]:
    loc: tuple[int | str, ...] = tuple(err["loc"])
    msg: str = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "required field is missing; add it"
    elif err["type"] == "extra_forbidden":
        model = _model_at(loc)
        if model is not None:
            allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
            msg = f"unknown field; allowed fields: {allowed}"
        else:
            msg = "unknown field"
    return _loc(loc), msg


def _family_problems(config: NodeConfig) -> list[tuple[str, str]]:
    """Checks that need the chip figures (which the api package cannot import)."""
    return [p for b, board in enumerate(config.boards) for p in _board_problems(b, board)]


def _board_problems(b: int, board: BoardConfig) -> list[tuple[str, str]]:
    """Board ``b``'s problems against its family's chip figures, with the field path of each."""
    problems: list[tuple[str, str]] = []
    try:
        spec = spec_for(board.family, board.chip_model)
    except ValueError as e:
        return [(f"boards[{b}].chipModel", str(e))]
    for chip, cores in board.fused_cores.items():
        bad = [c for c in cores if c >= spec.nominal_cores]
        if bad:
            problems.append(
                (
                    f"boards[{b}].fusedCores.{chip}",
                    f"core {bad[0]} is outside 0..{spec.nominal_cores - 1} of a {spec.model} chip",
                )
            )
        elif len(cores) >= spec.nominal_cores:
            problems.append(
                (
                    f"boards[{b}].fusedCores.{chip}",
                    "fuses every core; list the chip in unhealthyChips or drop the board instead",
                )
            )
    if board.ethernet_interface is not None and CHIP_SPECS[spec.model].attachment != "ethernet":
        problems.append((f"boards[{b}].ethernetInterface", f"only Ethernet-attached chips use one, not {spec.model}"))
    if board.address is not None and CHIP_SPECS[spec.model].attachment != "ethernet":
        problems.append((f"boards[{b}].address", f"only Ethernet-attached boards have one, not {spec.model}"))
    return problems
