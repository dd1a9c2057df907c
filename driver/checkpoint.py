"""The checkpoint store: prepared claims on disk, written so a kill at any instruction loses nothing.

Every save replaces ``checkpoint.json`` atomically (temp + fsync + rename + directory fsync, mode 0600)
and first hard-links the outgoing file to ``checkpoint.json.prev``: one good generation is always kept.
The PrepareStarted write may skip the fsyncs (``durable=False``): a process kill cannot lose it (the rename
is atomic), and after a power loss the boot id changes and every started claim is rolled back anyway.

Corruption is handled in two layers, so one bad byte does not forget every prepared claim:
* the file does not parse or has a foreign header/version: it is moved to ``checkpoint.json.corrupt-<ts>``
  and the previous generation is loaded instead (or nothing, if that is bad too);
* a single claim entry fails validation (including a CDI spec the driver would refuse to write): only that
  entry is dropped; a copy of the file is kept as
  ``checkpoint.json.corrupt-<ts>`` for inspection.
Each problem is logged at ERROR with the path, what is wrong and what to do, and returned to the caller.

The kernel boot id is stored in the file; a different boot id at load means the node rebooted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from snn_dra.api.cdi import CdiSpec
from snn_dra.api.checkpoint import CHECKPOINT_VERSION, Checkpoint, CheckpointClaim
from snn_dra.driver.cdi import spec_file_name
from snn_dra.driver.claims import ClaimRef, check_ref
from snn_dra.driver.fsutil import atomic_write, remove_stale_temps

log = logging.getLogger(__name__)

FILE_NAME: Final = "checkpoint.json"
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
BOOT_ID_PATH: Final = "/proc/sys/kernel/random/boot_id"


@dataclass
class LoadedCheckpoint:
    claims: dict[str, CheckpointClaim]
    boot_id: str
    """Boot id recorded in the file ("" if none or first start)."""
    problems: list[str] = field(default_factory=list)


def read_boot_id(path: str | Path) -> str:
    """The kernel boot id, or "" where it cannot be read (reboot detection is then off)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


class CheckpointStore:
    def __init__(self, state_dir: str | Path, *, boot_id_path: str | Path = BOOT_ID_PATH) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / FILE_NAME
        self.prev_path = self.dir / f"{FILE_NAME}.prev"
        self.boot_id_path = Path(boot_id_path)

    def current_boot_id(self) -> str:
        return read_boot_id(self.boot_id_path)

    def _aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        candidate = self.dir / f"{FILE_NAME}.corrupt-{stamp}"
        n = 1
        while candidate.exists():
            candidate = self.dir / f"{FILE_NAME}.corrupt-{stamp}-{n}"
            n += 1
        return candidate

    def _parse(self, path: Path) -> tuple[Checkpoint | None, str]:
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None, "missing"
        except (OSError, ValueError) as exc:
            return None, f"not valid JSON ({exc})"
        if isinstance(raw, Mapping) and raw.get("version") not in (None, CHECKPOINT_VERSION):
            return None, f"version {raw.get('version')!r} is not the supported version {CHECKPOINT_VERSION}"
        try:
            return Checkpoint.model_validate(raw), ""
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "<top level>"
            return None, f"header invalid at {where}: {first['msg']}"

    def _entries(self, ckpt: Checkpoint, problems: list[str], source: Path) -> dict[str, CheckpointClaim]:
        claims: dict[str, CheckpointClaim] = {}
        for uid, raw in ckpt.claims.items():
            try:
                entry = CheckpointClaim.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                problems.append(f"claim entry {uid!r} in {source} is invalid at {where}: {first['msg']}; dropped")
                continue
            ref_error = check_ref(ClaimRef(entry.namespace, entry.name, entry.uid))
            if entry.uid != uid or ref_error or entry.cdi_spec_file != _safe_spec_name(uid):
                problems.append(
                    f"claim entry {uid!r} in {source} has an inconsistent uid, reference or CDI file name; dropped"
                )
                continue
            spec_problem = _spec_problem(entry.cdi_spec)
            if spec_problem:
                problems.append(
                    f"claim entry {uid!r} ({entry.namespace}/{entry.name}) in {source} holds a CDI spec this driver "
                    f"cannot write ({spec_problem}); dropped. The claim is prepared afresh on the kubelet's next "
                    f"Prepare; if its pod still runs, delete the pod so the claim is prepared again"
                )
                continue
            claims[uid] = entry
        return claims

    def load(self) -> LoadedCheckpoint:
        """Read the checkpoint, recovering what can be recovered; never raises for bad content."""
        if self.dir.is_dir():
            remove_stale_temps(self.dir, FILE_NAME)
        problems: list[str] = []
        ckpt, why = self._parse(self.path)
        source = self.path
        if ckpt is None and why == "missing":
            return LoadedCheckpoint({}, "")
        if ckpt is None:
            aside = self._aside()
            self.path.replace(aside)
            prev, prev_why = self._parse(self.prev_path)
            if prev is not None:
                outcome = f"recovered {len(prev.claims)} claim(s) from the previous generation {self.prev_path}"
                ckpt, source = prev, self.prev_path
            else:
                outcome = f"the previous generation is unusable too ({prev_why}); starting with no prepared claims"
            problems.append(
                f"checkpoint {self.path} is corrupt: {why}. Moved it to {aside}; {outcome}. Claims not recovered "
                "are prepared again when the kubelet retries; check the disk and remove the .corrupt file when done."
            )
        claims: dict[str, CheckpointClaim] = {}
        boot_id = ""
        if ckpt is not None:
            boot_id = ckpt.boot_id
            before = len(problems)
            claims = self._entries(ckpt, problems, source)
            if len(problems) > before and source == self.path:
                aside = self._aside()
                shutil.copy2(self.path, aside)
                problems.append(f"a copy of {self.path} with the bad entries is kept at {aside}")
        for p in problems:
            log.error("%s", p)
        return LoadedCheckpoint(claims, boot_id, problems)

    def save(self, claims: Mapping[str, CheckpointClaim], *, durable: bool = True) -> None:
        """Persist ``claims`` with the current boot id; the old file becomes ``.prev``.

        Always atomic (a killed process leaves the old or the new file). ``durable=False`` skips the
        fsyncs: only for states that a reboot discards anyway (PrepareStarted, see ``prepare.py``).
        """
        if not self.dir.is_dir():
            self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        body: dict[str, Any] = Checkpoint(
            boot_id=self.current_boot_id(),
            claims={uid: c.model_dump(by_alias=True, mode="json") for uid, c in claims.items()},
        ).model_dump(by_alias=True, mode="json")
        data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        if self.path.exists():
            link = self.dir / f".{FILE_NAME}.prev.tmp"
            link.unlink(missing_ok=True)
            os.link(self.path, link)
            link.replace(self.prev_path)
        atomic_write(self.path, data, FILE_MODE, sync_dir=durable, sync_file=durable)


def _spec_problem(spec: Mapping[str, Any]) -> str:
    """Why a stored CDI spec would be refused when rewritten ("" if it is fine).

    Checked at load so one bad entry (an older format, a hand edit) is set aside like any other invalid
    entry instead of failing every Prepare and Unprepare that rewrites specs.
    """
    try:
        CdiSpec.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top level>"
        return f"cdiSpec.{where}: {first['msg']}"
    return ""


def _safe_spec_name(uid: str) -> str:
    try:
        return spec_file_name(uid)
    except ValueError:
        return ""
