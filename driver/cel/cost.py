"""Static analysis of a checked DRA selector: an approximate cost estimate, referenced domains, misuse.

cel-go's estimator is not available in any Python engine, so the estimate here follows its shape: every node
costs about 1, string work costs ~0.1 per character, and a comprehension costs its body times the largest size
its range can have. Sizes come from the limits the Kubernetes estimator assumes for the DRA environment (≤ 32
domains x ≤ 32 entries, strings ≤ 64, driver ≤ 63). The figure is an upper bound of the same order as upstream's,
not the same number; it is used to reject selectors that would be far too expensive (> 1,000,000).

The same walk collects the attribute domains a selector names literally (so an absent domain can read as an
empty map, as upstream) and reports field accesses that do not exist on ``device`` or on opaque Kubernetes types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from snn_dra.driver.cel.checked import position

MAX_DOMAINS = 32
MAX_ENTRIES = 32
MAX_STRING = 64
MAX_DRIVER = 63
MAX_RANGE = 1_000_000  # lists.range(n) of a computed n: as large as the runtime limit lets it be
DEVICE_FIELDS = ("driver", "attributes", "capacity", "allowMultipleAllocations")
OPAQUE_TYPES = ("kubernetes.Quantity", "kubernetes.Semver", "net.IP", "net.CIDR", "net.URL")

_STRING_SCAN = {
    "contains",
    "startsWith",
    "endsWith",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "indexOf",
    "lastIndexOf",
    "charAt",
    "reverse",
    "join",
    "format",
    "quote",
    "string",
    "bytes",
    "base64.encode",
    "base64.decode",
}
_LIST_SCAN = {"sum", "min", "max", "isSorted", "sort", "distinct", "flatten", "@in", "includes", "slice"}


@dataclass(frozen=True, slots=True)
class Shape:
    """Upper bounds of a value: ``size`` = max length or element count; ``elem``/``key`` for containers."""

    size: int = 1
    elem: Shape | None = None
    key: Shape | None = None
    kind: str = ""


_STRING = Shape(MAX_STRING)
_UNKNOWN = Shape(MAX_STRING, elem=Shape(MAX_STRING), key=Shape(MAX_STRING))
_DOMAIN_MAP = Shape(MAX_ENTRIES, elem=_UNKNOWN, key=Shape(32))
_ATTRIBUTES = Shape(MAX_DOMAINS, elem=_DOMAIN_MAP, key=Shape(63))
_DEVICE = Shape(4, kind="device")


@dataclass
class Analysis:
    cost: int = 0
    domains: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # ``has(device.<field>)``: the typed checker resolves it as the qualified variable (a known engine quirk),
    # so such selectors are type-checked with ``device`` as a dynamic map only.
    tests_device_field: bool = False


def analyze(checked: Any, text: str) -> Analysis:
    """Walk the checked AST of ``text``; ``problems`` holds messages with line:column positions."""
    walker = _Walker(checked, text)
    cost, _ = walker.walk(checked.expr, {})
    walker.result.cost = math.ceil(cost)
    return walker.result


class _Walker:
    def __init__(self, checked: Any, text: str) -> None:
        self.checked = checked
        self.text = text
        self.result = Analysis()
        self.types = {k: v.message_type for k, v in checked.type_map.items() if v.message_type}

    def problem(self, expr: Any, message: str) -> None:
        pos = position(self.text, self.checked, expr.id)
        where = f"ERROR: <input>:{pos[0]}:{pos[1]}: " if pos else ""
        self.result.problems.append(where + message)

    def walk(self, expr: Any, scope: dict[str, Shape]) -> tuple[float, Shape]:
        kind = expr.WhichOneof("expr_kind")
        if kind == "const_expr":
            c = expr.const_expr
            which = c.WhichOneof("constant_kind")
            if which == "string_value":
                return 0.0, Shape(len(c.string_value))
            if which == "bytes_value":
                return 0.0, Shape(len(c.bytes_value))
            return 0.0, Shape()
        if kind == "ident_expr":
            name = expr.ident_expr.name
            if name == "device":
                return 1.0, _DEVICE
            return 1.0, scope.get(name, _UNKNOWN)
        if kind == "select_expr":
            return self._select(expr, scope)
        if kind == "call_expr":
            return self._call(expr, scope)
        if kind == "list_expr":
            total, elem = 10.0, Shape(0)
            for e in expr.list_expr.elements:
                c, s = self.walk(e, scope)
                total += c
                elem = _join(elem, s)
            return total, Shape(len(expr.list_expr.elements), elem=elem)
        if kind == "struct_expr":
            st = expr.struct_expr
            if st.message_name:
                self.problem(expr, f"creating objects ({st.message_name}) is not supported in device selectors")
            total = 30.0
            for entry in st.entries:
                if entry.WhichOneof("key_kind") == "map_key":
                    total += self.walk(entry.map_key, scope)[0]
                total += self.walk(entry.value, scope)[0]
            return total, Shape(len(st.entries), elem=_UNKNOWN, key=_UNKNOWN)
        if kind == "comprehension_expr":
            return self._comprehension(expr, scope)
        return 1.0, _UNKNOWN

    def _select(self, expr: Any, scope: dict[str, Shape]) -> tuple[float, Shape]:
        sel = expr.select_expr
        cost, operand = self.walk(sel.operand, scope)
        cost += 1
        if sel.test_only:
            if operand.kind == "device":
                self.result.tests_device_field = True
            if operand.kind == "device" and sel.field not in DEVICE_FIELDS:
                self.problem(expr, _unknown_device_field(sel.field))
            return cost, Shape()
        if operand.kind == "device":
            return cost, self._device_field(expr, sel.field)
        if operand.kind == "domains":
            self.result.domains.add(sel.field)
        if self.types.get(sel.operand.id) in OPAQUE_TYPES:
            self.problem(expr, f"{self.types[sel.operand.id]} has no field {sel.field!r}; use its methods")
        return cost, operand.elem or _UNKNOWN

    def _device_field(self, expr: Any, name: str) -> Shape:
        if name in ("attributes", "capacity"):
            return Shape(_ATTRIBUTES.size, elem=_DOMAIN_MAP, key=_ATTRIBUTES.key, kind="domains")
        if name == "driver":
            return Shape(MAX_DRIVER)
        if name == "allowMultipleAllocations":
            return Shape()
        self.problem(expr, _unknown_device_field(name))
        return _UNKNOWN

    def _call(self, expr: Any, scope: dict[str, Shape]) -> tuple[float, Shape]:
        call = expr.call_expr
        fn = call.function
        target: Shape | None = None
        cost = 0.0
        if call.HasField("target"):
            c, target = self.walk(call.target, scope)
            cost += c
        args: list[Shape] = []
        for a in call.args:
            c, s = self.walk(a, scope)
            cost += c
            args.append(s)
        if fn in ("_[_]", "_[?_]", "_?._") and len(args) == 2:
            container = args[0]
            k = call.args[1]
            literal = k.const_expr.string_value if k.WhichOneof("expr_kind") == "const_expr" else None
            if container.kind == "device" and literal is not None:
                return cost + 1, self._device_field(expr, literal)
            if container.kind == "domains" and literal is not None:
                self.result.domains.add(literal)
            return cost + 1, container.elem or _UNKNOWN
        if fn in ("_&&_", "_||_", "_?_:_", "!_", "@not_strictly_false"):
            return cost, (args[-1] if fn == "_?_:_" and args else Shape())
        subject = target if target is not None else (args[0] if args else Shape())
        if fn in ("_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"):
            biggest = max((s.size for s in args), default=1)
            return cost + 1 + math.ceil(0.1 * biggest), Shape()
        if fn == "_+_" and len(args) == 2:
            size = args[0].size + args[1].size
            return cost + 1 + math.ceil(0.1 * size), Shape(size, elem=_join(args[0].elem, args[1].elem))
        if fn == "matches":
            pattern = args[-1].size if args else MAX_STRING
            return cost + 1 + math.ceil(0.1 * subject.size) * max(1, math.ceil(0.25 * pattern)), Shape()
        if fn in ("find", "findAll"):
            pattern = args[-1].size if args else MAX_STRING
            out = Shape(subject.size, elem=Shape(subject.size))
            return cost + 1 + math.ceil(0.1 * subject.size) * max(1, math.ceil(0.25 * pattern)), out
        if fn in _STRING_SCAN:
            out = Shape(subject.size, elem=Shape(subject.size)) if fn == "split" else Shape(max(subject.size, 1))
            return cost + 1 + math.ceil(0.1 * subject.size) + sum(math.ceil(0.1 * s.size) for s in args), out
        if fn in ("sets.contains", "sets.equivalent", "sets.intersects") and len(args) == 2:
            return cost + 1 + args[0].size * args[1].size, Shape()
        if fn in ("indexOf", "lastIndexOf") and subject.elem is not None:
            return cost + 1 + subject.size, Shape()  # a list: one comparison per element
        if fn == "lists.range" and len(call.args) == 1:
            n = call.args[0]
            const = n.const_expr.int64_value if n.WhichOneof("expr_kind") == "const_expr" else None
            size = const if const is not None and const >= 0 else MAX_RANGE
            return cost + 1 + size, Shape(size, elem=Shape())
        if fn in _LIST_SCAN:
            container = args[-1] if fn == "@in" and args else subject
            return cost + 1 + container.size, container.elem or Shape()
        if fn == "size":
            return cost + 1, Shape()
        return cost + 1, _UNKNOWN

    def _comprehension(self, expr: Any, scope: dict[str, Shape]) -> tuple[float, Shape]:
        comp = expr.comprehension_expr
        cost, rng = self.walk(comp.iter_range, scope)
        n = max(rng.size, 0)
        inner = dict(scope)
        is_map = rng.key is not None
        if comp.iter_var2:
            inner[comp.iter_var] = rng.key if is_map and rng.key else Shape()
            inner[comp.iter_var2] = rng.elem or _UNKNOWN
        else:
            inner[comp.iter_var] = (rng.key if is_map and rng.key else rng.elem) or _UNKNOWN
        init_cost, init = self.walk(comp.accu_init, scope)
        inner[comp.accu_var] = Shape(n, elem=_UNKNOWN) if init.size == 0 and init.elem is not None else init
        body = self.walk(comp.loop_condition, inner)[0] + self.walk(comp.loop_step, inner)[0]
        res_cost, res = self.walk(comp.result, inner)
        return cost + init_cost + n * body + res_cost, res


def _join(a: Shape | None, b: Shape | None) -> Shape:
    if a is None:
        return b or _UNKNOWN
    if b is None:
        return a
    return Shape(max(a.size, b.size), elem=_join(a.elem, b.elem) if a.elem or b.elem else None)


def _unknown_device_field(name: str) -> str:
    return f"undefined field {name!r} on device; use one of: {', '.join(DEVICE_FIELDS)}"
