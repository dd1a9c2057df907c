"""Semantics of the Kubernetes CEL ``ip`` and ``cidr`` libraries (Go ``net/netip`` rules), in pure Python.

Values travel as canonical strings: an IP as ``netip.Addr.String()`` prints it, a CIDR as the given address and
prefix length (``192.168.0.1/24`` stays unmasked until ``masked()``, as upstream). Upstream refuses IPv4-mapped
IPv6 addresses and zones, and the address predicates follow Go's definitions (private ranges are global unicast).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from snn_dra.driver.cel.lists import CelLibraryError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_LINK_LOCAL_MULTICAST_4 = ipaddress.IPv4Network("224.0.0.0/24")
_LINK_LOCAL_UNICAST_6 = ipaddress.IPv6Network("fe80::/10")


@lru_cache(maxsize=1024)
def parse_ip(text: str) -> Address:
    if "%" in text:
        raise CelLibraryError(f"IP address {text!r}: IP address with zone value is not allowed")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise CelLibraryError(f"IP Address {text!r} parse error during conversion from string") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise CelLibraryError(f"IP address {text!r}: IPv4-mapped IPv6 address is not allowed")
    return addr


def is_ip(text: str) -> bool:
    try:
        parse_ip(text)
    except CelLibraryError:
        return False
    return True


def canonical_ip(text: str) -> str:
    return str(parse_ip(text))


def is_canonical(text: str) -> bool:
    """``ip.isCanonical``: the text is valid and already in its canonical form; an invalid IP is an error."""
    return str(parse_ip(text)) == text


def family(text: str) -> int:
    return parse_ip(text).version


def is_unspecified(text: str) -> bool:
    return parse_ip(text).is_unspecified


def is_loopback(text: str) -> bool:
    return parse_ip(text).is_loopback


def is_link_local_multicast(text: str) -> bool:
    addr = parse_ip(text)
    if isinstance(addr, ipaddress.IPv4Address):
        return addr in _LINK_LOCAL_MULTICAST_4
    return int(addr) >> 112 & 0xFF0F == 0xFF02


def is_link_local_unicast(text: str) -> bool:
    addr = parse_ip(text)
    if isinstance(addr, ipaddress.IPv4Address):
        return addr.is_link_local
    return addr in _LINK_LOCAL_UNICAST_6


def is_global_unicast(text: str) -> bool:
    """Go's ``IsGlobalUnicast``: not unspecified, loopback, multicast, link-local or the IPv4 broadcast address."""
    addr = parse_ip(text)
    if isinstance(addr, ipaddress.IPv4Address) and int(addr) == 0xFFFFFFFF:
        return False
    return not (addr.is_unspecified or addr.is_loopback or addr.is_multicast or is_link_local_unicast(text))


@lru_cache(maxsize=1024)
def parse_cidr(text: str) -> tuple[Address, int]:
    address, sep, bits = text.partition("/")
    if not sep or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise CelLibraryError(f"network address {text!r} parse error during conversion from string")
    try:
        addr = parse_ip(address)
    except CelLibraryError as e:
        raise CelLibraryError(f"network address {text!r}: {e}") from None
    length = int(bits)
    if length > addr.max_prefixlen:
        raise CelLibraryError(f"network address {text!r} parse error during conversion from string: bad bits")
    return addr, length


def is_cidr(text: str) -> bool:
    try:
        parse_cidr(text)
    except CelLibraryError:
        return False
    return True


def canonical_cidr(text: str) -> str:
    addr, length = parse_cidr(text)
    return f"{addr}/{length}"


def _network(text: str) -> Network:
    addr, length = parse_cidr(text)
    return ipaddress.ip_network(f"{addr}/{length}", strict=False)


def cidr_ip(text: str) -> str:
    """``cidr.ip()``: the address part, not masked."""
    return str(parse_cidr(text)[0])


def masked(text: str) -> str:
    return str(_network(text))


def prefix_length(text: str) -> int:
    return parse_cidr(text)[1]


def contains_ip(cidr: str, ip: str) -> bool:
    addr = parse_ip(ip)
    net = _network(cidr)
    return addr.version == net.version and addr in net


def contains_cidr(cidr: str, other: str) -> bool:
    net, sub = _network(cidr), _network(other)
    return sub.version == net.version and sub.prefixlen >= net.prefixlen and sub.network_address in net
