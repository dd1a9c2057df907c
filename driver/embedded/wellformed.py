"""Which stored objects a controller can safely read: the schema's shape, checked once per object version.

Everything written through the API server is validated, but a store can still hold objects that today's rules
refuse (written by an older, looser version, or restored from a backup). A controller that trips over one of
them must not stop working for everything else; it skips that object, says why once, and goes on. Only the
shape is checked (types, required fields), not the semantic rules: those are the API server's business, and an
object the schema accepts cannot break the loops' field accesses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from snn_dra.driver.validation.structural import validate_structure

Obj = dict[str, Any]
MAX_REMEMBERED = 100_000


def _identity(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    if not isinstance(uid, str) or not isinstance(rv, str) or not uid or not rv:
        return None
    return uid, rv


class ShapeCheck:
    """Remembers, per (uid, resourceVersion), why an object is malformed ("" when it is fine)."""

    def __init__(self, profile: str, trusted: Callable[[Mapping[str, Any]], bool] | None = None) -> None:
        """``trusted(obj)``: the object is known to have passed validation (then it is not checked again)."""
        self.profile = profile
        self._trusted = trusted
        self._seen: OrderedDict[tuple[str, str], str] = OrderedDict()

    def problem(self, obj: Any) -> str:
        """Why ``obj`` cannot be used ("" when it can); computed once per object version."""
        if not isinstance(obj, Mapping):
            return f"the object is a {type(obj).__name__}, not an object"
        if self._trusted is not None and self._trusted(obj):
            return ""
        ident = _identity(obj)
        if ident is not None and ident in self._seen:
            self._seen.move_to_end(ident)
            return self._seen[ident]
        why = self._check(obj)
        if ident is not None:
            self._seen[ident] = why
            while len(self._seen) > MAX_REMEMBERED:
                self._seen.popitem(last=False)
        return why

    def _check(self, obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta.get("name"):
            return "metadata.name: Required value: the object has no name"
        try:
            errors = validate_structure(obj, self.profile)
        except Exception as exc:  # an object the checker cannot even read is malformed
            return f"<root>: cannot be checked: {type(exc).__name__}: {exc}"
        shape = [e for e in errors if not e.message.startswith("unknown field")]
        return "; ".join(str(e) for e in shape[:5])

    def usable(self, objs: Iterable[Any], on_bad: Callable[[Any, str], None]) -> list[Obj]:
        """The well-formed objects of ``objs``; ``on_bad(obj, why)`` is called for each one skipped."""
        out: list[Obj] = []
        for obj in objs:
            why = self.problem(obj)
            if why:
                on_bad(obj, why)
            else:
                out.append(obj)
        return out
