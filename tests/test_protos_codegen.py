"""The committed generated code is exactly what hack/gen-protos.sh produces from the committed .proto files."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _generated(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    )


def test_regenerated_code_matches_committed(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    subprocess.run(["bash", str(repo_root / "hack/gen-protos.sh"), str(out)], check=True, env=env, capture_output=True)
    committed_root = repo_root / "api/kubelet"
    regenerated = _generated(out)
    assert regenerated == _generated(committed_root)
    assert len(regenerated) == 5 * 4  # five protos, four outputs each
    for rel in regenerated:
        assert filecmp.cmp(out / rel, committed_root / rel, shallow=False), f"{rel} is stale: run hack/gen-protos.sh"


def test_every_proto_has_its_own_package_folder(repo_root: Path) -> None:
    protos = sorted(str(p.relative_to(repo_root / "api/kubelet")) for p in (repo_root / "api/kubelet").rglob("*.proto"))
    assert protos == [
        "dra/v1/api.proto",
        "dra/v1beta1/api.proto",
        "dra_health/v1/api.proto",
        "dra_health/v1alpha1/api.proto",
        "pluginregistration/v1/api.proto",
    ]
    for rel in protos:
        assert (repo_root / "api/kubelet" / rel).with_name("__init__.py").is_file()
