"""Real SIGKILL at every fault step (``SNN_DRA_FAULT_STEP``) in a child process; a fresh Preparer then recovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from prepare_helpers import FakeClaimSource, assert_specs_valid, claim, make_preparer, ref, result

from snn_dra.driver.cli import app
from snn_dra.driver.prepare import FAULT_INJECTION_FLAG, FAULT_STEP_ENV, FAULT_STEPS, fault_hook_from_env

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys
from prepare_helpers import FakeClaimSource, make_preparer, ref
from snn_dra.driver.prepare import fault_hook_from_env
from pathlib import Path
tmp, action = Path(sys.argv[1]), sys.argv[2]
c = json.loads((tmp / "claim.json").read_text())
p = make_preparer(tmp, FakeClaimSource(c), hook=fault_hook_from_env(enabled=True))
out = p.prepare([ref(c)]) if action == "prepare" else p.unprepare([ref(c)])
print("finished")
"""


def _child(tmp: Path, action: str, step: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, FAULT_STEP_ENV: step, "PYTHONPATH": str(HERE)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp), action], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("action", "step"),
    [
        ("prepare", "before_checkpoint_started"),
        ("prepare", "after_checkpoint_started"),
        ("prepare", "after_cdi_written"),
        ("prepare", "after_checkpoint_completed"),
        ("unprepare", "unprepare_after_cdi_removed"),
    ],
)
def test_sigkill_at_step_then_recover(tmp_path: Path, action: str, step: str) -> None:
    c = claim("k", results=[result("n1-c1-group-0")])
    (tmp_path / "claim.json").write_text(json.dumps(c))
    src = FakeClaimSource(c)
    if action == "unprepare":
        make_preparer(tmp_path, src).prepare([ref(c)])
    proc = _child(tmp_path, action, step)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "finished" not in proc.stdout

    p = make_preparer(tmp_path, src)
    if action == "prepare":
        out = p.prepare([ref(c)])
        assert out[c["metadata"]["uid"]].error == ""
        assert len(assert_specs_valid(tmp_path / "cdi")) == 1
    else:
        assert p.unprepare([ref(c)]) == {c["metadata"]["uid"]: ""}
        assert list((tmp_path / "cdi").iterdir()) == []
    state = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    assert all(e["state"] == "PrepareCompleted" for e in state["claims"].values())
    assert not list((tmp_path / "state").glob(".*.tmp"))


def test_fault_hook_from_env() -> None:
    assert fault_hook_from_env({}, enabled=True) is None
    assert fault_hook_from_env({FAULT_STEP_ENV: ""}, enabled=True) is None
    hook = fault_hook_from_env({FAULT_STEP_ENV: "after_cdi_written"}, enabled=True)
    assert hook is not None
    hook("before_checkpoint_started")  # other steps pass through
    with pytest.raises(ValueError, match="after_cdi_writen.*valid steps: " + FAULT_STEPS[0]):
        fault_hook_from_env({FAULT_STEP_ENV: "after_cdi_writen"}, enabled=True)


def test_the_variable_alone_arms_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Without the explicit opt-in (the hidden --fault-injection flag) the variable is ignored, loudly."""
    assert fault_hook_from_env({FAULT_STEP_ENV: "after_cdi_written"}, enabled=False) is None
    assert any(FAULT_INJECTION_FLAG in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)


def test_the_flag_is_hidden_and_parsed() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.get_command(typer.Context(group), "kubelet-plugin")
    assert command is not None
    [option] = [p for p in command.params if FAULT_INJECTION_FLAG in getattr(p, "opts", [])]
    assert getattr(option, "hidden", False) is True
    assert command.make_context("kubelet-plugin", ["--node-name=n"]).params["fault_injection"] is False
    assert command.make_context("kubelet-plugin", [FAULT_INJECTION_FLAG]).params["fault_injection"] is True
