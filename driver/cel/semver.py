"""Semantic Version 2.0.0 parsing and precedence for the Kubernetes CEL ``semver`` library and attribute checks.

One implementation serves both the API validation of ``version`` attributes and CEL evaluation, so a version the
API server accepts always compares the same way in a selector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_RE = re.compile(
    rf"^({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_LOOSE_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?((?:[-+].*)?)$")


class SemverError(ValueError):
    """A string is not a semantic version."""


@dataclass(frozen=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: str = ""


def is_semver(text: str, normalize: bool = False) -> bool:
    try:
        parse(text, normalize)
    except SemverError:
        return False
    return True


@lru_cache(maxsize=4096)
def parse(text: str, normalize: bool = False) -> Version:
    """Strict SemVer 2.0.0; with ``normalize`` a leading 'v', missing minor/patch and leading zeros are accepted."""
    if normalize:
        text = _normalize(text)
    m = SEMVER_RE.match(text)
    if m is None:
        raise SemverError(
            f"{text!r} is not a semantic version: expected MAJOR.MINOR.PATCH[-prerelease][+build] "
            "without leading zeros, e.g. '1.2.3' or '1.2.3-rc.1'"
        )
    pre: tuple[int | str, ...] = ()
    if m.group(4):
        pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split("."))
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")


def _normalize(text: str) -> str:
    m = _LOOSE_RE.match(text)
    if m is None:
        return text
    parts = [str(int(p)) if p else "0" for p in m.group(1, 2, 3)]
    return ".".join(parts) + m.group(4)


def compare(a: Version, b: Version) -> int:
    """SemVer precedence: numbers first, a prerelease sorts before its release, build metadata is ignored."""
    x, y = (a.major, a.minor, a.patch), (b.major, b.minor, b.patch)
    if x != y:
        return -1 if x < y else 1
    if a.prerelease == b.prerelease:
        return 0
    if not a.prerelease:
        return 1
    if not b.prerelease:
        return -1
    for p, q in zip(a.prerelease, b.prerelease, strict=False):
        if p == q:
            continue
        if isinstance(p, int) and isinstance(q, int):
            return -1 if p < q else 1
        if isinstance(p, int):
            return -1
        if isinstance(q, int):
            return 1
        return -1 if p < q else 1
    return -1 if len(a.prerelease) < len(b.prerelease) else 1
