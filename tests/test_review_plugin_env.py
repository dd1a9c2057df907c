"""Review fix: backend access env of devices on two chips must not collide in one container."""

from __future__ import annotations

import json
from pathlib import Path

from prepare_helpers import NODE, FakeClaimSource, _chip, claim, env_of, make_model, make_preparer, ref, result

from snn_dra.api.attributes import Family
from snn_dra.api.nodeconfig import PublishConfig
from snn_dra.driver.backends.base import Board, Inventory
from snn_dra.driver.model import DeviceModel, build_model


def _two_loihi_chips() -> DeviceModel:
    chips = (_chip(0, Family.LOIHI2, akida=False), _chip(1, Family.LOIHI2, akida=False))
    return build_model(Inventory(NODE, "sys0", (Board("b0", "loihi", Family.LOIHI2, chips),)), PublishConfig())


def _spec(tmp_path: Path, uid: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((tmp_path / "cdi" / f"snn.dra.dev-snn_{uid}.json").read_text())
    return data


def test_devices_on_two_chips_get_only_prefixed_backend_env(tmp_path: Path) -> None:
    c = claim("two", results=[result("n1-c0-group-0", "a"), result("n1-c1-group-0", "b")])
    p = make_preparer(tmp_path, FakeClaimSource(c), model=_two_loihi_chips())
    assert not p.prepare([ref(c)])[ref(c).uid].error
    spec = _spec(tmp_path, ref(c).uid)
    env0, env1 = env_of(spec, "n1-c0-group-0"), env_of(spec, "n1-c1-group-0")
    assert env0["SNN_DRA_N1_C0_GROUP_0_LOIHI_CHIP_ADDR"] == "0,0,0"
    assert env1["SNN_DRA_N1_C1_GROUP_0_LOIHI_CHIP_ADDR"] == "1,0,0"
    assert "LOIHI_CHIP_ADDR" not in env0 and "LOIHI_CHIP_ADDR" not in env1, "would collide: last device wins"


def test_devices_on_one_chip_keep_the_unprefixed_backend_env_too(tmp_path: Path) -> None:
    c = claim("one", results=[result("n1-c0-group-0")])
    p = make_preparer(tmp_path, FakeClaimSource(c), model=make_model())
    assert not p.prepare([ref(c)])[ref(c).uid].error
    env = env_of(_spec(tmp_path, ref(c).uid), "n1-c0-group-0")
    assert env["LOIHI_CHIP_ADDR"] == "0,0,0"
    assert env["SNN_DRA_N1_C0_GROUP_0_LOIHI_CHIP_ADDR"] == "0,0,0"
