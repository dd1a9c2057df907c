"""The checkpoint store: prepared claims on disk, written so a kill at any instruction loses nothing.

Every save replaces ``checkpoint.json`` atomically (temp + fsync + rename + directory fsync, mode 0600)
and first hard-links the outgoing file to ``checkpoint.json.prev``. The PrepareStarted write may skip the
fsyncs (``durable=False``): a process kill cannot lose it (the rename is atomic), and after a power loss the
boot id changes and every started claim is rolled back anyway.

Damage is reported, never silently repaired, because the checkpoint is what keeps one device from being
handed to two claims:

* the file is missing while a previous generation exists, empty, unreadable, not JSON, or has a foreign
  header: it is moved to ``checkpoint.json.corrupt-<ts>`` and the load is **untrusted**
  (``LoadedCheckpoint.trusted`` False). The previous generation's entries are returned as *evidence*, not as
  the state: it predates the last save, so a claim it shows as PrepareStarted may since have completed and
  been handed to the kubelet. The caller (``prepare.py``) must hold such claims, not roll them back;
* a single claim entry fails validation: only that entry is dropped (its UID is listed in ``lost`` so the
  caller can recover it from its CDI spec); a copy of the file is kept as ``checkpoint.json.corrupt-<ts>``.

Schema versions (``snn_dra.api.checkpoint``): every known version is read; a newer one is read tolerantly
(unknown fields kept, an unknown state read as Recovered); a save writes the lowest version that holds the
content. Each problem is logged at ERROR with the path, what is wrong and what to do, and returned.

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
from snn_dra.api.checkpoint import CHECKPOINT_VERSION, Checkpoint, CheckpointClaim, ClaimState, version_for
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
    trusted: bool = True
    """False when the current file could not be used: ``claims`` then come from the previous generation
    (or nothing) and are evidence of what may be held, not the state to restore."""
    lost: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Entries that were present but invalid (dropped), by UID: (namespace, name) as far as readable ("" if not).
    Their claims may still hold devices; the caller recovers them from their CDI specs or the API server."""
    version: int = 1
    """Schema version of the file that was read."""


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
            data = path.read_bytes()
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, f"unreadable ({type(exc).__name__}: {exc.strerror or exc})"
        if not data.strip():
            return None, "empty (0 bytes of JSON)" if not data else "empty (only whitespace)"
        try:
            raw = json.loads(data)
        except ValueError as exc:
            return None, f"not valid JSON ({exc})"
        if not isinstance(raw, Mapping):
            return None, f"not a JSON object but {type(raw).__name__}"
        try:
            ckpt = Checkpoint.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "<top level>"
            return None, f"header invalid at {where}: {first['msg']}"
        if ckpt.version > CHECKPOINT_VERSION:
            log.info(
                "checkpoint %s has version %d, newer than this plugin's %d (a rolling update): reading the "
                "fields this version knows and keeping the others",
                path, ckpt.version, CHECKPOINT_VERSION,
            )  # fmt: skip
        return ckpt, ""

    def _entries(
        self, ckpt: Checkpoint, problems: list[str], source: Path, lost: dict[str, tuple[str, str]]
    ) -> dict[str, CheckpointClaim]:
        claims: dict[str, CheckpointClaim] = {}
        for uid, raw in ckpt.claims.items():
            raw = _upgrade_entry(raw, ckpt.version, source)
            try:
                entry = CheckpointClaim.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                problems.append(f"claim entry {uid!r} in {source} is invalid at {where}: {first['msg']}; dropped")
                lost[uid] = _names(raw)
                continue
            ref_error = check_ref(ClaimRef(entry.namespace, entry.name, entry.uid))
            if entry.uid != uid or ref_error or entry.cdi_spec_file != _safe_spec_name(uid):
                problems.append(
                    f"claim entry {uid!r} in {source} has an inconsistent uid, reference or CDI file name; dropped"
                )
                lost[uid] = _names(raw)
                continue
            spec_problem = _spec_problem(entry.cdi_spec)
            if spec_problem:
                problems.append(
                    f"claim entry {uid!r} ({entry.namespace}/{entry.name}) in {source} holds a CDI spec this driver "
                    f"cannot write ({spec_problem}); dropped. The claim is prepared afresh on the kubelet's next "
                    f"Prepare; if its pod still runs, delete the pod so the claim is prepared again"
                )
                lost[uid] = _names(raw)
                continue
            claims[uid] = entry
        return claims

    def load(self) -> LoadedCheckpoint:
        """Read the checkpoint and report what cannot be trusted; never raises for bad content."""
        if self.dir.is_dir():
            remove_stale_temps(self.dir, FILE_NAME)
        problems: list[str] = []
        lost: dict[str, tuple[str, str]] = {}
        ckpt, why = self._parse(self.path)
        source = self.path
        trusted = True
        if ckpt is None and why == "missing" and not self.prev_path.exists():
            return LoadedCheckpoint({}, "")  # first start
        if ckpt is None:
            trusted = False
            moved = ""
            if why != "missing":
                aside = self._aside()
                try:
                    self.path.replace(aside)
                    moved = f" Moved it to {aside}."
                except OSError as exc:
                    moved = f" It could not be moved aside ({exc.strerror or exc})."
            else:
                why = f"missing although the previous generation {self.prev_path} exists"
            prev, prev_why = self._parse(self.prev_path)
            if prev is not None:
                outcome = (
                    f"the previous generation {self.prev_path} ({len(prev.claims)} claim(s)) predates the last save, "
                    "so its claims are held as evidence, not restored as they were"
                )
                ckpt, source = prev, self.prev_path
            else:
                outcome = f"the previous generation is unusable too ({prev_why})"
            problems.append(
                f"checkpoint {self.path} is corrupt: {why}.{moved} The prepare state cannot be trusted: {outcome}. "
                "Check the disk; remove the .corrupt file when done."
            )
        claims: dict[str, CheckpointClaim] = {}
        boot_id = ""
        version = 1
        if ckpt is not None:
            boot_id, version = ckpt.boot_id, ckpt.version
            before = len(problems)
            claims = self._entries(ckpt, problems, source, lost)
            if len(problems) > before and source == self.path:
                aside = self._aside()
                shutil.copy2(self.path, aside)
                problems.append(f"a copy of {self.path} with the bad entries is kept at {aside}")
        for p in problems:
            log.error("%s", p)
        return LoadedCheckpoint(claims, boot_id, problems, trusted=trusted, lost=lost, version=version)

    def save(self, claims: Mapping[str, CheckpointClaim], *, durable: bool = True) -> None:
        """Persist ``claims`` with the current boot id; the old file becomes ``.prev``.

        Always atomic (a killed process leaves the old or the new file). ``durable=False`` skips the
        fsyncs: only for states that a reboot discards anyway (PrepareStarted, see ``prepare.py``).
        """
        if not self.dir.is_dir():
            self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        body: dict[str, Any] = Checkpoint(
            version=version_for(tuple(claims.values())),
            boot_id=self.current_boot_id(),
            claims={uid: _dump(c) for uid, c in claims.items()},
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


def _names(raw: Any) -> tuple[str, str]:
    """(namespace, name) of a damaged entry where they are still strings, for a lookup in the API server."""
    if not isinstance(raw, Mapping):
        return "", ""
    namespace, name = raw.get("namespace"), raw.get("name")
    return (namespace, name) if isinstance(namespace, str) and isinstance(name, str) else ("", "")


def _dump(entry: CheckpointClaim) -> dict[str, Any]:
    """An entry as stored; ``recoveredFrom`` only when set, so a version 1 file holds only version 1 keys."""
    exclude = {"recovered_from"} if entry.recovered_from is None else set()
    data: dict[str, Any] = entry.model_dump(by_alias=True, mode="json", exclude=exclude)
    return data


def _upgrade_entry(raw: Any, version: int, source: Path) -> Any:
    """Convert one stored entry to the current model (the hub): version 1 needs nothing, version 2 is current.

    An entry of a newer version whose state this code does not know is read as Recovered: it is held (its
    devices stay taken) and never rolled back, because a state added later may well mean "in use".
    """
    if not isinstance(raw, Mapping) or version <= CHECKPOINT_VERSION:
        return raw
    state = raw.get("state")
    if isinstance(state, str) and state not in {s.value for s in ClaimState}:
        log.warning(
            "claim entry %s in %s (version %d) has state %r unknown to this plugin; holding it as %s",
            raw.get("uid"), source, version, state, ClaimState.RECOVERED.value,
        )  # fmt: skip
        return {
            **raw,
            "state": ClaimState.RECOVERED.value,
            "recoveredFrom": f"state {state!r} of a version {version} checkpoint",
        }
    return raw
