"""Reading a user's YAML file (node configs, split models) with one wording for what can go wrong with the file
itself, so every command reports a missing, unreadable or malformed file the same way before its own schema
checks run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlFileError(ValueError):
    """The file is missing, unreadable or not YAML; ``problem`` says which, with the line and column if known."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


def read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise YamlFileError("file not found") from None
    except OSError as e:
        raise YamlFileError(f"cannot read: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise YamlFileError(f"not valid YAML{at}: {getattr(e, 'problem', e)}") from None
