"""Derive from the Go types of k8s.io/api and k8s.io/apimachinery which protobuf fields keep their zero value in JSON.

Go's protobuf marshalling writes every non-pointer field, zero or not, so a zero on the wire says nothing about
whether JSON would show it. Go's JSON encoder shows it when the field is a pointer (set to zero on purpose) or has
no ``omitempty`` (``ResourcePool.generation: 0``). This reads the struct tags of the Go sources and prints, as JSON,
``{"<proto message full name>": ["<proto field>", ...]}`` for the scalar fields whose zero JSON keeps.

Usage: k8s_go_fields.py <modcache>/k8s.io/api@vX <modcache>/k8s.io/apimachinery@vX <api pkg>... -- <machinery pkg>...
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_STRUCT = re.compile(r"^type (\w+) struct \{$")
_FIELD = re.compile(r"^\s+\w+\s+(\S+)\s+`(.*)`")


def fields_keeping_zero(src: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in src.read_text().splitlines():
        if m := _STRUCT.match(line):
            current = m.group(1)
            continue
        if line.startswith("}"):
            current = None
            continue
        m = _FIELD.match(line)
        if current is None or m is None:
            continue
        gotype, tags = m.groups()
        pb = re.search(r'protobuf:"(\w+),\d+,[^"]*name=(\w+)', tags)
        js = re.search(r'json:"([^"]*)"', tags)
        if pb is None or pb.group(1) not in ("varint", "bytes") or js is None:
            continue
        json_name, *opts = js.group(1).split(",")
        if gotype.startswith(("[", "map[")) or json_name in ("", "-"):
            continue
        if gotype.startswith("*") or "omitempty" not in opts:
            out.setdefault(current, []).append(pb.group(2))
    return out


def main(argv: list[str]) -> None:
    api, machinery, *rest = argv
    cut = rest.index("--")
    roots = [(Path(api), "k8s.io.api", p) for p in rest[:cut]]
    roots += [(Path(machinery), "k8s.io.apimachinery", p) for p in rest[cut + 1:]]
    table: dict[str, list[str]] = {}
    for root, prefix, pkg in roots:
        package = prefix + "." + pkg.replace("/", ".")
        for src in sorted((root / pkg).glob("*.go")):
            if src.name.endswith("_test.go"):
                continue
            for struct, names in fields_keeping_zero(src).items():
                table.setdefault(f"{package}.{struct}", []).extend(names)
    json.dump({k: sorted(set(v)) for k, v in sorted(table.items())}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
