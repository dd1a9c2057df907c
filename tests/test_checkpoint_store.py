"""Checkpoint store: atomic owner-only writes, previous generation, corruption moved aside and reported."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from snn_dra.api.checkpoint import CheckpointClaim, CheckpointDevice, ClaimState
from snn_dra.driver.checkpoint import CheckpointStore, read_boot_id

UIDS = [
    "1f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d",
    "2f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d",
    "3f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d",
]


def _entry(uid: str, name: str = "c", state: ClaimState = ClaimState.PREPARE_COMPLETED) -> CheckpointClaim:
    return CheckpointClaim(
        namespace="default",
        name=name,
        uid=uid,
        state=state,
        devices=[
            CheckpointDevice(
                requests=["req"],
                pool="node-a",
                device="n1-c0",
                cdi_device_ids=[f"snn.dra.dev/snn={uid}-n1-c0"],
                chip_id="n1-c0",
                cores=[0, 1],
            )
        ],
        config_hash="0" * 64,
        cdi_spec_file=f"snn.dra.dev-snn_{uid}.json",
        cdi_spec={
            "cdiVersion": "0.3.0",
            "kind": "snn.dra.dev/snn",
            "devices": [{"name": f"{uid}-n1-c0", "containerEdits": {}}],
        },
    )


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    (tmp_path / "boot").write_text("boot-A\n")
    return CheckpointStore(tmp_path / "state", boot_id_path=tmp_path / "boot")


def test_round_trip_mode_and_boot_id(store: CheckpointStore) -> None:
    assert store.load().claims == {}
    claims = {u: _entry(u, f"c{i}") for i, u in enumerate(UIDS)}
    store.save(claims)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    loaded = store.load()
    assert loaded.claims == claims and loaded.boot_id == "boot-A" and loaded.problems == []
    assert sorted(p.name for p in store.dir.iterdir()) == ["checkpoint.json"]
    store.save({})
    assert json.loads(store.prev_path.read_text())["claims"].keys() == set(UIDS)  # previous generation kept


def test_unparsable_file_is_set_aside_and_the_previous_generation_is_only_evidence(store: CheckpointStore) -> None:
    store.save({UIDS[0]: _entry(UIDS[0])})
    store.save({UIDS[0]: _entry(UIDS[0]), UIDS[1]: _entry(UIDS[1], "c1")})
    store.path.write_bytes(store.path.read_bytes()[:40])  # torn write (what rename prevents, e.g. disk damage)
    loaded = store.load()
    assert not loaded.trusted, "a fallback to an older generation must be marked untrusted"
    assert list(loaded.claims) == [UIDS[0]]
    (problem,) = loaded.problems
    assert str(store.path) in problem and "not valid JSON" in problem and "previous generation" in problem
    assert "cannot be trusted" in problem and "remove the .corrupt file" in problem
    corrupt = list(store.dir.glob("checkpoint.json.corrupt-*"))
    assert len(corrupt) == 1 and len(corrupt[0].read_bytes()) == 40
    assert not store.path.exists()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("empty", "empty (0 bytes"),
        ("blank", "empty (only whitespace)"),
        ("garbage", "not valid JSON"),
        ("array", "not a JSON object"),
        ("directory", "unreadable (IsADirectoryError"),
        ("previous-only", "missing although the previous generation"),
        ("foreign-header", "header invalid at kind"),
    ],
)
def test_every_kind_of_damage_makes_the_load_untrusted(store: CheckpointStore, damage: str, why: str) -> None:
    store.save({UIDS[0]: _entry(UIDS[0])})
    store.save({UIDS[0]: _entry(UIDS[0]), UIDS[1]: _entry(UIDS[1], "c1")})
    if damage == "empty":
        store.path.write_bytes(b"")
    elif damage == "blank":
        store.path.write_bytes(b"  \n")
    elif damage == "garbage":
        store.path.write_bytes(b"\x00\xff garbage")
    elif damage == "array":
        store.path.write_text("[]")
    elif damage == "directory":
        store.path.unlink()
        store.path.mkdir()
    elif damage == "previous-only":
        store.path.unlink()
    else:
        store.path.write_text(json.dumps({"apiVersion": "snn.dra.dev/v1alpha1", "kind": "Other", "claims": {}}))
    loaded = store.load()
    assert not loaded.trusted
    assert any(why in p for p in loaded.problems), loaded.problems
    assert list(loaded.claims) == [UIDS[0]]  # the previous generation, as evidence


def test_a_permission_error_is_damage_too(store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads a 0000 file anyway, so the EACCES a non-root plugin would get is injected."""
    store.save({UIDS[0]: _entry(UIDS[0])})
    real = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path == store.path:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    loaded = store.load()
    assert not loaded.trusted
    assert any("unreadable (PermissionError: Permission denied)" in p for p in loaded.problems)


def test_both_generations_corrupt_leaves_nothing_but_says_so(store: CheckpointStore) -> None:
    store.dir.mkdir(parents=True)
    store.path.write_text("{")
    store.prev_path.write_text("nope")
    loaded = store.load()
    assert loaded.claims == {} and not loaded.trusted
    assert "previous generation is unusable too" in loaded.problems[0]


def test_first_start_is_trusted_and_empty(store: CheckpointStore) -> None:
    loaded = store.load()
    assert loaded.claims == {} and loaded.trusted and loaded.problems == []


def test_one_bad_entry_does_not_poison_the_rest(store: CheckpointStore) -> None:
    store.save({u: _entry(u, f"c{i}") for i, u in enumerate(UIDS)})
    data = json.loads(store.path.read_text())
    data["claims"][UIDS[1]]["state"] = "Halfway"
    data["claims"][UIDS[2]]["cdiSpecFile"] = "../../etc/passwd"
    store.path.write_text(json.dumps(data))
    loaded = store.load()
    assert list(loaded.claims) == [UIDS[0]]
    assert loaded.trusted  # the file is the latest; two entries in it are lost
    assert loaded.lost == {UIDS[1]: ("default", "c1"), UIDS[2]: ("default", "c2")}
    assert any(UIDS[1] in p and "state" in p for p in loaded.problems)
    assert any(UIDS[2] in p and "inconsistent" in p for p in loaded.problems)
    assert any("copy" in p for p in loaded.problems)
    assert len(list(store.dir.glob("checkpoint.json.corrupt-*"))) == 1
    assert store.path.exists()  # the file itself stays until the next save drops the bad entries


def test_stale_temp_files_are_cleaned(store: CheckpointStore) -> None:
    store.save({})
    (store.dir / ".checkpoint.json.abc123.tmp").write_text("{half")
    store.load()
    assert sorted(p.name for p in store.dir.iterdir()) == ["checkpoint.json"]


def test_boot_id_unreadable_is_empty(tmp_path: Path) -> None:
    assert read_boot_id(tmp_path / "missing") == ""
    assert read_boot_id("/proc/sys/kernel/random/boot_id") != ""
