"""Rolling updates: two plugin versions share checkpoint.json, so another version's file is read, never set aside.

Every known version is read, unknown fields are kept through a save, an unknown state is held (never rolled
back), and a save writes the lowest version that holds its content, so the older plugin keeps reading it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from prepare_helpers import FakeClaimSource, claim, make_preparer, ref, result

from snn_dra.api.checkpoint import CHECKPOINT_VERSION, KNOWN_VERSIONS, CheckpointClaim, ClaimState
from snn_dra.driver.checkpoint import CheckpointStore

DATA = Path(__file__).resolve().parent / "data" / "checkpoint"
U1 = "1f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
U2 = "2f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
U3 = "3f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"

# What the version 1 reader of plugin v0.1.0 accepts (it forbids every other key).
V1_HEADER = {"apiVersion", "kind", "version", "bootID", "claims"}
V1_ENTRY = {"namespace", "name", "uid", "state", "devices", "configHash", "cdiSpecFile", "cdiSpec"}
V1_DEVICE = {"requests", "pool", "device", "cdiDeviceIDs", "shareID", "adminAccess", "chipID", "cores", "shared"}


def _store(tmp_path: Path, fixture: str) -> CheckpointStore:
    (tmp_path / "boot").write_text("boot-1\n")
    store = CheckpointStore(tmp_path / "state", boot_id_path=tmp_path / "boot")
    store.dir.mkdir()
    shutil.copy(DATA / fixture, store.path)
    return store


def _saved(store: CheckpointStore) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(store.path.read_text())
    return data


def test_this_code_knows_versions_1_and_2() -> None:
    assert KNOWN_VERSIONS == (1, 2) and CHECKPOINT_VERSION == 2


def test_a_version_1_file_is_read_as_it_was_written(tmp_path: Path) -> None:
    store = _store(tmp_path, "v1.json")
    loaded = store.load()
    assert loaded.trusted and loaded.problems == [] and loaded.version == 1
    assert {u: c.state for u, c in loaded.claims.items()} == {
        U1: ClaimState.PREPARE_COMPLETED,
        U2: ClaimState.PREPARE_STARTED,
    }
    assert loaded.claims[U2].devices[0].cores == [4, 5]
    assert not list(store.dir.glob("*.corrupt-*"))
    store.save(loaded.claims)
    saved = _saved(store)
    assert saved["version"] == 1, "nothing in it needs version 2, so an older plugin must still read it"
    assert set(saved) == V1_HEADER
    for entry in saved["claims"].values():
        assert set(entry) == V1_ENTRY and all(set(d) == V1_DEVICE for d in entry["devices"])
    original = json.loads((DATA / "v1.json").read_text())
    assert saved["claims"] == original["claims"]


def test_a_newer_version_with_unknown_fields_is_read_and_its_fields_survive_a_save(tmp_path: Path) -> None:
    store = _store(tmp_path, "v3-unknown-fields.json")
    loaded = store.load()
    assert loaded.trusted and loaded.problems == [] and loaded.version == 3
    assert not list(store.dir.glob("*.corrupt-*")), "another version's file is not corrupt"
    done = loaded.claims[U1]
    assert done.state is ClaimState.PREPARE_COMPLETED and done.devices[0].device == "n1-c0"
    # The state this version does not know is held: never rolled back, devices stay taken.
    verifying = loaded.claims[U3]
    assert verifying.state is ClaimState.RECOVERED
    assert verifying.recovered_from is not None and "PrepareVerified" in verifying.recovered_from
    store.save(loaded.claims)
    saved = _saved(store)
    assert saved["version"] == 2  # it now holds a Recovered entry
    assert saved["claims"][U1]["firmwareSlot"] == 2
    assert saved["claims"][U1]["devices"][0]["vendorHandle"] == "h-7"
    assert saved["claims"][U3]["state"] == "Recovered"


def test_an_unknown_field_in_a_known_version_is_read_not_dropped(tmp_path: Path) -> None:
    store = _store(tmp_path, "v1.json")
    data = json.loads(store.path.read_text())
    data["claims"][U1]["addedLater"] = {"x": 1}
    data["addedLaterToo"] = True
    store.path.write_text(json.dumps(data))
    loaded = store.load()
    assert loaded.trusted and loaded.problems == [] and set(loaded.claims) == {U1, U2}
    store.save(loaded.claims)
    assert _saved(store)["claims"][U1]["addedLater"] == {"x": 1}


def test_a_save_writes_version_2_only_while_an_entry_is_recovered(tmp_path: Path) -> None:
    store = _store(tmp_path, "v1.json")
    claims = store.load().claims
    held = claims[U1].model_copy(update={"state": ClaimState.RECOVERED, "recovered_from": "test"})
    store.save({**claims, U1: held})
    assert _saved(store)["version"] == 2 and _saved(store)["claims"][U1]["recoveredFrom"] == "test"
    assert CheckpointClaim.model_validate(_saved(store)["claims"][U1]).state is ClaimState.RECOVERED
    store.save(claims)
    assert _saved(store)["version"] == 1


@pytest.mark.parametrize("version", [1, 2, 7])
def test_the_preparer_honours_a_completed_claim_of_any_version(tmp_path: Path, version: int) -> None:
    """A newer (or older) plugin prepared claim a; this plugin answers a from it and refuses a's device to b."""
    a = claim("a", results=[result("n1-c1")])
    b = claim("b", results=[result("n1-c1")])
    src = FakeClaimSource(a, b)
    first = make_preparer(tmp_path, src).prepare([ref(a)])
    path = tmp_path / "state" / "checkpoint.json"
    data = json.loads(path.read_text())
    data["version"] = version
    data["writtenBy"] = f"snn-dra speaking version {version}"
    data["claims"][a["metadata"]["uid"]]["futureField"] = [1, 2, 3]
    path.write_text(json.dumps(data))
    p = make_preparer(tmp_path, src)
    assert p.prepare([ref(a)]) == first
    assert "already prepared" in p.prepare([ref(b)])[b["metadata"]["uid"]].error
    assert not list((tmp_path / "state").glob("*.corrupt-*"))
    assert json.loads(path.read_text())["claims"][a["metadata"]["uid"]]["futureField"] == [1, 2, 3]
