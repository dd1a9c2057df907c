"""The two ways a selector can fail; both are errors, never "device does not match"."""

from __future__ import annotations


class CelError(Exception):
    """Base of selector errors; ``expression`` is the selector text."""

    def __init__(self, message: str, expression: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression


class CelCompileError(CelError):
    """The selector is invalid: syntax, types, result not bool, too long or estimated too costly.

    ``reason`` is one of ``"required"``, ``"too_long"``, ``"too_costly"``, ``"result_type"`` (checked, but not a
    bool) or ``"invalid"`` (the checker's issues) so API validation can report the matching field error type
    (Required / TooLong / Forbidden / Invalid) and wording as the API server does.
    """

    def __init__(self, message: str, expression: str = "", *, reason: str = "invalid", cost: int | None = None) -> None:
        super().__init__(message, expression)
        self.reason = reason
        self.cost = cost


class CelRuntimeError(CelError):
    """Evaluation failed (missing attribute, bad quantity, budget exhausted, non-bool result).

    The scheduler treats this as a failure of the whole scheduling attempt, not as a non-matching device.
    """
