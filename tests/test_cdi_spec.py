"""CDI models, minimum-version rules, file naming, the atomic writer; specs checked against the upstream schema."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from prepare_helpers import cdi_validator
from pydantic import ValidationError

from snn_dra.api.cdi import CdiContainerEdits, CdiDevice, CdiDeviceNode, CdiMount, CdiSpec
from snn_dra.driver.cdi import KIND, CdiWriter, SpecDevice, build_spec, minimum_version, spec_file_name, spec_json

UID = "6f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"


def _spec(**kw: object) -> CdiSpec:
    base: dict[str, object] = {
        "cdiVersion": "1.1.0",
        "kind": "snn.dra.dev/snn",
        "devices": [{"name": "dev", "containerEdits": {"env": ["A=1"]}}],
    }
    base.update(kw)
    return CdiSpec.model_validate(base)


@pytest.mark.parametrize(
    ("spec", "version"),
    [
        (_spec(), "0.3.0"),
        (_spec(devices=[{"name": "0dev", "containerEdits": {}}]), "0.5.0"),
        (
            _spec(
                devices=[{"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/y"}]}}]
            ),
            "0.5.0",
        ),
        (_spec(devices=[{"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x"}]}}]), "0.3.0"),
        (
            _spec(
                devices=[
                    {
                        "name": "d",
                        "containerEdits": {"mounts": [{"hostPath": "/a", "containerPath": "/b", "type": "bind"}]},
                    }
                ]
            ),
            "0.4.0",
        ),
        (
            _spec(devices=[{"name": "d", "containerEdits": {"mounts": [{"hostPath": "/a", "containerPath": "/b"}]}}]),
            "0.3.0",
        ),
        (_spec(annotations={"a": "b"}), "0.6.0"),
        (_spec(devices=[{"name": "d", "annotations": {"a": "b"}, "containerEdits": {}}]), "0.6.0"),
        (_spec(kind="snn.dra.dev/snn.core"), "0.6.0"),
        (_spec(containerEdits={"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/x"}]}), "0.5.0"),
    ],
)
def test_minimum_version(spec: CdiSpec, version: str) -> None:
    assert minimum_version(spec) == version
    # the lowest version is what gets written, and it is schema-valid
    data = spec_json(spec.model_copy(update={"cdi_version": version}))
    assert not list(cdi_validator().iter_errors(data))


@pytest.mark.parametrize(
    "bad",
    [
        {"cdiVersion": "2.0.0"},
        {"kind": "nokind"},
        {"kind": "snn.dra.dev/-bad"},
        {"devices": []},
        {"devices": [{"name": "-x", "containerEdits": {}}]},
        {"devices": [{"name": "a/b", "containerEdits": {}}]},
        {"devices": [{"name": "d", "containerEdits": {"env": ["NOEQUALS"]}}]},
        {"devices": [{"name": "d", "containerEdits": {"env": ["A=1\nB=2"]}}]},
        {"devices": [{"name": "d", "containerEdits": {"deviceNodes": [{"path": "relative"}]}}]},
        {"devices": [{"name": "d", "containerEdits": {"hooks": [{"hookName": "createContainer", "path": "/bin/sh"}]}}]},
        {"devices": [{"name": "d", "containerEdits": {"intelRdt": {"closID": "x"}}}]},
    ],
)
def test_models_reject_what_the_driver_must_never_write(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _spec(**bad)


def test_build_spec_uses_minimum_version_and_kind() -> None:
    spec = build_spec([SpecDevice(name="abc-dev", env=("X=1",), device_nodes=(CdiDeviceNode(path="/dev/akida0"),))])
    assert spec.kind == KIND and spec.cdi_version == "0.3.0"
    assert spec.qualified_name("abc-dev") == "snn.dra.dev/snn=abc-dev"
    data = spec_json(spec)
    assert data == {
        "cdiVersion": "0.3.0",
        "kind": "snn.dra.dev/snn",
        "devices": [{"name": "abc-dev", "containerEdits": {"env": ["X=1"], "deviceNodes": [{"path": "/dev/akida0"}]}}],
    }
    assert not list(cdi_validator().iter_errors(data))


def test_validator_catches_schema_violations() -> None:
    """Guard against a validator that accepts everything (the $ref to defs.json must resolve)."""
    errors = list(
        cdi_validator().iter_errors(
            {
                "cdiVersion": "0.3.0",
                "kind": "a/b",
                "devices": [{"name": "d", "containerEdits": {"deviceNodes": [{"hostPath": "/x"}]}}],
            }
        )
    )
    assert any("'path' is a required property" in e.message for e in errors)


@pytest.mark.parametrize(
    "uid", ["../x", "6F1E5C3A-2D4F-4A6B-8C9D-0E1F2A3B4C5D", "", "a" * 36, f"{UID}/..", f"../{UID}"]
)
def test_spec_file_name_refuses_non_uuid(uid: str) -> None:
    with pytest.raises(ValueError, match="not a UUID"):
        spec_file_name(uid)


def test_writer_is_atomic_world_readable_and_replaces(tmp_path: Path) -> None:
    w = CdiWriter(tmp_path / "cdi")
    spec = spec_json(build_spec([SpecDevice(name=f"{UID}-d", env=("A=1",))]))
    path = w.write(UID, spec)
    assert path == tmp_path / "cdi" / f"snn.dra.dev-snn_{UID}.json"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o644
    assert json.loads(path.read_text()) == spec
    assert w.is_current(UID, spec)
    spec2 = spec_json(build_spec([SpecDevice(name=f"{UID}-d", env=("A=2",))]))
    assert not w.is_current(UID, spec2)
    w.write(UID, spec2)
    assert w.read(UID) == spec2
    assert [p.name for p in (tmp_path / "cdi").iterdir()] == [path.name]  # no temp files left
    path.chmod(0o666)
    assert not w.is_current(UID, spec2)  # a loosened mode counts as damage and gets rewritten
    assert w.remove(UID) and not w.remove(UID)


def test_writer_mode_ignores_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o077)
    try:
        path = CdiWriter(tmp_path).write(UID, spec_json(build_spec([SpecDevice(name="d", env=())])))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_container_edit_models_dump_camel_case() -> None:
    edits = CdiContainerEdits(
        device_nodes=[CdiDeviceNode(path="/dev/a", host_path="/dev/b")],
        mounts=[CdiMount(host_path="/h", container_path="/c")],
    )
    dev = CdiDevice(name="d", container_edits=edits)
    assert dev.model_dump(by_alias=True, exclude_none=True) == {
        "name": "d",
        "containerEdits": {
            "deviceNodes": [{"path": "/dev/a", "hostPath": "/dev/b"}],
            "mounts": [{"hostPath": "/h", "containerPath": "/c"}],
        },
    }


def test_resolve_merges_edits_and_refuses_unknown_ids(tmp_path: Path) -> None:
    from snn_dra.driver.cdi import UnresolvableCdiDevicesError, resolve

    w = CdiWriter(tmp_path / "run")
    node = CdiDeviceNode(path="/dev/akida0")
    w.write(UID, spec_json(build_spec([SpecDevice(f"{UID}-a", ("A=1",), (node,)), SpecDevice(f"{UID}-b", ("B=2",))])))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "static.json").write_text(
        json.dumps(
            {
                "cdiVersion": "0.3.0",
                "kind": "snn.dra.dev/snn",
                "devices": [{"name": f"{UID}-a", "containerEdits": {"env": ["OLD=1"]}}],
            }
        )
    )
    merged = resolve([f"snn.dra.dev/snn={UID}-a", f"snn.dra.dev/snn={UID}-b"], [tmp_path / "etc", tmp_path / "run"])
    assert merged["env"] == ["A=1", "B=2"]  # the later dir wins
    assert merged["deviceNodes"] == [{"path": "/dev/akida0"}]
    with pytest.raises(UnresolvableCdiDevicesError, match=r"snn\.dra\.dev/snn=missing"):
        resolve(["snn.dra.dev/snn=missing"], [tmp_path / "run"])
