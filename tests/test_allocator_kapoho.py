"""Allocator on the real slices of the example Kapoho-Point-class board (every level published)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from allocator_helpers import claim, exactly, picked

from snn_dra.driver.backends import load_backend, load_node_config
from snn_dra.driver.embedded.allocator import AllocatorCache, Unsatisfiable, allocate
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices

NODE = "kapoho-0"
CHIP_ID = 'device.attributes["snn.dra.dev"].chipID == "{}"'


@pytest.fixture(scope="module")
def board(repo_root: Path) -> dict[str, Any]:
    config = load_node_config(repo_root / "deploy/node-configs/kapoho-point.yaml")
    slices = build_slices(build_model(load_backend(config, NODE).discover(), config.publish), NODE)
    for i, s in enumerate(slices):  # as the API server names them
        s["metadata"] = {"name": s["metadata"]["generateName"] + "abcde", "resourceVersion": str(i + 1)}
    docs = yaml.safe_load_all((repo_root / "deploy/base/deviceclasses.yaml").read_text())
    classes = [d for d in docs if d and d.get("kind") == "DeviceClass"]
    devices = [d for s in slices for d in s["spec"].get("devices") or ()]
    chips = [d["attributes"]["chipID"]["string"] for d in devices if d["attributes"]["type"]["string"] == "chip"]
    return {"slices": slices, "classes": classes, "chips": chips, "cache": AllocatorCache()}


def run(board: dict[str, Any], c: dict[str, Any], held: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return allocate(c, node_name=NODE, slices=board["slices"], classes=board["classes"],
                    allocated_claims=held or [], cache=board["cache"])


def stored(c: dict[str, Any], allocation: dict[str, Any]) -> dict[str, Any]:
    return {**c, "status": {"allocation": allocation}}


def test_a_chip_and_a_core_group_of_it_are_never_allocated_to_two_claims(board: dict[str, Any]) -> None:
    chip = board["chips"][0]
    whole = claim("whole", exactly("r", "snn-chip", CHIP_ID.format(chip)))
    got = run(board, whole)
    assert picked(got) == [chip]
    group = claim("group", exactly("r", "snn-core-group", CHIP_ID.format(chip)))
    with pytest.raises(Unsatisfiable, match=r"counter .* exhausted"):
        run(board, group, [stored(whole, got)])
    core = claim("core", exactly("r", "snn-neuron-core", CHIP_ID.format(chip)))
    with pytest.raises(Unsatisfiable, match="exhausted"):
        run(board, core, [stored(whole, got)])
    # The other order: one core group held, the whole chip is gone, other chips are still free.
    got_group = run(board, group)
    with pytest.raises(Unsatisfiable, match="exhausted"):
        run(board, whole, [stored(group, got_group)])
    any_chip = claim("any", exactly("r", "snn-chip"))
    assert picked(run(board, any_chip, [stored(group, got_group)])) == [board["chips"][1]]


def test_a_chip_and_its_core_group_are_never_allocated_to_one_claim(board: dict[str, Any]) -> None:
    chip = board["chips"][0]
    both = claim("both", exactly("chip", "snn-chip", CHIP_ID.format(chip)),
                 exactly("group", "snn-core-group", CHIP_ID.format(chip)))
    with pytest.raises(Unsatisfiable, match=r"request group: .*exhausted"):
        run(board, both)


def test_match_attribute_puts_core_group_and_router_share_on_one_chip(board: dict[str, Any]) -> None:
    first = board["chips"][0]
    held: list[dict[str, Any]] = []
    for i in range(8):  # every core group of the first chip
        c = claim(f"h{i}", exactly("r", "snn-core-group", CHIP_ID.format(first)))
        held.append(stored(c, run(board, c, held)))
    pair = claim(
        "pair",
        exactly("group", "snn-core-group"),
        exactly("router", "snn-spike-router", capacity={"requests": {"eventThroughputMEPS": "64"}}),
        constraints=[{"requests": ["group", "router"], "matchAttribute": "snn.dra.dev/chipID"}],
    )
    out = run(board, pair, held)
    group, router = out["devices"]["results"]
    assert group["device"].startswith(board["chips"][1]) and router["device"] == f"{board['chips'][1]}-router"
    assert router["consumedCapacity"] == {"eventThroughputMEPS": "64"} and router["shareID"]


def test_every_chip_once_then_no_more(board: dict[str, Any]) -> None:
    held: list[dict[str, Any]] = []
    for i in range(len(board["chips"])):
        c = claim(f"c{i}", exactly("r", "snn-chip"))
        held.append(stored(c, run(board, c, held)))
    assert sorted(d for h in held for d in picked(h["status"]["allocation"])) == sorted(board["chips"])
    with pytest.raises(Unsatisfiable, match="8 allocated to another claim"):
        run(board, claim("extra", exactly("r", "snn-chip")), held)
