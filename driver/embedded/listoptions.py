"""The list and watch query parameters (``ListOptions``), checked with upstream's rules before any work starts.

client-go's informers (watch-list, the default since 1.35) send ``watch=1&sendInitialEvents=true&
resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true``; a combination upstream refuses answers the same 422
(``ListOptions.meta.k8s.io "" is invalid``) with the same field messages, so a client that works here works there.

Upstream's rules (apimachinery ``ValidateListOptions``), for reference:

- watch: ``sendInitialEvents`` (true or false) needs ``resourceVersionMatch=NotOlderThan``; ``resourceVersionMatch``
  needs ``sendInitialEvents``, may only be ``NotOlderThan``, and is forbidden with ``continue``.
- list: ``resourceVersionMatch`` needs ``resourceVersion`` and no ``continue``, is ``Exact`` or ``NotOlderThan``,
  and ``Exact`` is forbidden with ``resourceVersion=0``; ``sendInitialEvents`` is forbidden.
- ``allowWatchBookmarks`` is not required: without it the initial events come without the closing bookmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from snn_dra.driver.embedded.errors import BadRequest, Invalid
from snn_dra.driver.validation.errors import CauseType, FieldError

NOT_OLDER_THAN = "NotOlderThan"
EXACT = "Exact"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
"""Annotation of the bookmark that closes a watch-list's initial events (client-go waits for it)."""


@dataclass(frozen=True)
class ListOptions:
    watch: bool
    resource_version: str
    resource_version_match: str
    send_initial_events: bool | None
    allow_watch_bookmarks: bool
    limit: int
    continue_token: str


def flag(value: str) -> bool:
    """Go's strconv.ParseBool, as the query decoder uses it (anything else is a 400)."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False", ""):
        return False
    raise BadRequest(f'invalid boolean value {value!r} in the query: use "true" or "false"')


def parse(query: Mapping[str, str], *, watch: bool) -> ListOptions:
    """The options of a list (``watch=False``) or watch request; 422 for combinations upstream refuses."""
    raw_limit = query.get("limit") or "0"
    try:
        limit = int(raw_limit)
    except ValueError:
        raise BadRequest(f"invalid limit {raw_limit!r}: must be an integer (0 or unset: no limit)") from None
    sie = query.get("sendInitialEvents")
    opts = ListOptions(
        watch=watch,
        resource_version=query.get("resourceVersion") or "",
        resource_version_match=query.get("resourceVersionMatch") or "",
        send_initial_events=None if sie is None else flag(sie),
        allow_watch_bookmarks=flag(query.get("allowWatchBookmarks") or ""),
        limit=max(limit, 0),
        continue_token=query.get("continue") or "",
    )
    errs = _watch_errors(opts) if watch else _list_errors(opts)
    if errs:
        raise Invalid("ListOptions", "meta.k8s.io", "", errs)
    return opts


def _forbidden(message: str, path: str = "resourceVersionMatch") -> FieldError:
    return FieldError(CauseType.FORBIDDEN, path, f"Forbidden: {message}")


def _not_supported(value: str, supported: tuple[str, ...]) -> FieldError:
    quoted = ", ".join(f'"{s}"' for s in supported)
    return FieldError(CauseType.NOT_SUPPORTED, "resourceVersionMatch",
                      f'Unsupported value: "{value}": supported values: {quoted}')


def _watch_errors(o: ListOptions) -> list[FieldError]:
    errs: list[FieldError] = []
    match = o.resource_version_match
    if o.send_initial_events is not None and match != NOT_OLDER_THAN:
        errs.append(_forbidden(f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"))
    if match:
        if o.send_initial_events is None:
            errs.append(_forbidden("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
        if match != NOT_OLDER_THAN:
            errs.append(_not_supported(match, (NOT_OLDER_THAN,)))
        if o.continue_token:
            errs.append(_forbidden("resourceVersionMatch is forbidden when continue is provided"))
    return errs


def _list_errors(o: ListOptions) -> list[FieldError]:
    errs: list[FieldError] = []
    match = o.resource_version_match
    if match:
        if not o.resource_version:
            errs.append(_forbidden("resourceVersionMatch is forbidden unless resourceVersion is provided"))
        if o.continue_token:
            errs.append(_forbidden("resourceVersionMatch is forbidden when continue is provided"))
        if match not in (EXACT, NOT_OLDER_THAN):
            errs.append(_not_supported(match, (EXACT, NOT_OLDER_THAN, "")))
        if match == EXACT and o.resource_version == "0":
            errs.append(_forbidden('resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if o.send_initial_events is not None:
        errs.append(_forbidden("sendInitialEvents is forbidden for list", "sendInitialEvents"))
    return errs
