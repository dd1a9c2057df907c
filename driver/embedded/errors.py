"""API errors in the shape the real API server returns them (a ``Status`` object).

The store raises these so that in-process callers (scheduler, kubelet emulation) and HTTP clients see the
same reason, code and message a cluster would give them; the HTTP layer only serialises ``status()``.
"""

from __future__ import annotations

from typing import Any

from snn_dra.driver.validation.errors import FieldError


class ApiError(Exception):
    """Base of every error the embedded API server reports; ``code`` is the HTTP status."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _details(resource: str, group: str, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": resource}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


class BadRequest(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 401
    reason = "Unauthorized"


class MethodNotAllowed(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(ApiError):  # noqa: N818 - named like the other Status reasons
    code = 406
    reason = "NotAcceptable"


class UnsupportedMediaType(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 415
    reason = "UnsupportedMediaType"


class NotFound(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 404
    reason = "NotFound"

    @classmethod
    def of(cls, resource: str, group: str, name: str) -> NotFound:
        return cls(f'{_qualified(resource, group)} "{name}" not found', _details(resource, group, name))

    @classmethod
    def path(cls, path: str) -> NotFound:
        return cls("the server could not find the requested resource", {"causes": [
            {"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}]})


class AlreadyExists(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 409
    reason = "AlreadyExists"

    @classmethod
    def of(cls, resource: str, group: str, name: str) -> AlreadyExists:
        return cls(f'{_qualified(resource, group)} "{name}" already exists', _details(resource, group, name))


class Conflict(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    code = 409
    reason = "Conflict"

    @classmethod
    def of(cls, resource: str, group: str, name: str, why: str) -> Conflict:
        return cls(f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                   _details(resource, group, name))

    @classmethod
    def stale(cls, resource: str, group: str, name: str) -> Conflict:
        return cls.of(resource, group, name, "the object has been modified; please apply your changes to the latest "
                                             "version and try again")


class Invalid(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    """422: ``<Kind>.<group> "<name>" is invalid: <field>: <message>`` with one cause per field error."""

    code = 422
    reason = "Invalid"

    def __init__(self, kind: str, group: str, name: str, errors: list[FieldError]) -> None:
        self.kind = kind
        self.errors = list(errors)
        qkind = f"{kind}.{group}" if group else kind
        parts = [str(e) for e in self.errors]
        body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        details: dict[str, Any] = {"name": name, "kind": kind, "causes": [
            {"reason": str(e.type), "message": e.message, "field": e.field} for e in self.errors]}
        if group:
            details["group"] = group
        super().__init__(f'{qkind} "{name}" is invalid: {body}', details)


class Gone(ApiError):  # noqa: N818 - names fixed by the cross-part contract
    """410 ``Expired``: a watch asked for a resourceVersion older than the kept event history."""

    code = 410
    reason = "Expired"
    list_continue = ""  # for an expired continue token: a token that continues on the current state

    def status(self) -> dict[str, Any]:
        out = super().status()
        if self.list_continue:
            out["metadata"] = {"continue": self.list_continue}
        return out

    @classmethod
    def too_old(cls, requested: int, oldest: int) -> Gone:
        return cls(f"too old resource version: {requested} ({oldest})")


class InternalError(ApiError):
    code = 500
    reason = "InternalError"


class Forbidden(ApiError):  # noqa: N818 - named like the other Status reasons
    """403: ``<resource> "<name>" is forbidden: <why>`` (admission refusals, such as deleting ``default``)."""

    code = 403
    reason = "Forbidden"

    @classmethod
    def of(cls, resource: str, group: str, name: str, why: str) -> Forbidden:
        return cls(f'{_qualified(resource, group)} "{name}" is forbidden: {why}', _details(resource, group, name))


class RequestEntityTooLarge(ApiError):  # noqa: N818 - named like the other Status reasons
    """413: the body is over ``MaxRequestBodyBytes``; the message carries the limit as upstream's does."""

    code = 413
    reason = "RequestEntityTooLarge"

    @classmethod
    def limit(cls, limit: int) -> RequestEntityTooLarge:
        return cls(f"Request entity too large: limit is {limit}")


class Timeout(ApiError):  # noqa: N818 - named like the other Status reasons
    """504 ``Timeout``; for a watch from a future resourceVersion it carries the ``ResourceVersionTooLarge`` cause."""

    code = 504
    reason = "Timeout"

    @classmethod
    def too_large_resource_version(cls, requested: int, current: int, retry_after: int = 1) -> Timeout:
        return cls(f"Timeout: Too large resource version: {requested}, current: {current}", {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": retry_after})
