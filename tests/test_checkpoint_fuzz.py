"""Property tests of the checkpoint loader and of recovery: no input makes it raise, none hands a device out twice.

The unit suite runs a few hundred inputs; the properties are the ones the issue asks of a longer fuzz run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prepare_helpers import FakeClaimSource, claim, make_preparer, ref, result

from snn_dra.api.checkpoint import CheckpointClaim
from snn_dra.driver.checkpoint import CheckpointStore

json_scalar = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
KEYS = ["apiVersion", "kind", "version", "bootID", "claims", "state", "devices", "namespace", "name", "uid"]
checkpoint_like = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.just("snn.dra.dev/v1alpha1") | json_value,
        "kind": st.just("Checkpoint") | json_value,
        "version": st.integers(-3, 9) | json_value,
        "bootID": st.text(max_size=8) | json_value,
        "claims": st.dictionaries(
            st.text(max_size=40),
            st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_value, max_size=8) | json_value,
            max_size=3,
        )
        | json_value,
    },
)


def _store(root: Path) -> CheckpointStore:
    (root / "boot").write_text("boot-1\n")
    store = CheckpointStore(root / "state", boot_id_path=root / "boot")
    store.dir.mkdir()
    return store


def _check_loaded(store: CheckpointStore) -> None:
    loaded = store.load()  # never raises
    for uid, entry in loaded.claims.items():
        assert isinstance(entry, CheckpointClaim) and entry.uid == uid
    assert loaded.trusted or loaded.problems, "an untrusted load always says why"
    store.save(loaded.claims)  # and what it kept can be written back and read again
    assert store.load().claims == loaded.claims


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_break_the_loader(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp))
        store.path.write_bytes(data)
        _check_loaded(store)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(checkpoint_like)
def test_arbitrary_json_shapes_never_break_the_loader(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp))
        store.path.write_text(json.dumps(doc))
        _check_loaded(store)


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[Path, bytes, dict[str, Any], dict[str, Any], Any]]:
    """Claims a then b prepared (b the newest): the template every example damages a copy of."""
    with tempfile.TemporaryDirectory(prefix="snn-ckpt-fuzz-") as tmp:
        root = Path(tmp) / "template"
        a = claim("a", uid="0a000000-0000-4000-8000-000000000001", results=[result("n1-c1")])
        b = claim("b", uid="0b000000-0000-4000-8000-000000000002", results=[result("n1-c0-group-0")])
        p = make_preparer(root, FakeClaimSource(a, b))
        first = {**p.prepare([ref(a)]), **p.prepare([ref(b)])}
        yield root, (root / "state" / "checkpoint.json").read_bytes(), a, b, first


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(0, 1), zeroed=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 64)), max_size=3))
def test_no_torn_or_zeroed_checkpoint_lets_a_rival_take_a_held_device(
    history: tuple[Path, bytes, dict[str, Any], dict[str, Any], Any], cut: float, zeroed: list[tuple[float, int]]
) -> None:
    """What a disk fault leaves: the file cut short and/or runs of zero bytes (as after a crash mid-write).

    (A file that is still valid JSON with other values is not damage this loader can see; those cases are
    the version and unknown-field tests' subject.)
    """
    template, good, a, b, first = history
    data = bytearray(good[: int(cut * len(good))])
    for where, length in zeroed:
        at = int(where * len(data))
        data[at : at + length] = bytes(len(data[at : at + length]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(template, root, dirs_exist_ok=True)
        (root / "state" / "checkpoint.json").write_bytes(bytes(data))
        src = FakeClaimSource(a, b)
        rivals = [claim("r1", results=[result("n1-c0-group-0")]), claim("r2", results=[result("n1-c1-group-1")])]
        for r in rivals:
            src.add(r)
        p = make_preparer(root, src)
        for r in rivals:
            error = p.prepare([ref(r)])[r["metadata"]["uid"]].error
            assert "already prepared" in error or "overlaps cores" in error, (bytes(data), error)
        assert p.prepare([ref(a), ref(b)]) == first
