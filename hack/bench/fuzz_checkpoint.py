"""Fuzz the checkpoint loader: no input escapes it as an exception, none lets a device be handed to two claims.

Why a bench and not only the unit test (tests/test_checkpoint_fuzz.py runs a few hundred inputs): the issue asks
for at least 10,000 inputs per run, too slow for the unit suite. Inputs, drawn by hypothesis:

* arbitrary bytes, and arbitrary JSON shapes around the checkpoint's keys (the unit test's strategies);
* real checkpoints of every known version, damaged: cut short, runs of zero bytes (a crash mid-write) and bit
  flips. Version 1 is the file after claims ``a`` (chip n1-c1) and then ``b`` (core group n1-c0-group-0)
  completed; version 2 is the one written after that file was found truncated while the API server was
  unreachable (a and b held as Recovered). The hand-written fixtures of tests/data/checkpoint (version 1 of
  plugin v0.1.0, a newer version with unknown fields) are damaged the same way.

Each input is checked twice:

1. loader: ``CheckpointStore.load()`` on it in an empty state dir must return (an exception is counted as
   escaped), with the unit test's contract: every entry valid and keyed by its UID, an untrusted load says why,
   what it kept is written back and read again unchanged (a broken contract is listed, and fails the run);
2. double handout: the input replaces checkpoint.json in a copy of the state it came from (CDI specs of a and
   b on disk, the previous generation beside it; random inputs get the version 1 state, a fixture an empty
   one); a plugin then prepares three rivals for a's and b's devices, then a and b again. Counted: a Prepare
   that succeeded for a claim whose cores or exclusive devices another checkpoint entry holds, or that a CDI
   spec on disk no entry accounts for names (its container may still use them), and, for a damaged input from
   a's and b's state (the loader saw damage, or it is not even a JSON object), a rival that got any of their
   devices (a valid file that says other things is not damage a loader can see). Entries the plugin holds as
   evidence of damage may overlap each other (each only keeps its devices from others): that is no handout.

Run: ``.venv/bin/python hack/bench/fuzz_checkpoint.py [--inputs 10000] [--seed 1]``. Last line:
``fuzz-checkpoint-bench: inputs=<n> escaped=<n> double_handouts=<n> seconds=<s>``. Exit status 1 when any count
(or contract breach) is not 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # the shared strategies and the prepare fixtures live with the unit suite

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from prepare_helpers import FakeClaimSource, claim, make_preparer, ref, result  # noqa: E402
from test_checkpoint_fuzz import checkpoint_like  # noqa: E402

from snn_dra.api.checkpoint import CheckpointClaim  # noqa: E402
from snn_dra.driver.checkpoint import CheckpointStore  # noqa: E402
from snn_dra.driver.claims import ClaimLookupError  # noqa: E402

STATE = "state"
FIXTURES = REPO / "tests" / "data" / "checkpoint"
A_UID = "0a000000-0000-4000-8000-000000000001"
B_UID = "0b000000-0000-4000-8000-000000000002"
RIVALS = (
    ("on-b-group", "n1-c0-group-0"),  # b's exact device
    ("on-b-chip", "n1-c0"),  # the whole chip around b's cores
    ("on-a-group", "n1-c1-group-1"),  # cores inside a's chip
)


class Unreachable:
    """An API server that cannot be reached: damaged state is then held (Recovered) and written as version 2."""

    def get(self, namespace: str, name: str) -> Any:
        raise ClaimLookupError(f"resourceclaim {namespace}/{name}: API server unreachable after retries")


class Templates:
    """The state dirs each damaged input is dropped into, and the real files it is damaged from."""

    def __init__(self, root: Path) -> None:
        self.a = claim("a", uid=A_UID, results=[result("n1-c1")])
        self.b = claim("b", uid=B_UID, results=[result("n1-c0-group-0")])
        v1 = root / "v1"
        p = make_preparer(v1, FakeClaimSource(self.a, self.b))
        assert all(r.error == "" for r in {**p.prepare([ref(self.a)]), **p.prepare([ref(self.b)])}.values())
        v2 = root / "v2"
        shutil.copytree(v1, v2)
        current = v2 / STATE / "checkpoint.json"
        current.write_bytes(current.read_bytes()[: current.stat().st_size // 2])
        make_preparer(v2, Unreachable()).unprepare([ref(claim("unrelated"))])  # recovers, holds a and b
        self.dirs = {"v1": v1, "v2": v2}
        self.seeds: dict[str, tuple[Path, bytes]] = {
            name: (d, (d / STATE / "checkpoint.json").read_bytes()) for name, d in self.dirs.items()
        }
        self.empty = root / "empty"  # a fixture is state of its own: no CDI specs of a and b beside it
        (self.empty / "cdi").mkdir(parents=True)
        for fixture in sorted(FIXTURES.glob("*.json")):
            self.seeds[f"fixture {fixture.name}"] = (self.empty, fixture.read_bytes())
        good = json.loads(self.seeds["v1"][1])["claims"]
        self.spec_keys = {e["cdiSpecFile"]: exclusive_keys(e) for e in good.values()}
        self.handed_out = set().union(*self.spec_keys.values())
        """Cores and devices a and b were handed: no rival may get them while the state cannot be trusted."""
        versions = {name: json.loads(data)["version"] for name, (_, data) in self.seeds.items()}
        assert versions["v1"] == 1 and versions["v2"] == 2, versions


def damaged(seeds: dict[str, tuple[Path, bytes]]) -> st.SearchStrategy[tuple[str, Path, bytes]]:
    """A real checkpoint cut short, with runs of zero bytes and flipped bits."""

    @st.composite
    def build(draw: Callable[..., Any]) -> tuple[str, Path, bytes]:
        name = draw(st.sampled_from(sorted(seeds)))
        template, good = seeds[name]
        data = bytearray(good[: int(draw(st.floats(0, 1)) * len(good))] if draw(st.booleans()) else good)
        for where, length in draw(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 64)), max_size=3)):
            at = int(where * len(data))
            data[at : at + length] = bytes(len(data[at : at + length]))
        for where, bit in draw(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=8)):
            if data:
                at = min(int(where * len(data)), len(data) - 1)
                data[at] ^= 1 << bit
        return f"damaged {name}", template, bytes(data)

    return build()


def fuzz_inputs(templates: Templates) -> st.SearchStrategy[tuple[str, Path, bytes]]:
    v1 = templates.dirs["v1"]
    return st.one_of(
        st.binary(max_size=600).map(lambda b: ("bytes", v1, b)),
        checkpoint_like.map(lambda d: ("json shape", v1, json.dumps(d).encode())),
        damaged(templates.seeds),
        damaged(templates.seeds),  # weighted: the damage a disk or a crash really leaves
    )


def loader_contract(data: bytes, tmp: Path) -> tuple[str, bool]:
    """Load the input in an empty state dir: ("" if the unit test's contract holds, else what broke; whether the
    loader saw damage: an untrusted load or a problem reported)."""
    (tmp / "boot").write_text("boot-1\n")
    store = CheckpointStore(tmp / STATE, boot_id_path=tmp / "boot")
    store.dir.mkdir()
    store.path.write_bytes(data)
    loaded = store.load()  # an exception propagates: counted as escaped
    damage = not loaded.trusted or bool(loaded.problems)
    for uid, entry in loaded.claims.items():
        if not isinstance(entry, CheckpointClaim) or entry.uid != uid:
            return f"entry {uid!r} is not a valid entry keyed by its UID", damage
    if not (loaded.trusted or loaded.problems):
        return "an untrusted load gave no reason", damage
    store.save(loaded.claims)
    if store.load().claims != loaded.claims:
        return "what the load kept did not read back unchanged", damage
    return "", damage


def is_json_object(data: bytes) -> bool:
    """Whether the input is at least a JSON object: anything else is damage, whatever the loader reports."""
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def double_handouts(
    template: Path, data: bytes, tmp: Path, spec_keys: dict[str, set[Any]], protected: set[Any]
) -> list[str]:
    """Drop the input into a copy of the state, prepare rivals and the owners; every device handed out twice.

    ``protected``: what a and b were handed (the kubelet was told), when the loader saw damage in the input: the
    state then cannot be trusted, so no rival may get any of it, whatever the damaged file still says."""
    shutil.copytree(template, tmp, dirs_exist_ok=True)
    (tmp / STATE).mkdir(exist_ok=True)
    (tmp / STATE / "checkpoint.json").write_bytes(data)
    a = claim("a", uid=A_UID, results=[result("n1-c1")])
    b = claim("b", uid=B_UID, results=[result("n1-c0-group-0")])
    rivals = [claim(name, results=[result(device)]) for name, device in RIVALS]
    p = make_preparer(tmp, FakeClaimSource(a, b, *rivals))
    found: list[str] = []
    for c in [*rivals, a, b]:
        uid = c["metadata"]["uid"]
        if p.prepare([ref(c)])[uid].error == "":
            name = c["metadata"]["name"]
            found += [f"{name} prepared: {h}" for h in taken_twice(tmp, uid, spec_keys)]
            if c not in (a, b) and (held := exclusive_keys(json_claims(tmp)[uid]) & protected):
                found.append(f"{name} prepared on {sorted(held, key=str)} of a or b after damage")
    return found


def exclusive_keys(entry: dict[str, Any]) -> set[Any]:
    """The device names and (chip, core) pairs an entry holds exclusively (shared and admin access do not).

    Read through the checkpoint model, so a field left out takes its default exactly as the plugin reads it."""
    return {
        key
        for d in CheckpointClaim.model_validate(entry).devices
        if not (d.admin_access or d.shared)
        for key in [d.device, *((d.chip_id, c) for c in d.cores)]
    }


def json_claims(tmp: Path) -> dict[str, Any]:
    """The entries of the checkpoint the plugin wrote, as stored."""
    claims: dict[str, Any] = json.loads((tmp / STATE / "checkpoint.json").read_text())["claims"]
    return claims


def taken_twice(tmp: Path, uid: str, spec_keys: dict[str, set[Any]]) -> list[str]:
    """What the claim just prepared shares with another holder: a checkpoint entry, or a CDI spec on disk that
    no entry accounts for (its container may still use the devices; which ones is known from the templates)."""
    claims = json_claims(tmp)
    mine = exclusive_keys(claims[uid])
    clashes = [
        f"{sorted(mine & exclusive_keys(entry), key=str)} also held by claim {other}"
        for other, entry in claims.items()
        if other != uid and mine & exclusive_keys(entry)
    ]
    files = {e["cdiSpecFile"] for e in claims.values()}
    for spec in sorted(f.name for f in (tmp / "cdi").iterdir() if f.name not in files):
        if mine & spec_keys.get(spec, set()):
            clashes.append(f"{sorted(mine & spec_keys[spec], key=str)} also in {spec}, which no entry accounts for")
    return clashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="fuzzed checkpoints (at least 10,000 for the issue)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # every damaged input is reported at ERROR by design: thousands of lines

    kinds: collections.Counter[str] = collections.Counter()
    kept: list[Path] = []
    keep_dir = Path(tempfile.mkdtemp(prefix="snn-ckpt-bench-failures-"))
    escaped: list[str] = []
    broken: list[str] = []
    doubled: list[str] = []
    with tempfile.TemporaryDirectory(prefix="snn-ckpt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        templates = Templates(tmp / "templates")
        print(f"seeds: {', '.join(f'{n} ({len(d)} B)' for n, (_, d) in templates.seeds.items())}", file=sys.stderr)
        started = time.monotonic()
        work = tmp / "work"

        @seed(args.seed)
        @settings(max_examples=args.inputs, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(fuzz_inputs(templates))
        def one(case: tuple[str, Path, bytes]) -> None:
            kind, template, data = case
            n = sum(kinds.values())
            kinds[kind] += 1
            damage = True  # if the loader raised, the input is damage as far as the plugin can know
            for step in ("load", "prepare"):
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                try:
                    if step == "load":
                        problem, damage = loader_contract(data, work)
                        damage = damage or not is_json_object(data)  # even if the loader did not say so
                    else:
                        protected = templates.handed_out if damage and template != templates.empty else set()
                        problem = "; ".join(double_handouts(template, data, work, templates.spec_keys, protected))
                except Exception:  # the count the bench is for: nothing may escape
                    escaped.append(f"{kind} ({step}) {data[:80]!r}: {traceback.format_exc(limit=3)}")
                    problem = "escaped"
                else:
                    if problem:
                        (broken if step == "load" else doubled).append(f"{kind} {data[:80]!r}: {problem}")
                if problem:
                    kept.append(keep_dir / f"{len(kept):04d}-{step}-{kind.replace(' ', '-')}.json")
                    kept[-1].write_bytes(data)
            if (n + 1) % 1000 == 0:
                print(f"  {n + 1}/{args.inputs} inputs, {len(escaped)} escaped, {len(doubled)} double handouts, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip

        one()
        seconds = time.monotonic() - started

    inputs = sum(kinds.values())
    print(f"{'input kind':<28}  {'count':>7}")
    for kind, n in sorted(kinds.items()):
        print(f"{kind:<28}  {n:>7}")
    for label, found in (("escaped", escaped), ("contract broken", broken), ("double handout", doubled)):
        for item in found[:5]:
            print(f"{label}: {item}")
    print(f"loader contract breaches: {len(broken)}")
    if kept:
        print(f"the failing inputs are kept in {keep_dir}: put one at state/checkpoint.json of a plugin to replay it")
    else:
        keep_dir.rmdir()
    print(f"fuzz-checkpoint-bench: inputs={inputs} escaped={len(escaped)} double_handouts={len(doubled)} "
          f"seconds={seconds:.1f}")  # fmt: skip
    sys.exit(0 if not (escaped or broken or doubled) else 1)


if __name__ == "__main__":
    main()
