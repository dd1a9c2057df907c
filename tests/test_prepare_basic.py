"""Preparer behaviour with claims from a fake source: results, CDI content, per-claim errors, overlap, unprepare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prepare_helpers import (
    DRIVER,
    FakeClaimSource,
    assert_specs_valid,
    claim,
    env_of,
    make_preparer,
    new_uid,
    opaque,
    ref,
    result,
    snn,
)

from snn_dra.driver.claims import ClaimRef
from snn_dra.driver.prepare import ClaimResult, PreparedDevice


def _spec(tmp_path: Path, uid: str) -> dict:
    return json.loads((tmp_path / "cdi" / f"snn.dra.dev-snn_{uid}.json").read_text())


def test_prepare_one_claim_returns_devices_and_writes_spec(tmp_path: Path) -> None:
    uid = "0b1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
    c = claim(uid=uid, results=[result("n1-c1-group-0", "req/small"), result("n1-c1-queue-0", "q", shareID=new_uid())])
    p = make_preparer(tmp_path, FakeClaimSource(c))
    out = p.prepare([ref(c)])
    assert out[uid].error == ""
    devs = out[uid].devices
    assert [d.device for d in devs] == ["n1-c1-group-0", "n1-c1-queue-0"]
    assert devs[0].requests == ("req",)  # base request name, /small stripped
    assert devs[0].cdi_device_ids == (f"snn.dra.dev/snn={uid}-n1-c1-group-0",)
    share = c["status"]["allocation"]["devices"]["results"][1]["shareID"]
    assert devs[1].share_id == share and devs[1].cdi_device_ids == (f"snn.dra.dev/snn={uid}-n1-c1-queue-0-{share}",)
    assert all(d.pool == "node-a" for d in devs)

    (spec,) = assert_specs_valid(tmp_path / "cdi")
    assert spec["kind"] == "snn.dra.dev/snn"
    assert spec["cdiVersion"] == "0.5.0"  # device names starting with a digit need 0.5.0
    group = next(d for d in spec["devices"] if d["name"] == f"{uid}-n1-c1-group-0")
    assert group["containerEdits"]["deviceNodes"] == [{"path": "/dev/akida1", "type": "c", "major": 240, "minor": 1}]
    env = env_of(spec, "-n1-c1-group-0")
    assert env["SNN_DRA_DEVICE_N1_C1_GROUP_0"] == "n1-c1-group-0"
    assert env["SNN_DRA_N1_C1_GROUP_0_CORES"] == "0,1,4,5"
    assert env["SNN_DRA_N1_C1_GROUP_0_CHIP_ID"] == "n1-c1"
    assert env["SNN_DRA_N1_C1_GROUP_0_NEURON_MODEL"] == "LIF"
    assert env["SNN_DRA_N1_C1_GROUP_0_CLAIM"] == "default/c1"
    qenv = env_of(spec, f"-n1-c1-queue-0-{share}")
    assert qenv["SNN_DRA_N1_C1_QUEUE_0_SHARE_ID"] == share and qenv["SNN_DRA_N1_C1_QUEUE_0_QUEUE"] == "0"
    # env order is deterministic: a second build gives byte-identical files
    assert list(env) == [e.split("=", 1)[0] for e in group["containerEdits"]["env"]]


def test_ethernet_chip_gets_endpoints_and_inventory_env_no_device_nodes(tmp_path: Path) -> None:
    uid = "fb1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
    c = claim(uid=uid, results=[result("n1-c0")])
    make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    (spec,) = assert_specs_valid(tmp_path / "cdi")
    assert spec["cdiVersion"] == "0.3.0"  # env only, name starts with a letter
    (dev,) = spec["devices"]
    assert "deviceNodes" not in dev["containerEdits"]
    env = env_of(spec, f"{uid}-n1-c0")
    assert env["SNN_DRA_N1_C0_ENDPOINTS"] == "10.0.0.5:7000"
    assert env["LOIHI_CHIP_ADDR"] == "0,0,0"
    assert env["SNN_DRA_N1_C0_CORES"] == "0,1,2,3,4,5,6,7"


def test_prepare_is_idempotent(tmp_path: Path) -> None:
    c = claim(results=[result("n1-c0-group-0")])
    p = make_preparer(tmp_path, FakeClaimSource(c))
    first = p.prepare([ref(c)])
    path = tmp_path / "cdi" / f"snn.dra.dev-snn_{c['metadata']['uid']}.json"
    before = path.read_bytes(), path.stat().st_mtime_ns
    second = p.prepare([ref(c)])
    assert first == second
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before  # untouched when already current
    # a fresh Preparer (plugin restart) answers the same
    assert make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)]) == first


def test_per_claim_errors_do_not_fail_the_batch(tmp_path: Path) -> None:
    good = claim("good", results=[result("n1-c0-group-0")])
    replaced = claim("replaced", results=[result("n1-c0-group-1")])
    unallocated = claim("unalloc", allocated=False)
    badcfg = claim("badcfg", results=[result("n1-c1")], config=[opaque(snn(spikeEncoding="morse"))])
    other_node = claim("elsewhere", results=[result("n1-c1", pool="node-b")])
    missing_dev = claim("ghost", results=[result("n9-c9")])
    src = FakeClaimSource(good, replaced, unallocated, badcfg, other_node, missing_dev)
    p = make_preparer(tmp_path, src)
    stale = ClaimRef("default", "replaced", new_uid())
    gone = ClaimRef("default", "gone", new_uid())
    refs = [ref(good), stale, ref(unallocated), ref(badcfg), ref(other_node), ref(missing_dev), gone]
    out = p.prepare(refs)
    assert set(out) == {r.uid for r in refs}
    assert out[good["metadata"]["uid"]].error == "" and out[good["metadata"]["uid"]].devices
    assert "default/replaced" in out[stale.uid].error and "claim was replaced" in out[stale.uid].error
    assert "not allocated" in out[unallocated["metadata"]["uid"]].error
    err = out[badcfg["metadata"]["uid"]].error
    assert "default/badcfg" in err and "spikeEncoding" in err and "'rate'" in err and "config[0]" in err
    assert "node-b" in out[other_node["metadata"]["uid"]].error
    assert "'n9-c9' does not exist" in out[missing_dev["metadata"]["uid"]].error
    assert "not found" in out[gone.uid].error
    assert all(not r.devices for u, r in out.items() if u != good["metadata"]["uid"])
    assert len(assert_specs_valid(tmp_path / "cdi")) == 1


def test_shared_sharing_only_on_shared_devices(tmp_path: Path) -> None:
    chip = claim("chip", results=[result("n1-c0")], config=[opaque(snn(sharing="shared"))])
    router = claim(
        "router", results=[result("n1-c0-router", shareID=new_uid())], config=[opaque(snn(sharing="shared"))]
    )
    out = make_preparer(tmp_path, FakeClaimSource(chip, router)).prepare([ref(chip), ref(router)])
    err = out[chip["metadata"]["uid"]].error
    assert "sharing=shared" in err and "exclusive, timeSliced" in err and "default/chip" in err
    assert out[router["metadata"]["uid"]].error == ""


def test_device_of_another_claim_is_refused(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c0-group-0")])
    b = claim("b", results=[result("n1-c0-group-0")])
    whole = claim("whole", results=[result("n1-c0")])  # overlaps the cores of a's group
    other = claim("other", results=[result("n1-c0-group-1")])
    p = make_preparer(tmp_path, FakeClaimSource(a, b, whole, other))
    assert p.prepare([ref(a)])[a["metadata"]["uid"]].error == ""
    out = p.prepare([ref(b), ref(whole), ref(other)])
    assert "already prepared for resourceclaim default/a" in out[b["metadata"]["uid"]].error
    assert "overlaps cores" in out[whole["metadata"]["uid"]].error
    assert out[other["metadata"]["uid"]].error == ""


def test_overlap_inside_one_batch_is_refused(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c1")])
    b = claim("b", results=[result("n1-c1")])
    out = make_preparer(tmp_path, FakeClaimSource(a, b)).prepare([ref(a), ref(b)])
    assert out[a["metadata"]["uid"]].error == ""
    assert "default/a" in out[b["metadata"]["uid"]].error


def test_admin_access_and_distinct_share_ids_are_exempt(tmp_path: Path) -> None:
    a = claim("a", results=[result("n1-c0")])
    admin = claim("admin", results=[result("n1-c0", adminAccess=True)])
    s1 = claim("s1", results=[result("n1-c0-router", shareID=new_uid())])
    s2 = claim("s2", results=[result("n1-c0-router", shareID=new_uid())])
    same = new_uid()
    s3 = claim("s3", results=[result("n1-c1-router", shareID=same)])
    s4 = claim("s4", results=[result("n1-c1-router", shareID=same)])
    p = make_preparer(tmp_path, FakeClaimSource(a, admin, s1, s2, s3, s4))
    out = p.prepare([ref(x) for x in (a, admin, s1, s2, s3, s4)])
    for x in (a, admin, s1, s2, s3):
        assert out[x["metadata"]["uid"]].error == "", out[x["metadata"]["uid"]].error
    assert "already prepared" in out[s4["metadata"]["uid"]].error
    env = env_of(_spec(tmp_path, admin["metadata"]["uid"]), f"{admin['metadata']['uid']}-n1-c0")
    assert env["SNN_DRA_N1_C0_ADMIN_ACCESS"] == "true"


@pytest.mark.parametrize(
    "bad",
    [
        ClaimRef("default", "x", "../../../etc/passwd"),
        ClaimRef("default", "x", "0a7c0b3e-1111-4111-8111-00000000000A"),
        ClaimRef("../etc", "x", "0a7c0b3e-1111-4111-8111-000000000000"),
        ClaimRef("default", "a/b", "0a7c0b3e-1111-4111-8111-000000000000"),
        ClaimRef("default", "..", "0a7c0b3e-1111-4111-8111-000000000000"),
    ],
)
def test_path_escape_attempts_are_rejected(tmp_path: Path, bad: ClaimRef) -> None:
    src = FakeClaimSource()
    p = make_preparer(tmp_path, src)
    out = p.prepare([bad])
    assert "invalid reference" in out[bad.uid].error
    assert src.reads == 0
    assert not (tmp_path / "cdi").exists() or not list((tmp_path / "cdi").iterdir())


def test_bad_share_id_from_allocation_is_rejected(tmp_path: Path) -> None:
    c = claim(results=[result("n1-c0-router", shareID="../x")])
    out = make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    assert "shareID" in out[c["metadata"]["uid"]].error


def test_unprepare_removes_spec_and_entry_and_reads_no_api(tmp_path: Path) -> None:
    c = claim(results=[result("n1-c0")])
    uid = c["metadata"]["uid"]
    src = FakeClaimSource(c)
    p = make_preparer(tmp_path, src)
    p.prepare([ref(c)])
    reads = src.reads
    unknown = ClaimRef("default", "never-seen", new_uid())
    assert p.unprepare([ref(c), unknown]) == {uid: "", unknown.uid: ""}
    assert src.reads == reads
    assert list((tmp_path / "cdi").iterdir()) == []
    ckpt = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    assert ckpt["claims"] == {}
    # the device is free again for another claim
    d = claim("d", results=[result("n1-c0")])
    src.add(d)
    assert p.prepare([ref(d)])[d["metadata"]["uid"]].error == ""
    # repeated unprepare, and one with an invalid uid
    assert p.unprepare([ref(c)]) == {uid: ""}
    assert "not a lower-case UUID" in p.unprepare([ClaimRef("default", "x", "../x")])["../x"]


def test_unprepare_on_empty_state(tmp_path: Path) -> None:
    p = make_preparer(tmp_path, FakeClaimSource())
    r = ClaimRef("ns", "n", new_uid())
    assert p.unprepare([r]) == {r.uid: ""}


def test_results_of_other_drivers_are_ignored(tmp_path: Path) -> None:
    c = claim(results=[result("gpu-0", driver="gpu.example.com"), result("n1-c0", "b")])
    out = make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    assert out[c["metadata"]["uid"]] == ClaimResult(
        devices=(PreparedDevice(("b",), "node-a", "n1-c0", (f"{DRIVER}/snn={c['metadata']['uid']}-n1-c0",)),)
    )


def test_checkpoint_records_completed_claim(tmp_path: Path) -> None:
    c = claim(results=[result("n1-c0")], config=[opaque(snn(neuronModel="Izhikevich"))])
    make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    path = tmp_path / "state" / "checkpoint.json"
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    entry = data["claims"][c["metadata"]["uid"]]
    assert data["bootID"] == "boot-1" and data["version"] == 1
    assert entry["state"] == "PrepareCompleted"
    assert entry["namespace"] == "default" and entry["name"] == "c1"
    assert entry["devices"][0]["cdiDeviceIDs"] == [f"snn.dra.dev/snn={c['metadata']['uid']}-n1-c0"]
    assert len(entry["configHash"]) == 64


def test_batch_lookup_budget_turns_a_hung_read_into_a_claim_error(tmp_path: Path) -> None:
    import threading

    fast = claim("fast", results=[result("n1-c0")])
    slow = claim("slow", results=[result("n1-c1")])
    release = threading.Event()

    class HangingSource(FakeClaimSource):
        def get(self, namespace: str, name: str) -> dict:  # type: ignore[override]
            if name == "slow":
                release.wait(10)
            return super().get(namespace, name)  # type: ignore[return-value]

    p = make_preparer(tmp_path, HangingSource(fast, slow))
    p._budget = 0.2
    try:
        out = p.prepare([ref(slow), ref(fast)])
    finally:
        release.set()
    assert out[fast["metadata"]["uid"]].error == ""
    assert (
        "lookup budget" in out[slow["metadata"]["uid"]].error and "default/slow" in out[slow["metadata"]["uid"]].error
    )


def test_unwritable_cdi_dir_fails_new_claims_cleanly(tmp_path: Path) -> None:
    (tmp_path / "cdi").write_text("not a directory")
    c = claim(results=[result("n1-c0")])
    out = make_preparer(tmp_path, FakeClaimSource(c)).prepare([ref(c)])
    err = out[c["metadata"]["uid"]].error
    assert "default/c1" in err and "writing state failed" in err and str(tmp_path / "cdi") in err
    assert json.loads((tmp_path / "state" / "checkpoint.json").read_text())["claims"] == {}


def test_one_durable_write_per_prepare_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    claims = [claim(f"c{i}", results=[result(d)]) for i, d in enumerate(["n1-c0", "n1-c1-router"])]
    p = make_preparer(tmp_path, FakeClaimSource(*claims))
    p.prepare([ref(claims[0])])  # first call creates the dirs
    real = os.fsync
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    assert p.prepare([ref(claims[1])])[claims[1]["metadata"]["uid"]].error == ""
    assert len(calls) == 2  # the PrepareCompleted checkpoint: file + directory
    calls.clear()
    p.prepare([ref(claims[1])])
    assert calls == []  # a repeat with everything in place writes nothing
