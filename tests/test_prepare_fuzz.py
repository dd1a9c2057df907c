"""Property tests: malformed configs and claims never crash prepare; each gets a per-claim error naming the problem."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prepare_helpers import FakeClaimSource, assert_specs_valid, claim, make_preparer, opaque, ref, result, snn

from snn_dra.api.config import ConfigError, parse_config
from snn_dra.driver.claims import ClaimRef

json_scalar = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "neuronModel",
    "timestepMicroseconds",
    "learning",
    "spikeEncoding",
    "sharing",
    "splitStage",
    "apiVersion",
    "kind",
]
GOOD = {
    "neuronModel": st.sampled_from(["LIF", "CUBA-LIF", "Izhikevich"]),
    "timestepMicroseconds": st.integers(1, 1_000_000),
    "spikeEncoding": st.sampled_from(["rate", "delta"]),
    "sharing": st.sampled_from(["exclusive", "timeSliced"]),
    "learning": st.just({"enabled": False}),
    "splitStage": st.builds(lambda i: {"index": i}, st.integers(0, 255)),
}
mutated_config = st.builds(
    lambda good, bad_key, bad_value: {**snn(**good), bad_key: bad_value},
    st.fixed_dictionaries({}, optional=GOOD),
    st.sampled_from([*FIELDS, "extra", "learning"]),
    json_value,
)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(params=json_value | mutated_config)
def test_parse_config_only_raises_config_error(params: Any) -> None:
    try:
        parse_config(params)
    except ConfigError as exc:
        assert str(exc)


def _run(c: dict[str, Any], tmp: Path) -> str:
    out = make_preparer(tmp, FakeClaimSource(c)).prepare([ref(c)])
    assert list(out) == [c["metadata"]["uid"]]
    return out[c["metadata"]["uid"]].error


@SETTINGS
@given(params=json_value | mutated_config)
def test_malformed_config_fails_only_its_claim_with_a_named_field(params: Any) -> None:
    c = claim("fuzzed", results=[result("n1-c0-group-0")], config=[opaque(params)])
    try:
        parse_config(params)
        valid = True
    except ConfigError:
        valid = False
    with tempfile.TemporaryDirectory(prefix="snn-fuzz-") as d:
        tmp = Path(d)
        error = _run(c, tmp)
        if valid:
            assert error == "", error
            assert len(assert_specs_valid(tmp / "cdi")) == 1
        else:
            assert "default/fuzzed" in error and "config[0].opaque.parameters" in error
            assert not (tmp / "cdi").exists()


claim_part = st.sampled_from(["results", "config", "devices", "allocation", "status", "metadata_uid", "result_item"])


@SETTINGS
@given(part=claim_part, junk=json_value)
def test_malformed_claim_never_crashes(part: str, junk: Any) -> None:
    c = claim("broken", results=[result("n1-c0")])
    alloc = c["status"]["allocation"]
    if part == "results":
        alloc["devices"]["results"] = junk
    elif part == "config":
        alloc["devices"]["config"] = junk
    elif part == "devices":
        alloc["devices"] = junk
    elif part == "allocation":
        c["status"]["allocation"] = junk
    elif part == "status":
        c["status"] = junk
    elif part == "metadata_uid":
        c["metadata"] = {**c["metadata"], "uid": junk} if junk != c["metadata"]["uid"] else c["metadata"]
        real_uid = "7f1e5c3a-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
        with tempfile.TemporaryDirectory(prefix="snn-fuzz-") as d:
            out = make_preparer(Path(d), FakeClaimSource(c)).prepare([ClaimRef("default", "broken", real_uid)])
        assert "claim was replaced" in out[real_uid].error
        return
    else:
        alloc["devices"]["results"] = [junk, result("n1-c0")]
    with tempfile.TemporaryDirectory(prefix="snn-fuzz-") as d:
        error = _run(c, Path(d))
        if error:
            assert "default/broken" in error, error
        else:
            assert len(assert_specs_valid(Path(d) / "cdi")) == 1
