"""Review fixes in prepare/checkpoint: every claim gets the real error, one bad entry never wedges the node."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from prepare_helpers import FakeClaimSource, claim, make_model, make_preparer, ref, result

from snn_dra.driver import cdi as cdimod
from snn_dra.driver.checkpoint import CheckpointStore


def _two_claims(tmp_path: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    c1 = claim("c1", results=[result("n1-c0-group-0")])
    c2 = claim("c2", results=[result("n1-c1-group-0")])
    return make_preparer(tmp_path, FakeClaimSource(c1, c2), model=make_model()), c1, c2


def _enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_cdi_write_gives_every_new_claim_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p, c1, c2 = _two_claims(tmp_path)
    monkeypatch.setattr(cdimod.CdiWriter, "write_many", _enospc)
    res = p.prepare([ref(c1), ref(c2)])
    assert set(res) == {ref(c1).uid, ref(c2).uid}
    for c in (c1, c2):
        assert "No space left on device" in res[ref(c).uid].error and not res[ref(c).uid].devices
        assert f"default/{c['metadata']['name']}" in res[ref(c).uid].error


def test_every_claim_gets_the_error_even_when_the_rollback_save_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, c1, c2 = _two_claims(tmp_path)
    monkeypatch.setattr(CheckpointStore, "save", _enospc)
    res = p.prepare([ref(c1), ref(c2)])
    assert set(res) == {ref(c1).uid, ref(c2).uid}
    assert all("writing state failed" in r.error for r in res.values())


def _poison(tmp_path: Path, uid: str) -> None:
    ck = tmp_path / "state" / "checkpoint.json"
    data = json.loads(ck.read_text())
    edits = data["claims"][uid]["cdiSpec"]["devices"][0]["containerEdits"]
    edits["hooks"] = [{"hookName": "createContainer", "path": "/bin/true"}]
    ck.write_text(json.dumps(data))


def test_an_entry_with_an_unwritable_cdi_spec_is_set_aside_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p, c1, c2 = _two_claims(tmp_path)
    assert not p.prepare([ref(c1)])[ref(c1).uid].error
    _poison(tmp_path, ref(c1).uid)
    (tmp_path / "boot_id").write_text("boot-2\n")  # a reboot makes every spec get rewritten
    with caplog.at_level(logging.ERROR):
        assert p.unprepare([ref(c2)]) == {ref(c2).uid: ""}
    assert any(ref(c1).uid in r.getMessage() and "cdiSpec" in r.getMessage() for r in caplog.records)
    assert list((tmp_path / "state").glob("checkpoint.json.corrupt-*")), "a copy of the bad file is kept"
    res = p.prepare([ref(c2)])
    assert not res[ref(c2).uid].error
    assert p.unprepare([ref(c1)]) == {ref(c1).uid: ""}
    assert ref(c1).uid not in p.store.load().claims


def test_a_failed_rewrite_on_a_checkpoint_hit_is_that_claims_error_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, c1, c2 = _two_claims(tmp_path)
    res = p.prepare([ref(c1), ref(c2)])
    assert not any(r.error for r in res.values())
    for c in (c1, c2):
        p.cdi.remove(ref(c).uid)  # tmpfs lost the specs
    real = cdimod.CdiWriter.write_many
    bad = ref(c1).uid

    def fail_one(self: cdimod.CdiWriter, specs: Any) -> None:
        if any(uid == bad for uid, _ in specs):
            raise OSError(errno.EIO, "Input/output error")
        real(self, specs)

    monkeypatch.setattr(cdimod.CdiWriter, "write_many", fail_one)
    res = p.prepare([ref(c1), ref(c2)])
    assert "Input/output error" in res[bad].error
    assert not res[ref(c2).uid].error and res[ref(c2).uid].devices
    assert p.cdi.path_for(ref(c2).uid).exists()


def test_a_failed_rewrite_after_a_reboot_does_not_fail_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, c1, c2 = _two_claims(tmp_path)
    assert not p.prepare([ref(c1)])[ref(c1).uid].error
    (tmp_path / "boot_id").write_text("boot-2\n")
    for f in (tmp_path / "cdi").glob("*.json"):
        f.unlink()
    real = cdimod.CdiWriter.write_many
    broken = {"on": True}

    def flaky(self: cdimod.CdiWriter, specs: Any) -> None:
        if broken["on"] and any(uid == ref(c1).uid for uid, _ in specs):
            raise OSError(errno.EIO, "Input/output error")
        real(self, specs)

    monkeypatch.setattr(cdimod.CdiWriter, "write_many", flaky)
    res = p.prepare([ref(c2)])  # the reboot rewrite of c1 fails; c2 must still be prepared
    assert not res[ref(c2).uid].error
    assert ref(c1).uid in p.store.load().claims, "the entry is kept so its devices stay protected"
    again = p.prepare([ref(c1)])
    assert "Input/output error" in again[ref(c1).uid].error
    broken["on"] = False
    assert not p.prepare([ref(c1)])[ref(c1).uid].error
    assert p.cdi.path_for(ref(c1).uid).exists()
