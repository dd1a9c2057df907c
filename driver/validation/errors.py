"""Field errors in the shape the API server reports them (``Status.details.causes``).

Both the slice builder (before publishing) and the embedded API server (on every write) collect
these, so an operator sees the same message offline and from ``kubectl apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CauseType(StrEnum):
    """Values of ``StatusCause.reason`` the real API server uses for field errors."""

    REQUIRED = "FieldValueRequired"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    DUPLICATE = "FieldValueDuplicate"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    FORBIDDEN = "FieldValueForbidden"
    TYPE_INVALID = "FieldValueTypeInvalid"
    NOT_FOUND = "FieldValueNotFound"
    INTERNAL = "InternalError"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One violated rule: the JSON path of the field (``spec.devices[3].name``) and why."""

    type: CauseType
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ObjectInvalidError(Exception):
    """An object broke one or more rules; ``errors`` lists every one, not just the first."""

    def __init__(self, kind: str, name: str, errors: list[FieldError]) -> None:
        self.kind = kind
        self.name = name
        self.errors = errors
        detail = "; ".join(str(e) for e in errors)
        super().__init__(f'{kind} "{name}" is invalid: {detail}')
