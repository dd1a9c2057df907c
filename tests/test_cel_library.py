"""The Kubernetes CEL libraries DRA selectors may use, by table: expression -> result, or the runtime error.

Expected values follow the documented upstream semantics (Kubernetes ``lists``/``regex`` libraries, cel-go
``ext.Sets`` and ``ext.Strings`` v2): each row is a selector, so it is compiled, type-checked and cost-estimated
exactly as an admitted selector is, then evaluated on a device. Runtime errors (bad input to ``ip()``, ``url()``,
an empty ``min()``) are errors of the selector, never "no match".
"""

from __future__ import annotations

import pytest

from snn_dra.driver.cel import CelCompileError, CelRuntimeError, compile_selector, device_view, lists

D = "snn.dra.dev"
DEVICE = device_view(
    D,
    {
        "name": "core-0",
        "attributes": {
            "type": {"string": "core"},
            "cores": {"int": 8},
            "meshX": {"ints": [3, 1, 2]},
            "labels": {"strings": ["fast", "loihi2", "pcie"]},
            "url": {"string": "https://snn.example.com:8443/fw/v2?chip=1"},
        },
        "capacity": {"memory": {"value": "2Gi"}},
    },
)

LISTS = [
    ("[1, 2, 2, 3].isSorted()", True),
    ("[3, 1].isSorted()", False),
    ("[].isSorted()", True),
    ('["a", "b"].isSorted()', True),
    ("[1.0, 0.5].isSorted()", False),
    ("[1, 2, 3].sum() == 6", True),
    ("[1.5, 2.5].sum() == 4.0", True),
    ("[].sum() == 0", True),
    ("[3, 1, 2].min() == 1", True),
    ("[3, 1, 2].max() == 3", True),
    ('["b", "a"].min() == "a"', True),
    ("[1, 2, 1].indexOf(1) == 0", True),
    ("[1, 2, 1].lastIndexOf(1) == 2", True),
    ("[1, 2].indexOf(5) == -1", True),
    ("[1, 2].lastIndexOf(5) == -1", True),
    ("[1, 2].indexOf(2.0) == 1", True),  # heterogeneous numeric equality
    ("[true, 1].indexOf(1) == 1", True),  # true is not 1
    ('"banana".indexOf("an") == 1', True),  # the strings overloads stay
    ('"banana".lastIndexOf("an") == 3', True),
    ('device.attributes["snn.dra.dev"].meshX.max() == 3', True),
    ('device.attributes["snn.dra.dev"].meshX.sum() == 6', True),
    ('device.attributes["snn.dra.dev"].meshX.isSorted()', False),
    ('device.attributes["snn.dra.dev"].labels.indexOf("loihi2") == 1', True),
]

EXT_LISTS = [
    ("lists.range(3) == [0, 1, 2]", True),
    ("lists.range(0) == []", True),
    ("[1, 2, 1, 1.0, 3].distinct() == [1, 2, 3]", True),
    ('["b", "a", "b"].distinct() == ["b", "a"]', True),
    ("[1, [2, [3]]].flatten() == [1, 2, [3]]", True),
    ("[1, [2, [3]]].flatten(2) == [1, 2, 3]", True),
    ("[1, 2, 3].reverse() == [3, 2, 1]", True),
    ("[1, 2, 3].slice(1, 3) == [2, 3]", True),
    ("[1, 2, 3].slice(1, 1) == []", True),
    ("[3, 1, 2].sort() == [1, 2, 3]", True),
    ('["b", "a"].sort() == ["a", "b"]', True),
    ('device.attributes["snn.dra.dev"].meshX.sort() == [1, 2, 3]', True),
]

SETS = [
    ("sets.contains([1, 2, 3], [3, 1])", True),
    ("sets.contains([1, 2], [3])", False),
    ("sets.contains([1], [])", True),
    ("sets.contains([], [1])", False),
    ("sets.contains([1], [1.0])", True),
    ("sets.contains([1], [true])", False),
    ("sets.equivalent([1, 1, 2], [2, 1])", True),
    ("sets.equivalent([1, 2], [1, 2, 3])", False),
    ("sets.equivalent([], [])", True),
    ("sets.intersects([1, 2], [2, 3])", True),
    ("sets.intersects([1], [2])", False),
    ("sets.intersects([], [1])", False),
    ('sets.contains(device.attributes["snn.dra.dev"].labels, ["pcie", "fast"])', True),
    ('sets.intersects(device.attributes["snn.dra.dev"].labels, ["gpu"])', False),
]

REGEX = [
    ('"abc 123".find("[0-9]+") == "123"', True),
    ('"abc".find("[0-9]+") == ""', True),
    ('"a1b2c3".findAll("[0-9]") == ["1", "2", "3"]', True),
    ('"a1b2c3".findAll("[0-9]", 2) == ["1", "2"]', True),
    ('"a1b2c3".findAll("[0-9]", 0) == []', True),
    ('"a1b2c3".findAll("[0-9]", -1).size() == 3', True),
    ('"baaab".findAll("a*") == ["", "aaa", ""]', True),  # Go drops an empty match abutting the previous one
    ('"abc".findAll("x") == []', True),
    ('device.attributes["snn.dra.dev"].url.find("[0-9]+") == "8443"', True),
    ('"abc".matches("^a.c$")', True),  # standard CEL, RE2 too
]

STRINGS = [
    ('"%d cores, %s".format([8, "loihi2"]) == "8 cores, loihi2"', True),
    ('"%.2f".format([1.5]) == "1.50"', True),
    ('"a,b,c".split(",").size() == 3', True),
    ('"Loihi".lowerAscii() == "loihi"', True),
    ('"  x ".trim() == "x"', True),
    ('["a", "b"].join("-") == "a-b"', True),
    ('"abc".charAt(1) == "b"', True),
    ('"abc".substring(1) == "bc"', True),
    ('strings.quote("a\\"b") == "\\"a\\\\\\"b\\""', True),
    ('"aXbX".replace("X", "-") == "a-b-"', True),
]


IP_CIDR = [
    ('isIP("10.0.0.1")', True),
    ('isIP("2001:db8::1")', True),
    ('isIP("10.0.0.256")', False),
    ('isIP("010.0.0.1")', False),  # Go netip: no leading zeros
    ('isIP("::ffff:10.0.0.1")', False),  # IPv4-mapped IPv6 refused
    ('isIP("fe80::1%eth0")', False),  # zones refused
    ('ip("10.0.0.1").family() == 4', True),
    ('ip("2001:db8::1").family() == 6', True),
    ('string(ip("2001:DB8:0::1")) == "2001:db8::1"', True),
    ('ip("2001:DB8::1") == ip("2001:db8::1")', True),
    ('ip.isCanonical("2001:db8::1")', True),
    ('ip.isCanonical("2001:DB8::1")', False),
    ('ip("0.0.0.0").isUnspecified()', True),
    ('ip("::").isUnspecified()', True),
    ('ip("127.0.0.2").isLoopback()', True),
    ('ip("::1").isLoopback()', True),
    ('ip("224.0.0.1").isLinkLocalMulticast()', True),
    ('ip("ff02::1").isLinkLocalMulticast()', True),
    ('ip("ff05::1").isLinkLocalMulticast()', False),
    ('ip("169.254.1.1").isLinkLocalUnicast()', True),
    ('ip("fe80::1").isLinkLocalUnicast()', True),
    ('ip("10.0.0.1").isGlobalUnicast()', True),  # Go: private ranges are global unicast
    ('ip("255.255.255.255").isGlobalUnicast()', False),
    ('ip("224.0.0.1").isGlobalUnicast()', False),
    ('isCIDR("10.0.0.0/8")', True),
    ('isCIDR("10.0.0.0/33")', False),
    ('isCIDR("10.0.0.0")', False),
    ('cidr("10.0.0.0/8").containsIP("10.1.2.3")', True),
    ('cidr("10.0.0.0/8").containsIP(ip("11.0.0.1"))', False),
    ('cidr("10.0.0.0/8").containsIP("::1")', False),
    ('cidr("10.0.0.0/8").containsCIDR("10.1.0.0/16")', True),
    ('cidr("10.0.0.0/8").containsCIDR(cidr("10.0.0.0/8"))', True),
    ('cidr("10.0.0.0/16").containsCIDR(cidr("10.0.0.0/8"))', False),
    ('cidr("192.168.1.5/24").prefixLength() == 24', True),
    ('string(cidr("192.168.1.5/24").ip()) == "192.168.1.5"', True),  # ip() is not masked
    ('cidr("192.168.1.5/24").masked() == cidr("192.168.1.0/24")', True),
    ('cidr("2001:db8::/32").containsIP("2001:db8:1::1")', True),
]


URLS = [
    ('isURL("https://example.com:80/path?query=val#fragment")', True),
    ('isURL("/absolute-path")', True),
    ('isURL("mailto:team@example.com")', True),  # an absolute URI without authority (opaque)
    ('isURL("example.com")', False),  # neither absolute URI nor absolute path
    ('isURL("https://example.com:port/")', False),
    ('isURL("https://example.com/%zz")', False),
    ('isURL("")', False),
    ('url("HTTPS://example.com/").getScheme() == "https"', True),
    ('url("/path").getScheme() == ""', True),
    ('url("https://example.com:80/").getHost() == "example.com:80"', True),
    ('url("https://[::1]:80/").getHost() == "[::1]:80"', True),
    ('url("https://example.com:80/").getHostname() == "example.com"', True),
    ('url("https://[::1]:80/").getHostname() == "::1"', True),
    ('url("https://example.com:80/").getPort() == "80"', True),
    ('url("https://example.com/").getPort() == ""', True),
    ('url("https://user:pw@example.com/").getHost() == "example.com"', True),
    ('url("https://example.com/path with spaces/").getEscapedPath() == "/path%20with%20spaces/"', True),
    ('url("https://example.com/a%2Fb").getEscapedPath() == "/a%2Fb"', True),
    ('url("https://example.com/path?k1=a&k2=b&k2=c").getQuery() == {"k1": ["a"], "k2": ["b", "c"]}', True),
    ('url("https://example.com/p?a=x+y&b=%41").getQuery() == {"a": ["x y"], "b": ["A"]}', True),
    ('url("https://example.com/p?a=1;b=2&c=3").getQuery() == {"c": ["3"]}', True),  # pairs with ';' dropped
    ('url("https://example.com/p").getQuery() == {}', True),
    ('url("/x") == url("/x")', True),
    ('url(device.attributes["snn.dra.dev"].url).getPort() == "8443"', True),
]


@pytest.mark.parametrize(("expression", "expected"), LISTS + EXT_LISTS + SETS + REGEX + STRINGS + IP_CIDR + URLS)
def test_library_table(expression: str, expected: bool) -> None:
    assert compile_selector(expression).evaluate(DEVICE) is expected


RUNTIME_ERRORS = [
    ("[].min() == 0", "min called on empty list"),
    ("[].max() == 0", "max called on empty list"),
    ('["a", 1].isSorted()', "no such overload"),
    ("[9223372036854775807, 1].sum() > 0", "integer overflow"),
    ('"x".find("(?=x)") == ""', "error parsing regexp: invalid perl operator"),  # RE2: no look-ahead
    ('"aa".findAll("(a)\\\\1").size() == 1', "error parsing regexp: invalid escape sequence"),  # no back-references
    ("[1].slice(2, 1) == []", "start index must be less than or equal to end index"),
    ("[1].slice(0, 2) == []", "list is length 1"),
    ('[1, "a"].sort() == []', "list elements must have the same type"),
    ("[1].flatten(-1) == []", "level must be non-negative"),
    ('ip("10.0.0.256").family() == 4', "parse error"),
    ('ip("::ffff:10.0.0.1").family() == 6', "IPv4-mapped IPv6 address is not allowed"),
    ('ip("fe80::1%eth0").family() == 6', "IP address with zone value is not allowed"),
    ('cidr("10.0.0.0/33").prefixLength() == 33', "parse error"),
    ('ip.isCanonical("x")', "parse error"),
    ('url("example.com").getHost() == ""', "URL parse error during conversion from string: invalid URI for request"),
    ('url("https://h:x/").getPort() == ""', "invalid port"),
]


@pytest.mark.parametrize(("expression", "fragment"), RUNTIME_ERRORS)
def test_library_runtime_errors(expression: str, fragment: str) -> None:
    sel = compile_selector(expression)
    with pytest.raises(CelRuntimeError, match=fragment.replace("(", r"\(").replace("?", r"\?")):
        sel.evaluate(DEVICE)


NOT_IN_THE_ENVIRONMENT = [
    '"abc".reverse() == "cba"',  # ext.Strings v3, upstream enables v2 (reverse exists for lists only)
    "math.greatest([1, 2]) == 2",  # ext.Math is not in the Kubernetes base environment
    'base64.encode(b"a") == "YQ=="',  # nor ext.Encoders
]


@pytest.mark.parametrize("expression", NOT_IN_THE_ENVIRONMENT)
def test_functions_outside_the_kubernetes_environment_are_rejected(expression: str) -> None:
    with pytest.raises(CelCompileError, match=r"undeclared reference|found no matching overload"):
        compile_selector(expression)


def test_known_gap_two_variable_comprehensions_are_refused_at_admission() -> None:
    """Upstream accepts them since 1.32; this engine cannot parse them, so they fail early, never at scheduling."""
    with pytest.raises(CelCompileError, match="undeclared reference"):
        compile_selector('{"a": 1}.all(k, v, v > 0)')


def test_set_and_list_costs_grow_with_the_sizes() -> None:
    small = compile_selector("sets.contains([1], [1])").cost
    attr = 'device.attributes["snn.dra.dev"]'
    big = compile_selector(f"sets.contains({attr}.labels, {attr}.labels)").cost
    assert big > small * 10
    # nested set checks over every attribute of every domain are far over the 1,000,000 limit
    with pytest.raises(CelCompileError) as info:
        compile_selector(
            "device.attributes.all(d, device.attributes[d].all(a, device.attributes.all(e, "
            "device.attributes[e].all(b, sets.intersects(device.attributes[d][a], device.attributes[e][b])))))"
        )
    assert info.value.reason == "too_costly"


def test_runtime_iteration_budget_still_enforced() -> None:
    sel = compile_selector(
        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].all(a, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].all(b, "
        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].all(c, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].all(d, "
        "[a, b, c, d].sum() > 0))))"
    )
    with pytest.raises(CelRuntimeError, match="cost budget"):
        sel.evaluate(DEVICE)


def test_lists_range_is_costed_by_its_size() -> None:
    assert compile_selector("lists.range(10).all(i, i >= 0)").cost < 100
    for expression in (
        "lists.range(2000000).size() > 0",  # a constant beyond the limit
        "lists.range(device.driver.size() * 1000).size() > 0",  # computed: as large as the limit allows
        "lists.range(1000).exists(i, lists.range(1000).exists(j, i == j))",
    ):
        with pytest.raises(CelCompileError) as info:
            compile_selector(expression)
        assert info.value.reason == "too_costly"


def test_callbacks_refuse_work_beyond_the_runtime_cost_limit() -> None:
    """Defence in depth behind the estimate: one call never does more than 1,000,000 units of work."""
    big = list(range(1001))
    assert lists.sets_contains(big, big[:999])  # 1001 x 999 is within the limit
    for call in (
        lambda: lists.sets_contains(big, big),
        lambda: lists.sets_intersects(big, big),
        lambda: lists.distinct(big),
        lambda: lists.lists_range(1_000_001),
    ):
        with pytest.raises(lists.CelLibraryError, match="actual cost limit exceeded"):
            call()
