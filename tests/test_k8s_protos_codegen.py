"""The committed Kubernetes message classes are exactly what hack/gen-k8s-protos.sh compiles from the committed
upstream generated.proto files (no Go and no network needed: the .proto files are in api/k8s/proto/)."""

from __future__ import annotations

import filecmp
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
