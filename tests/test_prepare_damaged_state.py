"""Damaged prepare state never hands a device out twice.

History before the damage: claim ``a`` (chip n1-c1) completed, then claim ``b`` (core group n1-c0-group-0)
completed; b is the newest completed claim, so the previous checkpoint generation still shows it as
PrepareStarted. Rolling that generation back would delete b's CDI spec (the kubelet was told b is prepared)
and free its cores for the next claim. Whatever the damage, the tests check: no rollback of a completed claim,
every device that a claim may hold is refused to others, a and b are answered as before, the damage is
reported (log and alarm), and what can be proven (CDI specs, claims in the API server) is recovered.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prepare_helpers import FakeClaimSource, claim, make_model, make_preparer, ref, result

from snn_dra.driver.claims import ClaimLookupError
from snn_dra.driver.prepare import ClaimResult, Preparer

STATE = "state"
MODEL = make_model()


def _cores(device: str) -> set[tuple[str, int]]:
    d = MODEL.by_name(device)
    assert d is not None
    return {(d.chip.id, c.index) for c in d.cores}


def _damage(tmp: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp / STATE
    current = state / "checkpoint.json"
    if kind == "truncated":
        current.write_bytes(current.read_bytes()[: len(current.read_bytes()) // 2])
    elif kind == "empty":
        current.write_bytes(b"")
    elif kind == "garbage":
        current.write_bytes(bytes(range(256)))
    elif kind == "unreadable":  # EISDIR: something else now sits at the path
        current.unlink()
        current.mkdir()
    elif kind == "permission":  # EACCES (root reads 0000 files anyway, so the error is injected)
        real = Path.read_bytes
        damaged = current.stat().st_ino  # only that file: the one written after recovery is the plugin's own

        def read_bytes(path: Path) -> bytes:
            if path == current and path.exists() and path.stat().st_ino == damaged:
                raise PermissionError(13, "Permission denied")
            return real(path)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    elif kind == "previous-only":
        current.unlink()
    elif kind == "entry-damaged":
        data = json.loads(current.read_text())
        for entry in data["claims"].values():
            if entry["name"] == "b":
                entry["devices"] = "??"
        current.write_text(json.dumps(data))
    elif kind == "both-generations-garbage":
        current.write_bytes(b"{")
        (state / "checkpoint.json.prev").write_bytes(b"}")
    elif kind == "state-dir-wiped":
        shutil.rmtree(state)
    else:  # pragma: no cover
        raise AssertionError(kind)


DAMAGE = [
    "truncated",
    "empty",
    "garbage",
    "unreadable",
    "permission",
    "previous-only",
    "entry-damaged",
    "both-generations-garbage",
    "state-dir-wiped",
]


class History:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.a = claim("a", results=[result("n1-c1")])
        self.b = claim("b", results=[result("n1-c0-group-0")])
        self.src = FakeClaimSource(self.a, self.b)
        self.alarms: list[str] = []
        p = self.preparer()
        self.first = {**p.prepare([ref(self.a)]), **p.prepare([ref(self.b)])}
        assert all(r.error == "" for r in self.first.values())
        self.specs = {f.name: f.read_bytes() for f in (tmp / "cdi").iterdir()}
        prev = json.loads((tmp / STATE / "checkpoint.json.prev").read_text())
        assert prev["claims"][self.uid(self.b)]["state"] == "PrepareStarted", "the history this test is about"

    def preparer(self) -> Preparer:
        return make_preparer(self.tmp, self.src, alarm=self.alarms.append)

    @staticmethod
    def uid(obj: dict[str, Any]) -> str:
        return str(obj["metadata"]["uid"])


def _holders(tmp: Path) -> dict[tuple[str, int] | str, set[str]]:
    """Every core (and every exclusive device) -> the claims holding it, from the checkpoint on disk."""
    data = json.loads((tmp / STATE / "checkpoint.json").read_text())
    held: dict[tuple[str, int] | str, set[str]] = {}
    for uid, entry in data["claims"].items():
        for d in entry["devices"]:
            if d["adminAccess"] or d["shared"]:
                continue
            for key in [d["device"], *((d["chipID"], c) for c in d["cores"])]:
                held.setdefault(key, set()).add(uid)
    return held


def _assert_no_device_twice(tmp: Path) -> None:
    twice = {k: v for k, v in _holders(tmp).items() if len(v) > 1}
    assert not twice, f"held by two claims: {twice}"


@pytest.mark.parametrize("kind", DAMAGE)
def test_no_device_is_ever_prepared_for_two_claims(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = History(tmp_path)
    _damage(tmp_path, kind, monkeypatch)
    p = h.preparer()
    rivals = [
        claim("on-b-group", results=[result("n1-c0-group-0")]),  # b's exact device
        claim("on-b-chip", results=[result("n1-c0")]),  # the whole chip around b's cores
        claim("on-a-group", results=[result("n1-c1-group-1")]),  # cores inside a's chip
    ]
    for r in rivals:
        h.src.add(r)
        out: ClaimResult = p.prepare([ref(r)])[h.uid(r)]
        assert out.error and ("already prepared" in out.error or "overlaps cores" in out.error), (kind, out)
        _assert_no_device_twice(tmp_path)
    # The completed claims are answered exactly as before, and their specs were never deleted.
    assert p.prepare([ref(h.a), ref(h.b)]) == h.first
    assert {f.name: f.read_bytes() for f in (tmp_path / "cdi").iterdir()} == h.specs
    # A device nobody holds is still given out: the plugin is careful, not stuck.
    free = claim("free", results=[result("n1-c0-group-1")])
    h.src.add(free)
    assert p.prepare([ref(free)])[h.uid(free)].error == ""
    _assert_no_device_twice(tmp_path)
    # Said loudly, once: log and alarm name the damage.
    assert len(h.alarms) == 1, h.alarms
    assert "could not be trusted" in h.alarms[0] and "Nothing was rolled back" in h.alarms[0]
    assert any(r.levelname == "ERROR" and "could not be trusted" in r.getMessage() for r in caplog.records)
    data = json.loads((tmp_path / STATE / "checkpoint.json").read_text())
    assert {e["state"] for e in data["claims"].values()} == {"PrepareCompleted"}, "all confirmed by the API server"


@pytest.mark.parametrize("kind", ["truncated", "previous-only", "state-dir-wiped"])
def test_a_held_claim_gone_from_the_api_server_is_released(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proof of absence frees the device: b was deleted (its pods are gone), so b's group may go to c."""
    h = History(tmp_path)
    del h.src.claims[("default", "b")]
    _damage(tmp_path, kind, monkeypatch)
    p = h.preparer()
    c = claim("c", results=[result("n1-c0-group-0")])
    h.src.add(c)
    assert p.prepare([ref(c)])[h.uid(c)].error == ""
    assert not (tmp_path / "cdi" / f"snn.dra.dev-snn_{h.uid(h.b)}.json").exists()
    assert "1 released" in h.alarms[0]
    rival = claim("rival", results=[result("n1-c1")])  # a is still in the API server: still held
    h.src.add(rival)
    assert "already prepared" in p.prepare([ref(rival)])[h.uid(rival)].error
    _assert_no_device_twice(tmp_path)


class Unreachable:
    """An API server that cannot be reached (not proof of anything), until ``up`` is set."""

    def __init__(self, inner: FakeClaimSource) -> None:
        self.inner = inner
        self.up = False

    def get(self, namespace: str, name: str) -> Any:
        if not self.up:
            raise ClaimLookupError(f"resourceclaim {namespace}/{name}: API server unreachable after retries")
        return self.inner.get(namespace, name)


def test_without_the_api_server_held_claims_stay_held_until_they_can_be_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = History(tmp_path)
    _damage(tmp_path, "truncated", monkeypatch)
    api = Unreachable(h.src)
    p = make_preparer(tmp_path, api, alarm=h.alarms.append)
    assert p.unprepare([ref(claim("unrelated"))])  # the first call after the damage recovers and checks
    data = json.loads((tmp_path / STATE / "checkpoint.json").read_text())
    assert data["version"] == 2
    assert {e["name"]: e["state"] for e in data["claims"].values()} == {"a": "Recovered", "b": "Recovered"}
    assert "2 still held" in h.alarms[0]
    api.up = True
    rival = claim("rival", results=[result("n1-c0-group-0")])
    h.src.add(rival)
    assert "already prepared" in p.prepare([ref(rival)])[h.uid(rival)].error
    data = json.loads((tmp_path / STATE / "checkpoint.json").read_text())
    assert {e["state"] for e in data["claims"].values()} == {"PrepareCompleted"}
    assert data["version"] == 1  # back to what an older plugin reads
    assert p.prepare([ref(h.a), ref(h.b)]) == h.first
    _assert_no_device_twice(tmp_path)


def test_unprepare_releases_a_held_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = History(tmp_path)
    _damage(tmp_path, "garbage", monkeypatch)
    api = Unreachable(h.src)
    p = make_preparer(tmp_path, api)
    assert p.unprepare([ref(h.b)]) == {h.uid(h.b): ""}
    assert not (tmp_path / "cdi" / f"snn.dra.dev-snn_{h.uid(h.b)}.json").exists()
    api.up = True
    c = claim("c", results=[result("n1-c0-group-0")])
    h.src.add(c)
    assert p.prepare([ref(c)])[h.uid(c)].error == ""
    _assert_no_device_twice(tmp_path)


@pytest.mark.parametrize("mutate", ["spec-unreadable", "spec-without-claim-name"])
def test_a_spec_that_proves_nothing_is_reported(tmp_path: Path, mutate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    h = History(tmp_path)
    _damage(tmp_path, "state-dir-wiped", monkeypatch)
    spec = tmp_path / "cdi" / f"snn.dra.dev-snn_{h.uid(h.b)}.json"
    edit: Callable[[str], str] = (
        (lambda _text: "{not json")
        if mutate == "spec-unreadable"
        else (lambda text: text.replace("_CLAIM=default/b", "_CLAIM=nowhere"))
    )
    spec.write_text(edit(spec.read_text()))
    h.preparer().unprepare([ref(claim("unrelated"))])
    assert len(h.alarms) == 1 and f"claim {h.uid(h.b)}" in h.alarms[0]


def test_a_damaged_entry_without_a_spec_is_recovered_from_the_api_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b's entry is damaged and its spec was lost with tmpfs: only the API server still knows b's devices."""
    h = History(tmp_path)
    _damage(tmp_path, "entry-damaged", monkeypatch)
    (tmp_path / "cdi" / f"snn.dra.dev-snn_{h.uid(h.b)}.json").unlink()
    p = h.preparer()
    rival = claim("rival", results=[result("n1-c0-group-0")])
    h.src.add(rival)
    assert "already prepared" in p.prepare([ref(rival)])[h.uid(rival)].error
    assert "1 confirmed" in h.alarms[0]
    assert p.prepare([ref(h.b)]) == {h.uid(h.b): h.first[h.uid(h.b)]}
    assert (tmp_path / "cdi" / f"snn.dra.dev-snn_{h.uid(h.b)}.json").read_bytes() == h.specs[
        f"snn.dra.dev-snn_{h.uid(h.b)}.json"
    ]
    _assert_no_device_twice(tmp_path)


def test_a_damaged_entry_that_nothing_can_explain_is_named_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = History(tmp_path)
    _damage(tmp_path, "entry-damaged", monkeypatch)
    (tmp_path / "cdi" / f"snn.dra.dev-snn_{h.uid(h.b)}.json").unlink()
    make_preparer(tmp_path, Unreachable(h.src), alarm=h.alarms.append).unprepare([ref(claim("unrelated"))])
    [alarm] = h.alarms
    assert f"the devices of claim(s) {h.uid(h.b)} are unknown" in alarm and "delete their pods" in alarm


def test_an_entry_whose_pool_name_was_corrupted_still_holds_its_cores(tmp_path: Path) -> None:
    """A valid-looking entry with a damaged pool name (found by hack/bench/fuzz_checkpoint.py: one bit flip,
    "node-a" -> "nodema") still holds its device and cores: this plugin prepares only its own node's pool, so a
    pool that differs proves nothing about the device being free."""
    h = History(tmp_path)
    current = tmp_path / STATE / "checkpoint.json"
    data = json.loads(current.read_text())
    entry = data["claims"][h.uid(h.a)]
    entry["devices"][0]["pool"] = "corrupted-" + entry["devices"][0]["pool"]
    current.write_text(json.dumps(data))
    p = h.preparer()
    for rival in (
        claim("on-a-chip", results=[result("n1-c1")]),
        claim("on-a-group", results=[result("n1-c1-group-1")]),
    ):
        h.src.add(rival)
        out = p.prepare([ref(rival)])[h.uid(rival)]
        assert "already prepared" in out.error or "overlaps cores" in out.error, out
    _assert_no_device_twice(tmp_path)
