"""The only module that talks to the CEL engine (cel-expr-python 0.1.3, over Google's cel-cpp).

Everything engine-specific lives here: the environment (variable ``device``, standard extensions, the Kubernetes
``quantity``, ``semver``, ``lists``, ``regex``, ``ip``/``cidr`` and ``url`` libraries and ``ext.Sets``), value
construction for the Kubernetes types, the typed check environment used at admission, and the translation of
engine errors into :class:`CelCompileError` / :class:`CelRuntimeError`. Replacing the engine means rewriting this
file; the semantics behind the callbacks live in engine-independent modules (quantity, semver, lists, regex,
network, urls).

Two environments: the evaluation environment declares ``device`` as ``map(string, dyn)`` (values are passed as
plain dicts, the fastest path); the check environment declares its fields with upstream's types (see
:func:`_check_variables`) so a mistyped selector is refused at admission with the checker's own message.

Not available in this engine (a selector using them is refused at admission): two-variable comprehensions
(``all(k, v, ...)``, ``transformList``...), ext.Lists' ``sortBy``, ``first`` and ``last``, the
Kubernetes ``format`` library (``format.dns1123Label()...``) and ``string(net.CIDR)``.

Engine constraints this module works around (see docs/libraries.md §4):

* Custom types must be protobuf messages: ``kubernetes.Quantity`` and ``kubernetes.Semver`` are built at runtime
  with ``descriptor_pb2`` into a private descriptor pool (each holds the canonical string in ``value``).
* Two overloads of one function name on two message types clash at runtime registration, so ``compareTo``,
  ``isGreaterThan`` and ``isLessThan`` give the implementation to the Quantity overload only and dispatch on
  ``DESCRIPTOR.name`` (the engine routes the Semver overload to the same callable).
* Leak: every call of a Python-implemented function leaks ~0.8 KB in 0.1.3 (argument tuple and result are never
  released). Mitigation: the libraries are only what Kubernetes defines (no helper functions of our own), parsing
  behind the callables is cached, constructors return one shared message per literal, and
  :mod:`snn_dra.driver.cel.selector` memoises (selector, device) results so repeated scheduling passes never re-run
  the callables. Selectors without quantity/semver calls do not leak. Do not patch reference counts: once upstream
  fixes the leak that would double-free.
* Long-lived Activations grow without bound; every evaluation passes its variables with ``eval(data=...)``.
* The engine caps comprehensions at 10,000 iterations per evaluation; exceeding it raises, which we report as a
  runtime budget error (the Kubernetes runtime cost limit would also have stopped such an expression).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from snn_dra.driver.cel import lists, regex, urls
from snn_dra.driver.cel import network as net
from snn_dra.driver.cel import quantity as q
from snn_dra.driver.cel import semver as sv
from snn_dra.driver.cel.errors import CelCompileError, CelRuntimeError

QUANTITY_TYPE = "kubernetes.Quantity"
SEMVER_TYPE = "kubernetes.Semver"


def _build_pool() -> descriptor_pool.DescriptorPool:
    fdp = descriptor_pb2.FileDescriptorProto(name="snn_dra/kubernetes_cel_types.proto", package="kubernetes")
    fdp.syntax = "proto3"
    for name in ("Quantity", "Semver"):
        msg = fdp.message_type.add(name=name)
        msg.field.add(
            name="value",
            number=1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    net = descriptor_pb2.FileDescriptorProto(name="snn_dra/net_cel_types.proto", package="net")
    net.syntax = "proto3"
    for name in ("IP", "CIDR", "URL"):
        msg = net.message_type.add(name=name)
        msg.field.add(
            name="value",
            number=1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool.Add(net)
    return pool


_POOL = _build_pool()
_Quantity: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(QUANTITY_TYPE))
_Semver: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(SEMVER_TYPE))
IP_TYPE = "net.IP"
CIDR_TYPE = "net.CIDR"
_IP: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(IP_TYPE))
_CIDR: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(CIDR_TYPE))
URL_TYPE = "net.URL"
_URL: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(URL_TYPE))


def make_quantity(text: str) -> Any:
    """A CEL Quantity value holding ``text`` (parsed lazily, so a bad capacity fails only selectors that use it)."""
    return _Quantity(value=text)


def make_semver(text: str) -> Any:
    """A CEL Semver value holding ``text``."""
    return _Semver(value=text)


# ---- the Kubernetes quantity and semver libraries -----------------------------------------------------------


# Constructors return one shared message per literal: the engine never releases a callback's result, and a leaked
# reference to an existing object costs no memory, where a fresh message per call would (~0.5 KB each).
@lru_cache(maxsize=1024)
def _quantity(text: str) -> Any:
    q.parse(text)
    return _Quantity(value=text)


@lru_cache(maxsize=1024)
def _semver(text: str, normalize: bool = False) -> Any:
    v = sv.parse(text, normalize)
    return _Semver(value=_format_version(v))


def _format_version(v: sv.Version) -> str:
    out = f"{v.major}.{v.minor}.{v.patch}"
    if v.prerelease:
        out += "-" + ".".join(str(p) for p in v.prerelease)
    if v.build:
        out += "+" + v.build
    return out


def _compare(a: Any, b: Any) -> int:
    if a.DESCRIPTOR.name == "Semver":
        return sv.compare(sv.parse(a.value), sv.parse(b.value))
    return q.compare(a.value, b.value)


def _version(v: Any) -> sv.Version:
    return sv.parse(v.value)


def _other(b: Any) -> str | int:
    return b if isinstance(b, int) else str(b.value)


def _declarations() -> list[Any]:
    qt, st = cel.Type(QUANTITY_TYPE), cel.Type(SEMVER_TYPE)
    s, b, i, d = cel.Type.STRING, cel.Type.BOOL, cel.Type.INT, cel.Type.DOUBLE

    def member(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any] | None = None) -> Any:
        if impl is None:
            return cel.Overload(oid, ret, params, is_member=True)
        return cel.Overload(oid, ret, params, is_member=True, impl=impl)

    def glob(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any]) -> Any:
        return cel.Overload(oid, ret, params, impl=impl)

    decl = cel.FunctionDecl
    return [
        decl("quantity", [glob("string_to_quantity", qt, [s], _quantity)]),
        decl("isQuantity", [glob("is_quantity_string", b, [s], q.is_quantity)]),
        decl(
            "semver",
            [
                glob("string_to_semver", st, [s], _semver),
                glob("string_bool_to_semver", st, [s, b], _semver),
            ],
        ),
        decl(
            "isSemver",
            [
                glob("is_semver_string", b, [s], sv.is_semver),
                glob("is_semver_string_bool", b, [s, b], sv.is_semver),
            ],
        ),
        # One implementation per name; the Semver overload reaches it too (see module docstring).
        decl(
            "compareTo", [member("quantity_compareTo", i, [qt, qt], _compare), member("semver_compareTo", i, [st, st])]
        ),
        decl(
            "isGreaterThan",
            [
                member("quantity_isGreaterThan", b, [qt, qt], lambda a, o: _compare(a, o) > 0),
                member("semver_isGreaterThan", b, [st, st]),
            ],
        ),
        decl(
            "isLessThan",
            [
                member("quantity_isLessThan", b, [qt, qt], lambda a, o: _compare(a, o) < 0),
                member("semver_isLessThan", b, [st, st]),
            ],
        ),
        decl(
            "add",
            [
                member("quantity_add", qt, [qt, qt], lambda a, o: _Quantity(value=q.add(a.value, _other(o)))),
                member("quantity_add_int", qt, [qt, i], lambda a, o: _Quantity(value=q.add(a.value, _other(o)))),
            ],
        ),
        decl(
            "sub",
            [
                member("quantity_sub", qt, [qt, qt], lambda a, o: _Quantity(value=q.sub(a.value, _other(o)))),
                member("quantity_sub_int", qt, [qt, i], lambda a, o: _Quantity(value=q.sub(a.value, _other(o)))),
            ],
        ),
        decl("sign", [member("quantity_sign", i, [qt], lambda a: q.sign(a.value))]),
        decl("isInteger", [member("quantity_isInteger", b, [qt], lambda a: q.is_integer(a.value))]),
        decl("asInteger", [member("quantity_asInteger", i, [qt], lambda a: q.as_integer(a.value))]),
        decl(
            "asApproximateFloat",
            [member("quantity_asApproximateFloat", d, [qt], lambda a: q.as_approximate_float(a.value))],
        ),
        decl("major", [member("semver_major", i, [st], lambda v: _version(v).major)]),
        decl("minor", [member("semver_minor", i, [st], lambda v: _version(v).minor)]),
        decl("patch", [member("semver_patch", i, [st], lambda v: _version(v).patch)]),
    ]


_ENV: Any = None
_CHECK_ENV: Any = None
_ENV_LOCK = threading.Lock()


@lru_cache(maxsize=1024)
def _ip(text: str) -> Any:
    return _IP(value=net.canonical_ip(text))


@lru_cache(maxsize=1024)
def _cidr(text: str) -> Any:
    return _CIDR(value=net.canonical_cidr(text))


def _to_string(v: Any) -> str:
    return str(v.value)


def _network_declarations() -> list[Any]:
    """The Kubernetes ``ip`` and ``cidr`` libraries over ``net.IP`` / ``net.CIDR`` messages (canonical text)."""
    ipt, ct, s, b, i = cel.Type(IP_TYPE), cel.Type(CIDR_TYPE), cel.Type.STRING, cel.Type.BOOL, cel.Type.INT

    def member(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any] | None = None) -> Any:
        if impl is None:
            return cel.Overload(oid, ret, params, is_member=True)
        return cel.Overload(oid, ret, params, is_member=True, impl=impl)

    def glob(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any] | None = None) -> Any:
        if impl is None:
            return cel.Overload(oid, ret, params)
        return cel.Overload(oid, ret, params, impl=impl)

    def on_ip(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
        return lambda v: fn(v.value)

    decl = cel.FunctionDecl
    return [
        decl(
            "ip",
            [glob("string_to_ip", ipt, [s], _ip), member("cidr_ip", ipt, [ct], lambda c: _ip(net.cidr_ip(c.value)))],
        ),
        decl("isIP", [glob("is_ip", b, [s], net.is_ip)]),
        decl("ip.isCanonical", [glob("ip_is_canonical", b, [s], net.is_canonical)]),
        decl("family", [member("ip_family", i, [ipt], on_ip(net.family))]),
        decl("isUnspecified", [member("ip_is_unspecified", b, [ipt], on_ip(net.is_unspecified))]),
        decl("isLoopback", [member("ip_is_loopback", b, [ipt], on_ip(net.is_loopback))]),
        decl(
            "isLinkLocalMulticast", [member("ip_is_link_local_multicast", b, [ipt], on_ip(net.is_link_local_multicast))]
        ),
        decl("isLinkLocalUnicast", [member("ip_is_link_local_unicast", b, [ipt], on_ip(net.is_link_local_unicast))]),
        decl("isGlobalUnicast", [member("ip_is_global_unicast", b, [ipt], on_ip(net.is_global_unicast))]),
        decl("cidr", [glob("string_to_cidr", ct, [s], _cidr)]),
        decl("isCIDR", [glob("is_cidr", b, [s], net.is_cidr)]),
        decl(
            "containsIP",
            [
                member("cidr_contains_ip_string", b, [ct, s], lambda c, a: net.contains_ip(c.value, a)),
                member("cidr_contains_ip_ip", b, [ct, ipt], lambda c, a: net.contains_ip(c.value, a.value)),
            ],
        ),
        decl(
            "containsCIDR",
            [
                member("cidr_contains_cidr_string", b, [ct, s], lambda c, o: net.contains_cidr(c.value, o)),
                member("cidr_contains_cidr", b, [ct, ct], lambda c, o: net.contains_cidr(c.value, o.value)),
            ],
        ),
        decl("masked", [member("cidr_masked", ct, [ct], lambda c: _cidr(net.masked(c.value)))]),
        decl("prefixLength", [member("cidr_prefix_length", i, [ct], lambda c: net.prefix_length(c.value))]),
        # string(net.CIDR) is missing: a second one-argument message overload of a name clashes at registration
        # in this engine (the impl-less routing used for compareTo does not work inside an extension).
        decl("string", [glob("ip_to_string", s, [ipt], _to_string)]),
    ]


@lru_cache(maxsize=1024)
def _url(text: str) -> Any:
    urls.parse(text)
    return _URL(value=text)


def _url_declarations() -> list[Any]:
    """The Kubernetes ``url`` library over ``net.URL`` messages (the text as given; parsing is cached)."""
    ut, s, b = cel.Type(URL_TYPE), cel.Type.STRING, cel.Type.BOOL
    query_type = cel.Type.Map(s, cel.Type.List(s))

    def getter(name: str, oid: str, ret: Any, fn: Callable[[str], Any]) -> Any:
        return cel.FunctionDecl(name, [cel.Overload(oid, ret, [ut], is_member=True, impl=lambda u: fn(u.value))])

    return [
        cel.FunctionDecl("url", [cel.Overload("string_to_url", ut, [s], impl=_url)]),
        cel.FunctionDecl("isURL", [cel.Overload("is_url_string", b, [s], impl=urls.is_url)]),
        getter("getScheme", "url_get_scheme", s, urls.scheme),
        getter("getHost", "url_get_host", s, urls.host),
        getter("getHostname", "url_get_hostname", s, urls.hostname),
        getter("getPort", "url_get_port", s, urls.port),
        getter("getEscapedPath", "url_get_escaped_path", s, urls.escaped_path),
        getter("getQuery", "url_get_query", query_type, urls.query),
    ]


def _library_declarations() -> list[Any]:
    """The Kubernetes ``lists`` and ``regex`` libraries, ``ext.Sets`` and ``ext.Lists``, as Python callbacks.

    ext.Lists has ``lists.range``, ``distinct``, ``flatten``, ``reverse``, ``slice`` and ``sort``; its macro
    ``sortBy`` and the optional-returning ``first``/``last`` cannot be written as callbacks in this engine.

    Lists are declared ``list(dyn)`` (the engine has no type parameters here), so an element type upstream's
    checker would reject (``[semver("1.0.0")].sum()``) fails at evaluation instead. They come in an extension
    placed after the strings extension: that is how the engine merges the list ``indexOf``/``lastIndexOf``
    overloads into the strings ones (declared as plain functions they clash with ``ALREADY_EXISTS``).
    """
    lt, s, b, i, d = cel.Type.List(cel.Type.DYN), cel.Type.STRING, cel.Type.BOOL, cel.Type.INT, cel.Type.DYN
    ls = cel.Type.List(s)

    def member(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any]) -> Any:
        return cel.Overload(oid, ret, params, is_member=True, impl=impl)

    def glob(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any]) -> Any:
        return cel.Overload(oid, ret, params, impl=impl)

    decl = cel.FunctionDecl
    return [
        decl("isSorted", [member("list_is_sorted", b, [lt], lists.is_sorted)]),
        decl("sum", [member("list_sum", d, [lt], lists.sum_of)]),
        decl("min", [member("list_min", d, [lt], lists.min_of)]),
        decl("max", [member("list_max", d, [lt], lists.max_of)]),
        decl("indexOf", [member("list_index_of", i, [lt, d], lists.index_of)]),
        decl("lastIndexOf", [member("list_last_index_of", i, [lt, d], lists.last_index_of)]),
        decl("sets.contains", [glob("list_sets_contains_list", b, [lt, lt], lists.sets_contains)]),
        decl("sets.equivalent", [glob("list_sets_equivalent_list", b, [lt, lt], lists.sets_equivalent)]),
        decl("sets.intersects", [glob("list_sets_intersects_list", b, [lt, lt], lists.sets_intersects)]),
        decl("lists.range", [glob("lists_range", cel.Type.List(i), [i], lists.lists_range)]),
        decl("distinct", [member("list_distinct", lt, [lt], lists.distinct)]),
        decl(
            "flatten",
            [member("list_flatten", lt, [lt], lists.flatten), member("list_flatten_int", lt, [lt, i], lists.flatten)],
        ),
        decl("reverse", [member("list_reverse", lt, [lt], lists.reverse)]),
        decl("slice", [member("list_slice", lt, [lt, i, i], lists.slice_of)]),
        decl("sort", [member("list_sort", lt, [lt], lists.sort)]),
        decl("find", [member("string_find_string", s, [s, s], regex.find)]),
        decl(
            "findAll",
            [
                member("string_find_all_string", ls, [s, s], regex.find_all),
                member("string_find_all_string_int", ls, [s, s, i], regex.find_all),
            ],
        ),
    ]


def _extensions() -> list[Any]:
    # Strings v2 as the Kubernetes base environment enables it (1.29). No ext math (math.greatest...) or
    # encoders (base64...): the Kubernetes base environment lacks them, so a selector using them must fail here
    # as it fails in the API server.
    return [
        ext_strings.ExtStrings(version=2),
        ext_optional.ExtOptional(),
        ext_bindings.ExtBindings(),
        cel.CelExtension(
            "kubernetes.libraries", _library_declarations() + _network_declarations() + _url_declarations()
        ),
    ]


def _check_variables() -> dict[str, Any]:
    """The ``device`` type as upstream declares it, spelled as qualified variables.

    The engine cannot declare an object type with map fields, but CEL resolves ``device.attributes`` to a
    variable of that exact qualified name before it tries field selection on ``device``. Declaring the four
    fields this way gives the checker upstream's types: ``attributes`` is ``map(string, map(string, dyn))``
    (a domain or attribute name of another type has no ``_[_]`` overload), ``capacity`` holds
    ``kubernetes.Quantity`` values (comparing one with an int has no ``_<_`` overload), ``driver`` is a string.
    """
    s = cel.Type.STRING
    return {
        "device": cel.Type.Map(s, cel.Type.DYN),
        "device.driver": s,
        "device.attributes": cel.Type.Map(s, cel.Type.Map(s, cel.Type.DYN)),
        "device.capacity": cel.Type.Map(s, cel.Type.Map(s, cel.Type(QUANTITY_TYPE))),
        "device.allowMultipleAllocations": cel.Type.BOOL,
    }


def _check_env() -> Any:
    """The environment used only to type-check (never to evaluate): ``device`` typed field by field."""
    global _CHECK_ENV
    if _CHECK_ENV is not None:
        return _CHECK_ENV
    with _ENV_LOCK:
        if _CHECK_ENV is None:
            _CHECK_ENV = cel.NewEnv(
                _POOL, variables=_check_variables(), functions=_declarations(), extensions=_extensions()
            )
    return _CHECK_ENV


def _env() -> Any:
    global _ENV
    if _ENV is not None:
        return _ENV
    with _ENV_LOCK:
        if _ENV is not None:
            return _ENV
        _ENV = cel.NewEnv(
            _POOL,
            variables={"device": cel.Type.Map(cel.Type.STRING, cel.Type.DYN)},
            functions=_declarations(),
            extensions=_extensions(),
        )
    return _ENV


# ---- error translation ------------------------------------------------------------------------------------

_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r"\s*\[[A-Z_]+\]\s*$")
_NO_KEY = re.compile(r'Key not found in map\s*:\s*"?([^"]*)"?')


def _clean(message: str) -> str:
    text = _STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", message.strip()))
    return text.strip()


def runtime_message(raw: str) -> str:
    """Engine error text in Kubernetes' words ('no such key: x'), with the hint upstream 1.37 adds."""
    text = _clean(raw)
    m = _NO_KEY.search(text)
    if m:
        return (
            f"no such key: {m.group(1)} (guard optional attributes with has(...) or "
            f'.?{m.group(1)}.orValue(...), e.g. device.attributes["<domain>"].?{m.group(1)}.orValue(<default>))'
        )
    if "Iteration budget exceeded" in text:
        return "evaluation exceeded the cost budget (too many iterations); simplify the selector"
    return text


def compile_message(raw: str) -> str:
    """The checker's issues as cel-go prints them (``ERROR: <input>:1:5: msg`` + `` | `` snippet and caret lines).

    cel-cpp already uses cel-go's layout; only the gRPC status prefix and suffix are dropped, so the API error
    reads as the API server's ``compilation failed: ERROR: <input>:...``.
    """
    return _clean(raw)


_TYPE_WORD = re.compile(r"\b[A-Z][A-Z_]*\b")


def type_name(engine_name: str) -> str:
    """An engine type name as cel-go spells it: ``MAP<STRING, DYN>`` -> ``map(string, dyn)``."""
    if "." in engine_name and "<" not in engine_name:
        return engine_name  # a message type such as kubernetes.Quantity
    text = engine_name.replace("<", "(").replace(">", ")")
    return _TYPE_WORD.sub(lambda m: m.group(0).lower(), text)


def type_check(text: str) -> str:
    """Check ``text`` against upstream's typed ``device``; the result type in cel-go's spelling.

    Raises CelCompileError with the checker's issues (no matching overload, undeclared reference, ...).
    """
    try:
        expr = _check_env().compile(text)
    except RuntimeError as e:
        raise CelCompileError(compile_message(str(e)), text) from e
    return type_name(expr.return_type().name())


# ---- programs ---------------------------------------------------------------------------------------------


class Program:
    """A compiled expression bound to the shared environment."""

    __slots__ = ("_expr", "checked_ast", "result_type", "text")

    def __init__(self, text: str, expr: Any) -> None:
        self.text = text
        self._expr = expr
        self.result_type: str = expr.return_type().name()
        self.checked_ast: bytes = expr.serialize()

    def evaluate(self, variables: dict[str, Any] | None = None, activation: Any = None) -> Any:
        """Result as a Python value; raises CelRuntimeError on an ERROR value or an engine exception.

        ``eval(data=...)`` builds a short-lived Activation inside the engine: the fastest path for one program,
        and nothing long-lived accumulates (long-lived Activations grow without bound in 0.1.3). Several
        programs over the same variables pass one ``activation`` (see :func:`activation`) instead, which
        converts the variables once.
        """
        try:
            result = (
                self._expr.eval(activation=activation) if activation is not None else self._expr.eval(data=variables)
            )
        except RuntimeError as e:
            raise CelRuntimeError(runtime_message(str(e)), self.text) from e
        value = result.value()
        if type(value) is bool:  # fast path: an ERROR value never surfaces as a bool
            return value
        if result.type() == cel.Type.ERROR:
            raise CelRuntimeError(runtime_message(str(value)), self.text)
        return value


def activation(variables: dict[str, Any]) -> Any:
    """Variables converted once for several programs. Keep it short-lived: drop it after the batch."""
    return _env().Activation(data=variables)


def compile_program(text: str) -> Program:
    try:
        expr = _env().compile(text)
    except RuntimeError as e:
        raise CelCompileError(compile_message(str(e)), text) from e
    return Program(text, expr)
