"""The committed Kubernetes message classes are exactly what hack/gen-k8s-protos.sh compiles from the committed
upstream generated.proto files (no Go and no network needed: the .proto files are in api/k8s/proto/)."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import subprocess
import sys
from pathlib import Path


def _generated(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*_pb2.py"))


def test_regenerated_k8s_code_matches_committed(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    subprocess.run(["bash", str(repo_root / "hack/gen-k8s-protos.sh"), str(out)], check=True, env=env,
                   capture_output=True)
    committed = repo_root / "api/k8s"
    regenerated = _generated(out)
    assert regenerated == _generated(committed)
    assert {"api/resource/v1/generated_pb2.py", "apimachinery/pkg/apis/meta/v1/generated_pb2.py"} <= set(regenerated)
    for rel in regenerated:
        assert filecmp.cmp(out / rel, committed / rel, shallow=False), f"{rel} is stale: run hack/gen-k8s-protos.sh"


def test_protos_are_upstream_files_with_their_license(repo_root: Path) -> None:
    protos = sorted((repo_root / "api/k8s/proto/k8s.io").rglob("generated.proto"))
    assert len(protos) == 16
    for proto in protos:
        text = proto.read_text()
        assert "Licensed under the Apache License, Version 2.0" in text and 'syntax = "proto2";' in text
    assert (repo_root / "api/k8s/proto/VERSION").read_text().strip() == "v0.37.2"
    for pkg in {p.parent for p in (repo_root / "api/k8s").rglob("generated_pb2.py")}:
        assert (pkg / "__init__.py").is_file()


def test_zero_value_table_reads_pointers_and_omitempty_from_go_struct_tags(repo_root: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("k8s_go_fields", repo_root / "hack/k8s_go_fields.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "types.go"
    src.write_text(
        "type ResourcePool struct {\n"
        '\tName string `json:"name" protobuf:"bytes,1,opt,name=name"`\n'
        '\tGeneration int64 `json:"generation" protobuf:"varint,2,opt,name=generation"`\n'
        '\tNote string `json:"note,omitempty" protobuf:"bytes,3,opt,name=note"`\n'
        '\tAllNodes *bool `json:"allNodes,omitempty" protobuf:"varint,4,opt,name=allNodes"`\n'
        '\tItems []string `json:"items" protobuf:"bytes,5,rep,name=items"`\n'
        '\tLocalObjectReference `json:",inline" protobuf:"bytes,6,opt,name=localObjectReference"`\n'
        '\tNoProto string `json:"noProto"`\n'
        "}\n")
    assert module.fields_keeping_zero(src) == {"ResourcePool": ["name", "generation", "allNodes"]}
    table = json.loads((repo_root / "api/k8s/go_zero_fields.json").read_text())
    assert {"generation", "resourceSliceCount", "name"} <= set(table["k8s.io.api.resource.v1.ResourcePool"])
    assert "generateName" not in table["k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
