"""``limit``/``continue`` list paging with consistent snapshots, as upstream's etcd-backed storage pages.

A continue token names the resourceVersion of the first page and the last key served; every later page is cut
from the objects as they were at that version (the store rebuilds them from its event history), so a paged list
never shows an object twice or skips one, whatever is written meanwhile.

The history window is bounded: the store keeps its last ``history_size`` writes (1000 by default, over every
resource). A token whose version has left that window answers 410 ``Expired`` with upstream's message and a new
token (version -1) that continues from the same key on the current state, as upstream does after an etcd
compaction (every 5 minutes there).

The token's shape is upstream's: base64url (no padding) of ``{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\\x00"}``
where the key is ``namespace/name`` (``name`` for cluster-scoped kinds). Clients treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from snn_dra.driver.embedded.errors import BadRequest, Gone

CONTINUE_KEY_VERSION = "meta.k8s.io/v1"
INCONSISTENT = -1
"""The version of a token that continues on the current state (handed out with a 410 for an expired one)."""
EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")

Key = tuple[str, str]
Obj = dict[str, Any]


@dataclass(frozen=True)
class Continue:
    resource_version: int
    after: Key  # the last key served: the next page starts after it


@dataclass
class Page:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def encode(resource_version: int, after: Key) -> str:
    ns, name = after
    start = f"{ns}/{name}\x00" if ns else f"{name}\x00"
    raw = json.dumps({"v": CONTINUE_KEY_VERSION, "rv": resource_version, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, namespaced: bool) -> Continue:
    """The token's version and key; 400 naming what is wrong for anything this server did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("continue key is not valid: not a token this server handed out (start the list again "
                         "without continue)") from None
    if not isinstance(data, dict) or data.get("v") != CONTINUE_KEY_VERSION:
        raise BadRequest(f"continue key is not valid: server does not recognize this encoded key (version "
                         f"{CONTINUE_KEY_VERSION} expected)")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0 or rv < INCONSISTENT:
        raise BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version "
                         f"{CONTINUE_KEY_VERSION})")
    if not isinstance(start, str) or not start:
        raise BadRequest("continue key is not valid: encoded start key is empty")
    start = start.removesuffix("\x00")
    if namespaced and "/" in start:
        ns, name = start.split("/", 1)
        return Continue(rv, (ns, name))
    return Continue(rv, ("", start))


def expired(after: Key) -> Gone:
    """410 Expired for a token whose version left the history, carrying a token that continues on the present."""
    err = Gone(EXPIRED_MESSAGE)
    err.list_continue = encode(INCONSISTENT, after)
    return err


def cut(entries: Sequence[tuple[Key, Obj]], matches: Callable[[Obj], bool], limit: int, after: Key | None,
        resource_version: int, selective: bool) -> Page:
    """One page of ``entries`` (sorted by key) after ``after``; ``selective``: a selector filtered them.

    ``remainingItemCount`` is only known, and only sent, when no selector filtered the list (as upstream).
    """
    rest = [(k, o) for k, o in entries if (after is None or k > after) and matches(o)]
    if limit <= 0 or len(rest) <= limit:
        return Page([o for _, o in rest], str(resource_version))
    page = rest[:limit]
    return Page([o for _, o in page], str(resource_version), encode(resource_version, page[-1][0]),
                None if selective else len(rest) - limit)
