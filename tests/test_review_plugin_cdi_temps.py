"""Review fix: temp files a killed CDI writer left behind are cleaned up, and only this driver's."""

from __future__ import annotations

from pathlib import Path

from prepare_helpers import FakeClaimSource, claim, make_preparer, new_uid, ref, result


def test_stale_spec_temps_are_removed_on_the_first_call_only_ours(tmp_path: Path) -> None:
    c1 = claim("c1", results=[result("n1-c0-group-0")])
    p = make_preparer(tmp_path, FakeClaimSource(c1))
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    ours = cdi / f".snn.dra.dev-snn_{new_uid()}.json.k3j2h1.tmp"
    foreign = cdi / f".other.vendor-gpu_{new_uid()}.json.k3j2h1.tmp"
    not_a_uid = cdi / ".snn.dra.dev-snn_not-a-uid.json.k3j2h1.tmp"
    other_spec = cdi / "other.vendor-gpu.json"
    for f in (ours, foreign, not_a_uid, other_spec):
        f.write_text("{}")

    assert not p.prepare([ref(c1)])[ref(c1).uid].error

    assert not ours.exists()
    assert foreign.exists() and not_a_uid.exists() and other_spec.exists()
    assert p.cdi.path_for(ref(c1).uid).exists()

    later = cdi / f".snn.dra.dev-snn_{new_uid()}.json.aaaaaa.tmp"  # another instance may be writing it now
    later.write_text("{}")
    assert p.unprepare([ref(c1)]) == {ref(c1).uid: ""}
    assert later.exists(), "only the first call of a process cleans up"


def test_a_restarted_preparer_cleans_up_again(tmp_path: Path) -> None:
    c1 = claim("c1", results=[result("n1-c0-group-0")])
    make_preparer(tmp_path, FakeClaimSource(c1)).prepare([ref(c1)])
    stale = tmp_path / "cdi" / f".snn.dra.dev-snn_{ref(c1).uid}.json.zzzzzz.tmp"
    stale.write_text("{}")
    assert make_preparer(tmp_path, FakeClaimSource(c1)).unprepare([ref(c1)]) == {ref(c1).uid: ""}
    assert not stale.exists()
    assert list((tmp_path / "cdi").iterdir()) == []
