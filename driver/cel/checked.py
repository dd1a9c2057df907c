"""Decoding of a type-checked CEL program (the standard ``cel.expr.CheckedExpr`` proto) for static analysis.

Engines that expose the checked AST (cel-cpp does through ``serialize()``) give us the exact parse tree, so the
cost estimate, the referenced attribute domains and the ``device`` field check do not rely on text matching.
Only the fields the analysis reads are declared; protobuf skips the rest.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    *,
    type_name: str = "",
    repeated: bool = False,
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=_REP if repeated else _OPT)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


def _build_pool() -> descriptor_pool.DescriptorPool:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="snn_dra/cel_checked_subset.proto", package="cel.expr", syntax="proto3"
    )
    const = fdp.message_type.add(name="Constant")
    const.oneof_decl.add(name="constant_kind")
    for name, num, ft in (
        ("null_value", 1, _F.TYPE_INT32),
        ("bool_value", 2, _F.TYPE_BOOL),
        ("int64_value", 3, _F.TYPE_INT64),
        ("uint64_value", 4, _F.TYPE_UINT64),
        ("double_value", 5, _F.TYPE_DOUBLE),
        ("string_value", 6, _F.TYPE_STRING),
        ("bytes_value", 7, _F.TYPE_BYTES),
    ):
        _field(const, name, num, ft, oneof=0)

    expr = fdp.message_type.add(name="Expr")
    expr.oneof_decl.add(name="expr_kind")
    _field(expr, "id", 2, _F.TYPE_INT64)
    ident = expr.nested_type.add(name="Ident")
    _field(ident, "name", 1, _F.TYPE_STRING)
    select = expr.nested_type.add(name="Select")
    _field(select, "operand", 1, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(select, "field", 2, _F.TYPE_STRING)
    _field(select, "test_only", 3, _F.TYPE_BOOL)
    call = expr.nested_type.add(name="Call")
    _field(call, "target", 1, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(call, "function", 2, _F.TYPE_STRING)
    _field(call, "args", 3, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr", repeated=True)
    clist = expr.nested_type.add(name="CreateList")
    _field(clist, "elements", 1, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr", repeated=True)
    cstruct = expr.nested_type.add(name="CreateStruct")
    entry = cstruct.nested_type.add(name="Entry")
    entry.oneof_decl.add(name="key_kind")
    _field(entry, "id", 1, _F.TYPE_INT64)
    _field(entry, "field_key", 2, _F.TYPE_STRING, oneof=0)
    _field(entry, "map_key", 3, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr", oneof=0)
    _field(entry, "value", 4, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(cstruct, "message_name", 1, _F.TYPE_STRING)
    _field(cstruct, "entries", 2, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr.CreateStruct.Entry", repeated=True)
    comp = expr.nested_type.add(name="Comprehension")
    _field(comp, "iter_var", 1, _F.TYPE_STRING)
    _field(comp, "iter_range", 2, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(comp, "accu_var", 3, _F.TYPE_STRING)
    _field(comp, "accu_init", 4, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(comp, "loop_condition", 5, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(comp, "loop_step", 6, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(comp, "result", 7, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(comp, "iter_var2", 8, _F.TYPE_STRING)
    for name, num, tname in (
        ("const_expr", 3, ".cel.expr.Constant"),
        ("ident_expr", 4, ".cel.expr.Expr.Ident"),
        ("select_expr", 5, ".cel.expr.Expr.Select"),
        ("call_expr", 6, ".cel.expr.Expr.Call"),
        ("list_expr", 7, ".cel.expr.Expr.CreateList"),
        ("struct_expr", 8, ".cel.expr.Expr.CreateStruct"),
        ("comprehension_expr", 9, ".cel.expr.Expr.Comprehension"),
    ):
        _field(expr, name, num, _F.TYPE_MESSAGE, type_name=tname, oneof=0)

    ctype = fdp.message_type.add(name="Type")
    ctype.oneof_decl.add(name="type_kind")
    _field(ctype, "message_type", 9, _F.TYPE_STRING, oneof=0)

    src = fdp.message_type.add(name="SourceInfo")
    pos = src.nested_type.add(name="PositionsEntry")
    pos.options.map_entry = True
    _field(pos, "key", 1, _F.TYPE_INT64)
    _field(pos, "value", 2, _F.TYPE_INT32)
    _field(src, "positions", 4, _F.TYPE_MESSAGE, type_name=".cel.expr.SourceInfo.PositionsEntry", repeated=True)

    checked = fdp.message_type.add(name="CheckedExpr")
    tm = checked.nested_type.add(name="TypeMapEntry")
    tm.options.map_entry = True
    _field(tm, "key", 1, _F.TYPE_INT64)
    _field(tm, "value", 2, _F.TYPE_MESSAGE, type_name=".cel.expr.Type")
    _field(checked, "type_map", 3, _F.TYPE_MESSAGE, type_name=".cel.expr.CheckedExpr.TypeMapEntry", repeated=True)
    _field(checked, "expr", 4, _F.TYPE_MESSAGE, type_name=".cel.expr.Expr")
    _field(checked, "source_info", 5, _F.TYPE_MESSAGE, type_name=".cel.expr.SourceInfo")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return pool


_POOL = _build_pool()
_CHECKED = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("cel.expr.CheckedExpr"))


def decode_checked(serialized: bytes) -> Any:
    """Parse ``Any(CheckedExpr)`` or bare ``CheckedExpr`` bytes into a dynamic message (fields as in the proto)."""
    wrapper = any_pb2.Any()
    payload = serialized
    try:
        wrapper.ParseFromString(serialized)
        if wrapper.type_url.endswith("cel.expr.CheckedExpr"):
            payload = wrapper.value
    except Exception:  # not an Any: treat as bare CheckedExpr
        payload = serialized
    msg: Message = _CHECKED()
    msg.ParseFromString(payload)
    return msg


def position(text: str, checked: Any, expr_id: int) -> tuple[int, int] | None:
    """1-based (line, column) of an AST node in ``text``, for error messages."""
    offset = checked.source_info.positions.get(expr_id)
    if offset is None:
        return None
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1
