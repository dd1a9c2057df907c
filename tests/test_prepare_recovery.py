"""Crash safety: a kill at every named step, CDI specs lost with tmpfs, reboots, a corrupt checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from prepare_helpers import FakeClaimSource, assert_specs_valid, claim, make_preparer, ref, result

from snn_dra.driver.prepare import FAULT_STEPS


class Killed(BaseException):
    """Stands in for SIGKILL: unwinds past every ``except Exception``; what is on disk is what a kill leaves."""


def _killer(step: str):  # type: ignore[no-untyped-def]
    def hook(name: str) -> None:
        assert name in FAULT_STEPS
        if name == step:
            raise Killed(step)

    return hook


def _ckpt(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state" / "checkpoint.json").read_text())


PREPARE_STEPS = [
    "before_checkpoint_started",
    "after_checkpoint_started",
    "after_cdi_written",
    "after_checkpoint_completed",
]


@pytest.mark.parametrize("step", PREPARE_STEPS)
def test_kill_during_prepare_then_retry_succeeds(tmp_path: Path, step: str) -> None:
    a = claim("a", results=[result("n1-c1-group-0")])
    rival = claim("rival", results=[result("n1-c1")])
    src = FakeClaimSource(a, rival)
    with pytest.raises(Killed):
        make_preparer(tmp_path, src, hook=_killer(step)).prepare([ref(a)])
    reference = make_preparer(tmp_path / "clean", FakeClaimSource(a)).prepare([ref(a)])

    p = make_preparer(tmp_path, src)  # the restarted plugin
    out = p.prepare([ref(a)])
    assert out == reference  # same CDI IDs as an uninterrupted run
    (spec,) = assert_specs_valid(tmp_path / "cdi")
    assert spec == json.loads((tmp_path / "clean" / "cdi" / f"snn.dra.dev-snn_{a['metadata']['uid']}.json").read_text())
    assert _ckpt(tmp_path)["claims"][a["metadata"]["uid"]]["state"] == "PrepareCompleted"
    assert "overlaps cores" in p.prepare([ref(rival)])[rival["metadata"]["uid"]].error


def test_started_claim_is_rolled_back_by_the_next_call_of_any_kind(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c1")])
    src = FakeClaimSource(a)
    with pytest.raises(Killed):
        make_preparer(tmp_path, src, hook=_killer("after_cdi_written")).prepare([ref(a)])
    assert _ckpt(tmp_path)["claims"][a["metadata"]["uid"]]["state"] == "PrepareStarted"
    assert len(list((tmp_path / "cdi").iterdir())) == 1
    other = claim("other", results=[result("n1-c0")])
    src.add(other)
    p = make_preparer(tmp_path, src)
    assert p.unprepare([ref(other)]) == {other["metadata"]["uid"]: ""}
    assert _ckpt(tmp_path)["claims"] == {}
    assert list((tmp_path / "cdi").iterdir()) == []
    # the device the dead call had taken is free again
    b = claim("b", results=[result("n1-c1")])
    src.add(b)
    assert p.prepare([ref(b)])[b["metadata"]["uid"]].error == ""


def test_kill_during_rollback_is_finished_by_the_next_call(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c1")])
    src = FakeClaimSource(a)
    with pytest.raises(Killed):
        make_preparer(tmp_path, src, hook=_killer("after_checkpoint_started")).prepare([ref(a)])
    with pytest.raises(Killed):
        make_preparer(tmp_path, src, hook=_killer("rollback_after_cdi_removed")).prepare([ref(a)])
    out = make_preparer(tmp_path, src).prepare([ref(a)])
    assert out[a["metadata"]["uid"]].error == ""
    assert len(assert_specs_valid(tmp_path / "cdi")) == 1


@pytest.mark.parametrize(
    "step", ["unprepare_before_cdi_removed", "unprepare_after_cdi_removed", "unprepare_after_checkpoint"]
)
def test_kill_during_unprepare_then_retry_cleans_up(tmp_path: Path, step: str) -> None:
    a = claim("a", results=[result("n1-c1")])
    src = FakeClaimSource(a)
    make_preparer(tmp_path, src).prepare([ref(a)])
    with pytest.raises(Killed):
        make_preparer(tmp_path, src, hook=_killer(step)).unprepare([ref(a)])
    p = make_preparer(tmp_path, src)
    assert p.unprepare([ref(a)]) == {a["metadata"]["uid"]: ""}
    assert list((tmp_path / "cdi").iterdir()) == []
    assert _ckpt(tmp_path)["claims"] == {}


def test_spec_wiped_from_tmpfs_is_rewritten_on_next_prepare(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c1-group-0")])
    src = FakeClaimSource(a)
    first = make_preparer(tmp_path, src).prepare([ref(a)])
    (before,) = assert_specs_valid(tmp_path / "cdi")
    shutil.rmtree(tmp_path / "cdi")  # tmpfs gone, checkpoint on disk stays
    again = make_preparer(tmp_path, src).prepare([ref(a)])
    assert again == first
    assert assert_specs_valid(tmp_path / "cdi") == [before]


def test_damaged_spec_is_rewritten(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c0")])
    src = FakeClaimSource(a)
    p = make_preparer(tmp_path, src)
    p.prepare([ref(a)])
    (path,) = (tmp_path / "cdi").iterdir()
    good = path.read_text()
    path.write_text('{"cdiVersion": "0.3.0", "kind": "evil.example/x", "devices": []}')
    p.prepare([ref(a)])
    assert path.read_text() == good


def test_reboot_keeps_completed_claims_and_rewrites_specs(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c1")])
    b = claim("b", results=[result("n1-c0-group-0")])
    src = FakeClaimSource(a, b)
    make_preparer(tmp_path, src).prepare([ref(a), ref(b)])
    specs = assert_specs_valid(tmp_path / "cdi")
    shutil.rmtree(tmp_path / "cdi")
    (tmp_path / "boot_id").write_text("boot-2\n")
    # the first call after the reboot is an unrelated unprepare; it must still restore both specs
    p = make_preparer(tmp_path, src)
    unrelated = claim("z", results=[])
    assert p.unprepare([ref(unrelated)]) == {unrelated["metadata"]["uid"]: ""}
    assert assert_specs_valid(tmp_path / "cdi") == specs
    ckpt = _ckpt(tmp_path)
    assert ckpt["bootID"] == "boot-2" and set(ckpt["claims"]) == {a["metadata"]["uid"], b["metadata"]["uid"]}
    # and devices stay protected against double assignment
    rival = claim("rival", results=[result("n1-c1")])
    src.add(rival)
    assert "already prepared" in p.prepare([ref(rival)])[rival["metadata"]["uid"]].error


def test_corrupt_checkpoint_is_reported_and_prepare_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = claim("a", results=[result("n1-c1")])
    src = FakeClaimSource(a)
    p = make_preparer(tmp_path, src)
    p.prepare([ref(a)])
    (tmp_path / "state" / "checkpoint.json").write_text("\x00garbage")
    out = p.prepare([ref(a)])
    assert out[a["metadata"]["uid"]].error == ""
    assert list((tmp_path / "state").glob("checkpoint.json.corrupt-*"))
    assert any("is corrupt" in r.getMessage() and "checkpoint.json" in r.getMessage() for r in caplog.records)
    assert _ckpt(tmp_path)["claims"][a["metadata"]["uid"]]["state"] == "PrepareCompleted"


def test_reboot_removes_specs_of_claims_the_checkpoint_does_not_know(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c1")])
    src = FakeClaimSource(a)
    make_preparer(tmp_path, src).prepare([ref(a)])
    orphan = tmp_path / "cdi" / "snn.dra.dev-snn_5f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d.json"
    orphan.write_text((tmp_path / "cdi" / f"snn.dra.dev-snn_{a['metadata']['uid']}.json").read_text())
    foreign = tmp_path / "cdi" / "vendor.example-gpu_x.json"
    foreign.write_text("{}")
    (tmp_path / "boot_id").write_text("boot-2\n")
    make_preparer(tmp_path, src).prepare([ref(a)])
    assert not orphan.exists()
    assert foreign.exists()  # other drivers' files are never touched
