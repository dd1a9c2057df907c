"""Semantics of the Kubernetes CEL ``url`` library: Go's ``url.ParseRequestURI`` and the URL getters, in Python.

``url()`` accepts what Go accepts for an HTTP request target: an absolute URI (``scheme:...``) or an absolute
path (``/...``); ``example.com/x`` is refused. Nothing is split off at ``#`` (a request URI has no fragment).
``getEscapedPath`` follows Go's ``EscapedPath`` (the path as written when it is validly escaped, else
re-escaped) and ``getQuery`` Go's ``Query`` (pairs with a ``;`` or a bad escape are dropped).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache

from snn_dra.driver.cel.lists import CelLibraryError

_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+-.")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.~")
_PATH_OK = _UNRESERVED | frozenset("$&+,/:;=@")
_PATH_VALID_EXTRA = frozenset("!$&'()*+,;=:@[]%")
_HOST_OK = _UNRESERVED | frozenset("!$&'()*+,;=:[]<>\"%")
_USERINFO_OK = _UNRESERVED | frozenset("-._:~!$&'()*+,;=%@")
_PORT = re.compile(r"^:\d*$")


@dataclass(frozen=True, slots=True)
class Url:
    scheme: str
    host: str
    raw_path: str
    raw_query: str
    opaque: str


def _unescape(text: str, *, plus_is_space: bool = False) -> str:
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            hexpart = raw[i + 1 : i + 3]
            if len(hexpart) < 2 or not all(chr(h) in string.hexdigits for h in hexpart):
                raise CelLibraryError(f"invalid URL escape {raw[i : i + 3].decode(errors='replace')!r}")
            out.append(int(hexpart, 16))
            i += 3
            continue
        out.append(0x20 if plus_is_space and c == 0x2B else c)
        i += 1
    return out.decode(errors="replace")


def _split_host_port(host: str) -> tuple[str, str]:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise CelLibraryError("missing ']' in host")
        rest = host[end + 1 :]
        if rest and not _PORT.match(rest):
            raise CelLibraryError(f"invalid port {rest!r} after host")
        return host[1:end], rest[1:]
    i = host.rfind(":")
    if i >= 0:
        if not _PORT.match(host[i:]):
            raise CelLibraryError(f"invalid port {host[i:]!r} after host")
        return host[:i], host[i + 1 :]
    return host, ""


@lru_cache(maxsize=1024)
def parse(text: str) -> Url:
    if not text:
        raise CelLibraryError("URL parse error during conversion from string: empty url")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise CelLibraryError("URL parse error during conversion from string: invalid control character in URL")
    scheme, rest = "", text
    for i, c in enumerate(text):
        if c == ":":
            if i == 0:
                raise CelLibraryError("URL parse error during conversion from string: missing protocol scheme")
            scheme, rest = text[:i].lower(), text[i + 1 :]
            break
        if c not in _SCHEME_CHARS or (i == 0 and not c.isalpha()):
            break
    rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return Url(scheme, "", "", query, rest)
        raise CelLibraryError("URL parse error during conversion from string: invalid URI for request")
    host = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        userinfo, at, host = authority.rpartition("@")
        if at and any(c not in _USERINFO_OK for c in userinfo):
            raise CelLibraryError("URL parse error during conversion from string: invalid userinfo")
        for c in host:
            if c not in _HOST_OK:
                raise CelLibraryError(
                    f"URL parse error during conversion from string: invalid character {c!r} in host name"
                )
        try:
            _split_host_port(host)
        except CelLibraryError as e:
            raise CelLibraryError(f"URL parse error during conversion from string: {e}") from None
    try:
        _unescape(rest)  # a bad escape in the path is an error, as in Go
    except CelLibraryError as e:
        raise CelLibraryError(f"URL parse error during conversion from string: {e}") from None
    return Url(scheme, host, rest, query, "")


def is_url(text: str) -> bool:
    try:
        parse(text)
    except CelLibraryError:
        return False
    return True


def scheme(text: str) -> str:
    return parse(text).scheme


def host(text: str) -> str:
    return parse(text).host


def hostname(text: str) -> str:
    return _split_host_port(parse(text).host)[0]


def port(text: str) -> str:
    return _split_host_port(parse(text).host)[1]


def escaped_path(text: str) -> str:
    raw = parse(text).raw_path
    if all(c in _PATH_OK or c in _PATH_VALID_EXTRA for c in raw):
        return raw
    return "".join(chr(b) if chr(b) in _PATH_OK else f"%{b:02X}" for b in _unescape(raw).encode())


def query(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pair in parse(text).raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            k, v = _unescape(key, plus_is_space=True), _unescape(value, plus_is_space=True)
        except CelLibraryError:
            continue
        out.setdefault(k, []).append(v)
    return out
