"""Claim preparation: allocation results -> validated config -> CDI spec + checkpoint, per claim.

**Flow of one call** (the gRPC layer runs step 1, :meth:`Preparer.fetch`, in a worker thread before taking
the serialization lock, and the rest, :meth:`Preparer.prepare_fetched`, under it; ``prepare`` does both):

1. Every reference is checked (UUID, DNS names: they reach file names) and every claim is read from the
   API server (:mod:`snn_dra.driver.claims`, retries with backoff, bounded per claim and per batch).
2. (First call of the process only: this driver's stale CDI temp files, left by a killed writer, are removed.)
   The checkpoint is loaded from disk (no state is kept in memory between calls, so a rolling update's
   second plugin instance sees the same truth). Entries left in ``PrepareStarted`` by a killed call are
   **rolled back** (spec removed, entry dropped): the kubelet never got an answer for them and retries,
   and a fresh prepare is simpler to trust than completing a half-done one. After a **reboot** (boot id
   changed) completed entries are **kept** (their pods may come back and their devices must stay
   protected against double assignment) and their CDI specs are rewritten from the checkpoint, since
   ``/var/run/cdi`` is usually tmpfs and lost.

   **Damaged state** (the checkpoint is missing with a previous generation left, empty, unreadable, not
   JSON, has invalid entries, or CDI specs of this driver exist that no entry explains) is never "repaired"
   by rolling back: the previous generation predates the last save, so a claim it shows as started may
   since have completed and been handed to the kubelet, and rolling it back would free a device a running
   container holds. Instead everything that may be in use is **held** (state ``Recovered``): the previous
   generation's entries, and every CDI spec on disk (it names the claim UID, namespace/name and devices).
   Held claims are then checked against the API server: a claim that is gone, replaced or no longer
   allocated on this node is released; one still allocated here is re-planned from its object (the result
   is deterministic) and becomes ``PrepareCompleted``; one that cannot be checked stays held until its next
   Prepare, its Unprepare or a later check. Held devices are refused to every other claim. The event is
   logged at ERROR and reported through ``on_alarm`` (the node driver turns it into an Event on the Node and
   a metric).
3. A claim already ``PrepareCompleted`` returns its recorded result; its spec is rewritten if missing or
   changed (the tmpfs pitfall of ``cdi.md`` §7).
4. New claims: results of this driver in this node's pool, opaque configs of this driver merged
   (FromClass before FromClaim, list order within each, a field set later wins, ``requests`` scoping),
   validated, checked for overlap with other claims, then recorded ``PrepareStarted`` (one atomic checkpoint
   write for the batch, not fsync'd), CDI specs written (atomic, not fsync'd: the checkpoint holds their
   content), and recorded ``PrepareCompleted`` (one atomic, fsync'd write): one durable write per call.

**What a container sees** (CDI edits of each allocated device; ``<D>`` is the device name upper-cased
with ``-`` turned into ``_``, so several devices in one container never overwrite each other):

* ``SNN_DRA_DEVICE_<D>=<device>``: one per device, for enumeration (``env | grep ^SNN_DRA_DEVICE_``);
* ``SNN_DRA_<D>_`` + ``TYPE``, ``CLAIM`` (``ns/name``), ``CLAIM_UID``, ``FAMILY``, ``MODEL``, ``CHIP_ID``,
  ``CHIP_INDEX``, ``CHIP_MESH`` (``x,y,z``), ``BOARD_ID``, ``SYSTEM_ID``; for core devices ``CORES`` (indices),
  ``CORE_ORIGIN`` (``x,y``), ``CORE_EXTENT`` (``w,h``); ``ROUTER_MESH`` for a spikeRouter; ``QUEUE`` and
  ``QUEUE_DEPTH`` for an eventQueue; ``ENDPOINTS`` (comma list) when the chip is network-attached;
  ``SHARE_ID`` for shared allocations; ``ADMIN_ACCESS=true`` for adminAccess results;
* the validated config: ``NEURON_MODEL``, ``TIMESTEP_US``, ``LEARNING``, ``LEARNING_RULE``, ``SPIKE_ENCODING``,
  ``SHARING``, ``SPLIT_STAGE_INDEX``, ``SPLIT_STAGE_NAME`` (same prefix);
* the backend's own access env (e.g. ``AKIDA_DEVICE``, ``LOIHI_*``, ``SPINNAKER2_*``): always as a per-device
  copy ``SNN_DRA_<D>_<NAME>``, and also unprefixed (what the vendor SDK reads) when all devices of the claim
  are on one chip; a claim spanning chips gets no unprefixed copies, since they would collide;
* the chip's device nodes (``/dev/akidaN``).
Nothing else: no mounts, no hooks, and nothing taken from the claim except validated config values.

A bad claim gets its own error text naming ``namespace/name``, the field and the allowed values; the
rest of the batch proceeds. Only a failing checkpoint write fails the new claims of the batch.

**Fault-injection steps** (``fault_hook(step)`` is called at each; a test hook may SIGKILL the process):
:data:`FAULT_STEPS`. :func:`fault_hook_from_env` builds the hook that kills the process at the step named in
``$SNN_DRA_FAULT_STEP``, but only when the process was also started with the hidden ``--fault-injection``
flag: an environment variable alone (inherited, or set by anyone who can edit the DaemonSet's env) must never
be able to make a production plugin kill itself in the middle of a prepare.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import ValidationError

from snn_dra.api.attributes import DeviceType
from snn_dra.api.cdi import CdiDeviceNode, CdiSpec
from snn_dra.api.checkpoint import CheckpointClaim, CheckpointDevice, ClaimState
from snn_dra.api.config import ConfigError, EffectiveConfig, SharingMode, SNNConfig, merge_configs, parse_config
from snn_dra.driver.cdi import CdiWriter, SpecDevice, build_spec, qualified_name, spec_file_name, spec_json
from snn_dra.driver.checkpoint import BOOT_ID_PATH, CheckpointStore
from snn_dra.driver.claims import (
    UID_RE,
    ClaimLookupError,
    ClaimNotFoundError,
    ClaimRef,
    ClaimSource,
    check_ref,
    fetch_allocated,
)
from snn_dra.driver.fsutil import fsync_dir
from snn_dra.driver.model import ModelDevice

__all__ = [
    "FAULT_INJECTION_FLAG",
    "FAULT_STEPS",
    "FAULT_STEP_ENV",
    "Alarm",
    "ClaimRef",
    "ClaimResult",
    "DeviceLookup",
    "FaultHook",
    "FetchedClaims",
    "PreparedDevice",
    "Preparer",
    "fault_hook_from_env",
]

log = logging.getLogger(__name__)

FAULT_STEPS: Final = (
    "before_checkpoint_started",
    "after_checkpoint_started",
    "after_cdi_written",
    "after_checkpoint_completed",
    "rollback_after_cdi_removed",
    "unprepare_before_cdi_removed",
    "unprepare_after_cdi_removed",
    "unprepare_after_checkpoint",
)
"""Named points where ``fault_hook`` is called, in the order a prepare and an unprepare reach them.
``rollback_after_cdi_removed`` runs while a new call rolls back a claim left in PrepareStarted."""

BATCH_LOOKUP_BUDGET_S: Final = 30.0
"""Claims still unread after this long get an error (the kubelet retries) so the 45 s deadline holds."""

LOOKUP_WORKERS: Final = 8
"""Claims of one batch read in parallel (the kubelet sends one call per pod, often with several claims)."""

RECOVERY_LOOKUP_BUDGET_S: Final = 10.0
"""Time to check held (Recovered) claims against the API server in one call; the rest stay held."""

FaultHook = Callable[[str], None]
DeviceLookup = Callable[[str], ModelDevice | None]
Alarm = Callable[[str], None]
"""Told (once per event, already logged) that the prepare state could not be trusted and what was recovered."""


FAULT_STEP_ENV: Final = "SNN_DRA_FAULT_STEP"


FAULT_INJECTION_FLAG: Final = "--fault-injection"
"""The hidden ``kubelet-plugin`` flag that, together with ``$SNN_DRA_FAULT_STEP``, arms the hook (tests only)."""


def fault_hook_from_env(environ: Mapping[str, str] | None = None, *, enabled: bool) -> FaultHook | None:
    """A hook that SIGKILLs this process at the step named in ``$SNN_DRA_FAULT_STEP`` (fault tests only).

    ``enabled`` is the explicit opt-in (the hidden :data:`FAULT_INJECTION_FLAG`): without it the variable is
    ignored with a warning, so no environment alone can arm the hook. Returns None when not enabled or the
    variable is unset or empty; an unknown step name is a ``ValueError`` listing the valid ones, so a typo in
    a fault test cannot silently test nothing.
    """
    step = (os.environ if environ is None else environ).get(FAULT_STEP_ENV, "")
    if not step:
        return None
    if not enabled:
        log.warning(
            "%s=%s is set but ignored: fault injection is for tests and needs the %s flag as well",
            FAULT_STEP_ENV, step, FAULT_INJECTION_FLAG,
        )  # fmt: skip
        return None
    if step not in FAULT_STEPS:
        raise ValueError(f"{FAULT_STEP_ENV}={step!r} is not a fault step; valid steps: {', '.join(FAULT_STEPS)}")

    def kill_at(name: str) -> None:
        if name == step:
            log.warning("fault injection: SIGKILL at step %s", name)
            os.kill(os.getpid(), signal.SIGKILL)

    return kill_at


class ClaimRefLike(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def uid(self) -> str: ...


@dataclass(frozen=True)
class PreparedDevice:
    requests: tuple[str, ...]
    pool: str
    device: str
    cdi_device_ids: tuple[str, ...]
    share_id: str | None = None


@dataclass(frozen=True)
class ClaimResult:
    devices: tuple[PreparedDevice, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class FetchedClaims:
    """What :meth:`Preparer.fetch` read: claims already answered (bad reference, lookup error) and the rest."""

    results: dict[str, ClaimResult]
    claims: tuple[tuple[ClaimRef, Mapping[str, Any]], ...]


class PlanError(Exception):
    """A claim cannot be prepared; the message is the per-claim error text."""


@dataclass
class _Plan:
    ref: ClaimRef
    entry: CheckpointClaim
    result: ClaimResult
    replaces: CheckpointClaim | None = None
    """A held (Recovered) entry this plan supersedes; restored if the commit fails, so the hold is never lost."""


@dataclass
class _State:
    claims: dict[str, CheckpointClaim] = field(default_factory=dict)


def _env_name(device_name: str) -> str:
    return device_name.replace("-", "_").replace(".", "_").upper()


def _base_request(request: str) -> str:
    return request.split("/", 1)[0]


def _result_from_entry(entry: CheckpointClaim) -> ClaimResult:
    return ClaimResult(
        devices=tuple(
            PreparedDevice(tuple(d.requests), d.pool, d.device, tuple(d.cdi_device_ids), d.share_id)
            for d in entry.devices
        )
    )


def _held(entry: CheckpointClaim, evidence: str) -> CheckpointClaim:
    return entry.model_copy(update={"state": ClaimState.RECOVERED, "recovered_from": evidence})


def _alloc_keys(results: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str | None]]:
    return {(str(r.get("pool")), str(r.get("device")), r.get("shareID")) for r in results}


class Preparer:
    """Prepares and unprepares claims for one driver on one node; see the module docstring."""

    def __init__(
        self,
        *,
        driver_name: str,
        node_name: str,
        devices: DeviceLookup,
        cdi_dir: str | Path,
        state_dir: str | Path,
        claims: ClaimSource,
        fault_hook: FaultHook | None = None,
        boot_id_path: str | Path = BOOT_ID_PATH,
        batch_lookup_budget_s: float = BATCH_LOOKUP_BUDGET_S,
        on_alarm: Alarm | None = None,
    ) -> None:
        self.driver_name = driver_name
        self.node_name = node_name
        self._devices = devices
        self._claims = claims
        self._hook = fault_hook
        self._budget = batch_lookup_budget_s
        self._alarm = on_alarm
        self.cdi = CdiWriter(cdi_dir)
        self._cdi_temps_checked = False
        self.store = CheckpointStore(state_dir, boot_id_path=boot_id_path)

    def prepared_device_count(self) -> int:
        """Devices of completed and held claims in the checkpoint (the metrics gauge); call under the lock."""
        claims = self.store.load().claims.values()
        return sum(len(c.devices) for c in claims if c.state is not ClaimState.PREPARE_STARTED)

    # ------------------------------------------------------------------ helpers
    def _fault(self, step: str) -> None:
        if self._hook is not None:
            self._hook(step)

    def _rewrite_spec(self, uid: str, spec: dict[str, Any]) -> str:
        """Rewrite one claim's CDI spec from the checkpoint; the error text ("" on success) stays with that claim."""
        try:
            self.cdi.write_many([(uid, spec)])
        except OSError as exc:
            return (
                f"rewriting CDI spec {self.cdi.path_for(uid)} failed ({exc}); check that {self.cdi.dir} is "
                "writable and not full"
            )
        except ValueError as exc:  # the stored spec no longer validates (load() normally drops such entries)
            return (
                f"the checkpointed CDI spec for {self.cdi.path_for(uid)} is invalid ({type(exc).__name__}); "
                "delete the pod so the claim is prepared again"
            )
        return ""

    def _load(self) -> _State:
        """Load the checkpoint and repair what a crash or a reboot left behind (see module docstring)."""
        if not self._cdi_temps_checked:  # once per process, and under the serialization lock like every write
            self._cdi_temps_checked = True
            for name in self.cdi.remove_stale_temps():
                log.warning("removed stale CDI temp file %s left by a killed writer", self.cdi.dir / name)
        loaded = self.store.load()
        claims = loaded.claims
        changed = bool(loaded.problems)
        current = self.store.current_boot_id()
        rebooted = bool(loaded.boot_id and current and loaded.boot_id != current)
        damage = list(loaded.problems) if (not loaded.trusted or loaded.lost) else []
        if not loaded.trusted:
            # An older generation: its PrepareStarted may have completed since. Hold everything, roll back nothing.
            for uid, c in list(claims.items()):
                claims[uid] = _held(c, f"previous checkpoint generation (state {c.state.value})")
        else:
            for uid in [u for u, c in claims.items() if c.state is ClaimState.PREPARE_STARTED]:
                entry = claims.pop(uid)
                log.warning(
                    "rolling back claim %s/%s (uid %s) left in PrepareStarted", entry.namespace, entry.name, uid
                )
                self.cdi.remove(uid)
                self._fault("rollback_after_cdi_removed")
                changed = True
        orphans = self.cdi.orphans(set(claims))
        if orphans and (damage or not rebooted):
            # Specs no entry explains: after damage they are the proof of what containers may hold.
            damage.append(f"{len(orphans)} CDI spec(s) of this driver in {self.cdi.dir} have no checkpoint entry")
            for uid in orphans:
                held = self._held_from_spec(uid)
                if isinstance(held, str):
                    damage.append(held)
                else:
                    claims[uid] = held
            orphans = []
            changed = True
        if rebooted:
            log.warning(
                "node rebooted (boot id %s -> %s): rewriting %d CDI spec(s)", loaded.boot_id, current, len(claims)
            )
            for uid, c in claims.items():
                problem = self._rewrite_spec(uid, c.cdi_spec)
                if problem:  # the entry stays; the claim's next Prepare retries and reports it
                    log.error("claim %s/%s (uid %s): %s", c.namespace, c.name, uid, problem)
            for uid in orphans:
                log.warning("removing CDI spec of unknown claim %s left over from before the reboot", uid)
                self.cdi.remove(uid, sync_dir=False)
            changed = True
        unknown = [ClaimRef(ns, name, uid) for uid, (ns, name) in loaded.lost.items() if ns and name]
        settled = self._settle_held(claims, [r for r in unknown if not check_ref(r)])
        changed = changed or any(o.startswith(("released", "confirmed")) for o in settled.values())
        if damage:
            self._report_damage(damage, claims, settled)
        if changed:
            self.store.save(claims)
        return _State(claims)

    def _held_from_spec(self, uid: str) -> CheckpointClaim | str:
        """Rebuild a held entry from the claim's CDI spec on disk, or say why it cannot be done.

        Everything needed is in the spec this driver wrote: the claim UID (file and device names), the
        claim's namespace/name (``SNN_DRA_<D>_CLAIM``), each device (``SNN_DRA_DEVICE_<D>``), its share ID
        and admin access; chip and cores come from the current inventory (the spec's copy if the device is
        gone). Request names are not in it; a held entry is re-planned before any result is returned.
        """
        path = self.cdi.path_for(uid)
        raw = self.cdi.read(uid)
        if raw is None:
            return f"CDI spec {path} is unreadable: cannot tell which devices claim {uid} holds"
        try:
            spec = CdiSpec.model_validate(raw)
        except ValidationError:
            return f"CDI spec {path} is not a valid spec: cannot tell which devices claim {uid} holds"
        devices: list[CheckpointDevice] = []
        owners: set[str] = set()
        for d in spec.devices:
            env = dict(e.split("=", 1) for e in (d.container_edits.env or []) if "=" in e)
            names = [v for k, v in env.items() if k.startswith("SNN_DRA_DEVICE_")]
            if not d.name.startswith(f"{uid}-") or len(names) != 1:
                return f"CDI spec {path} device {d.name!r} does not name one device of claim {uid}"
            name = names[0]
            p = f"SNN_DRA_{_env_name(name)}_"
            owners.add(env.get(f"{p}CLAIM", ""))
            model = self._devices(name)
            spec_cores = [int(x) for x in env.get(f"{p}CORES", "").split(",") if x.isdigit()]
            cores = [c.index for c in model.cores] if model else spec_cores
            devices.append(
                CheckpointDevice(
                    requests=[],
                    pool=self.node_name,
                    device=name,
                    cdi_device_ids=[qualified_name(d.name)],
                    share_id=env.get(f"{p}SHARE_ID"),
                    admin_access=env.get(f"{p}ADMIN_ACCESS") == "true",
                    chip_id=model.chip.id if model else env.get(f"{p}CHIP_ID", ""),
                    cores=cores,
                    shared=model.shared if model else env.get(f"{p}TYPE") in ("spikeRouter", "eventQueue"),
                )
            )
        namespace, _, name = next(iter(owners)).partition("/") if len(owners) == 1 else ("", "", "")
        if check_ref(ClaimRef(namespace, name, uid)):
            return f"CDI spec {path} does not name the namespace/name of claim {uid}"
        return CheckpointClaim(
            namespace=namespace,
            name=name,
            uid=uid,
            state=ClaimState.RECOVERED,
            devices=devices,
            config_hash="",
            cdi_spec_file=spec_file_name(uid),
            cdi_spec=spec_json(spec),
            recovered_from=f"CDI spec {path}",
        )

    def _settle_held(self, claims: dict[str, CheckpointClaim], unknown: Sequence[ClaimRef] = ()) -> dict[str, str]:
        """Check held claims against the API server; per UID what happened. Changes ``claims``.

        ``unknown`` are claims whose checkpoint entry was damaged and whose CDI spec is gone too: only the
        API server can still say which devices they hold. Outcomes (the first word is the kind):

        * ``released``: the claim is not found, was replaced (another UID under its name), is not allocated,
          or has no device of this driver in this node's pool: no container can use its devices any more;
        * ``confirmed``: re-planned from its object (deterministic: the same CDI IDs and spec) and
          PrepareCompleted, its spec (re)written;
        * ``held``: the API server could not be asked, or the plan overlaps another held claim: it stays held;
        * ``unknown``: a damaged entry that could not be checked: its devices cannot be protected.
        """
        refs = [ClaimRef(c.namespace, c.name, uid) for uid, c in claims.items() if c.state is ClaimState.RECOVERED]
        refs += [r for r in unknown if r.uid not in claims]
        if not refs:
            return {}
        outcome: dict[str, str] = {}
        for ref, got in zip(refs, self._lookup_many(refs, RECOVERY_LOOKUP_BUDGET_S), strict=True):
            was_held = ref.uid in claims
            if isinstance(got, ClaimNotFoundError):
                gone = "not found in the API server"
            elif isinstance(got, BaseException):
                outcome[ref.uid] = f"{'held' if was_held else 'unknown'} ({got})"
                log.warning("claim %s (uid %s) cannot be checked: %s", ref, ref.uid, got)
                continue
            else:
                gone = self._gone_reason(ref, got)
            if gone:
                log.warning("releasing claim %s (uid %s) recovered from damaged state: %s", ref, ref.uid, gone)
                if claims.pop(ref.uid, None) is not None:
                    self.cdi.remove(ref.uid, sync_dir=False)
                outcome[ref.uid] = f"released ({gone})"
                continue
            assert not isinstance(got, BaseException)
            others = {u: c for u, c in claims.items() if u != ref.uid}
            try:
                plan = self._plan(ref, got, self._my_results(ref, got), others, [])
                entry = plan.entry.model_copy(update={"state": ClaimState.PREPARE_COMPLETED})
                if not self.cdi.is_current(ref.uid, entry.cdi_spec):
                    self.cdi.write_many([(ref.uid, entry.cdi_spec)])
            except (PlanError, OSError, ValueError) as exc:
                log.error("claim %s (uid %s) recovered from damaged state cannot be re-planned: %s", ref, ref.uid, exc)
                outcome[ref.uid] = f"{'held' if was_held else 'unknown'} ({exc})"
                continue
            claims[ref.uid] = entry
            outcome[ref.uid] = "confirmed by the API server and re-planned"
        return outcome

    def _gone_reason(self, ref: ClaimRef, obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata")
        uid = meta.get("uid") if isinstance(meta, Mapping) else None
        if uid != ref.uid:
            return f"its name now belongs to another claim (uid {uid})"
        status = obj.get("status")
        if not isinstance(status, Mapping) or not isinstance(status.get("allocation"), Mapping):
            return "no longer allocated"
        try:
            self._my_results(ref, obj)
        except PlanError:
            return f"no device of {self.driver_name} allocated in this node's pool {self.node_name}"
        return ""

    def _report_damage(
        self, damage: list[str], claims: Mapping[str, CheckpointClaim], settled: Mapping[str, str]
    ) -> None:
        held = sorted(f"{c.namespace}/{c.name} ({uid})" for uid, c in claims.items() if c.state is ClaimState.RECOVERED)
        count = {k: sum(1 for o in settled.values() if o.startswith(k)) for k in ("released", "confirmed")}
        unknown = sorted(u for u, o in settled.items() if o.startswith("unknown"))
        message = (
            f"prepare state on node {self.node_name} could not be trusted: {'; '.join(damage)}. Nothing was rolled "
            f"back; claims that may be in use were recovered from the CDI specs, the previous checkpoint and the "
            f"API server: {count['confirmed']} confirmed by the API server, {count['released']} released (gone "
            f"from the API server), {len(held)} still held until they can be checked"
            f"{': ' + ', '.join(held) if held else ''}. Held devices are refused to other claims"
            + (
                f"; the devices of claim(s) {', '.join(unknown)} are unknown (entry damaged, no CDI spec, API "
                "server not reachable): delete their pods so they are prepared again"
                if unknown
                else ""
            )
            + ". Check the disk of the plugin data dir."
        )
        log.error("%s", message)
        if self._alarm is not None:
            try:
                self._alarm(message)
            except Exception:  # reporting must never fail a Prepare
                log.exception("reporting the damaged prepare state failed")

    # ------------------------------------------------------------------ prepare
    def prepare(self, claims: Sequence[ClaimRefLike]) -> dict[str, ClaimResult]:
        """Prepare every claim; the answer has one entry per claim UID (error text or devices)."""
        return self.prepare_fetched(self.fetch(claims))

    def fetch(self, claims: Sequence[ClaimRefLike]) -> FetchedClaims:
        """Phase 1, safe WITHOUT the serialization lock: check references and read the claims from the API server.

        Touches no local state; the gRPC layer runs it before taking the lock so a slow API server does not
        hold up other calls (as the Go library reads claims before locking).
        """
        results: dict[str, ClaimResult] = {}
        refs: list[ClaimRef] = []
        for raw in claims:
            ref = ClaimRef(str(raw.namespace), str(raw.name), str(raw.uid))
            if ref.uid in results or any(r.uid == ref.uid for r in refs):
                continue
            bad = check_ref(ref)
            if bad:
                results[ref.uid] = ClaimResult(error=bad)
            else:
                refs.append(ref)
        fetched: list[tuple[ClaimRef, Mapping[str, Any]]] = []
        for ref, got in zip(refs, self._fetch(refs), strict=True):
            if isinstance(got, ClaimResult):
                results[ref.uid] = got
            else:
                fetched.append((ref, got))
        return FetchedClaims(results, tuple(fetched))

    def prepare_fetched(self, fetched_claims: FetchedClaims) -> dict[str, ClaimResult]:
        """Phase 2, under the serialization lock: plan, check overlaps, write checkpoint and CDI specs."""
        results = dict(fetched_claims.results)
        fetched = fetched_claims.claims
        if not fetched:
            return results

        state = self._load()
        plans: list[_Plan] = []
        rewrites: list[tuple[ClaimRef, dict[str, Any]]] = []
        for ref, obj in fetched:
            entry = state.claims.get(ref.uid)
            try:
                mine = self._my_results(ref, obj)
                if entry is not None and entry.state is ClaimState.RECOVERED:
                    # Still held (the check in _load could not settle it): re-plan; on failure the hold stays.
                    plan = self._plan(ref, obj, mine, state.claims, plans)
                    plans.append(_Plan(plan.ref, plan.entry, plan.result, replaces=entry))
                    continue
                if entry is not None and _alloc_keys(mine) == {(d.pool, d.device, d.share_id) for d in entry.devices}:
                    if not self.cdi.is_current(ref.uid, entry.cdi_spec):
                        rewrites.append((ref, entry.cdi_spec))
                    results[ref.uid] = _result_from_entry(entry)
                    continue
                if entry is not None:
                    log.warning("claim %s: allocation differs from the checkpoint; preparing it afresh", ref)
                    self.cdi.remove(ref.uid)
                    state.claims.pop(ref.uid)
                plan = self._plan(ref, obj, mine, state.claims, plans)
            except PlanError as exc:
                results[ref.uid] = ClaimResult(error=str(exc))
                continue
            except Exception as exc:
                log.exception("preparing resourceclaim %s failed", ref)
                results[ref.uid] = ClaimResult(
                    error=f"resourceclaim {ref}: internal error: {type(exc).__name__}: {exc}"
                )
                continue
            plans.append(plan)

        for r, spec in rewrites:
            problem = self._rewrite_spec(r.uid, spec)
            if problem:
                results[r.uid] = ClaimResult(error=f"resourceclaim {r}: {problem}")
        if plans:
            self._commit(plans, state, results)
        return results

    def _fetch_one(self, ref: ClaimRef) -> Mapping[str, Any] | ClaimResult:
        try:
            return fetch_allocated(self._claims, ref)
        except ClaimLookupError as exc:
            return ClaimResult(error=str(exc))
        except Exception as exc:  # a claim source must never take the batch down
            log.exception("reading resourceclaim %s failed", ref)
            return ClaimResult(error=f"resourceclaim {ref}: lookup failed: {type(exc).__name__}: {exc}")

    def _lookup_many(self, refs: Sequence[ClaimRef], budget: float) -> list[Mapping[str, Any] | BaseException]:
        """Raw reads for held claims: the object, or the exception (a ClaimNotFoundError is proof of absence)."""

        def one(ref: ClaimRef) -> Mapping[str, Any] | BaseException:
            try:
                return self._claims.get(ref.namespace, ref.name)
            except Exception as exc:
                return exc

        deadline = time.monotonic() + budget
        pool = ThreadPoolExecutor(max_workers=min(LOOKUP_WORKERS, len(refs)), thread_name_prefix="claim-check")
        try:
            futures = [pool.submit(one, r) for r in refs]
            out: list[Mapping[str, Any] | BaseException] = []
            for ref, fut in zip(refs, futures, strict=True):
                try:
                    out.append(fut.result(timeout=max(0.0, deadline - time.monotonic())))
                except FutureTimeout:
                    out.append(TimeoutError(f"resourceclaim {ref}: not read within {budget:.0f} s"))
            return out
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _fetch(self, refs: Sequence[ClaimRef]) -> list[Mapping[str, Any] | ClaimResult]:
        """Read the claims, several at a time for a batch, all within the batch's lookup budget."""
        if len(refs) <= 1:
            return [self._fetch_one(r) for r in refs]
        deadline = time.monotonic() + self._budget
        pool = ThreadPoolExecutor(max_workers=min(LOOKUP_WORKERS, len(refs)), thread_name_prefix="claim-get")
        try:
            futures = [pool.submit(self._fetch_one, r) for r in refs]
            out: list[Mapping[str, Any] | ClaimResult] = []
            for ref, fut in zip(refs, futures, strict=True):
                try:
                    out.append(fut.result(timeout=max(0.0, deadline - time.monotonic())))
                except FutureTimeout:
                    out.append(
                        ClaimResult(
                            error=f"resourceclaim {ref}: not read within the batch's {self._budget:.0f} s lookup "
                            "budget; the kubelet retries"
                        )
                    )
            return out
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _commit(self, plans: list[_Plan], state: _State, results: dict[str, ClaimResult]) -> None:
        try:
            self._fault("before_checkpoint_started")
            for p in plans:
                state.claims[p.ref.uid] = p.entry
            # Atomic but not fsync'd: a kill leaves it intact; a power loss changes the boot id, and then
            # started entries are rolled back and spec files without an entry are removed (see _load).
            self.store.save(state.claims, durable=False)
            self._fault("after_checkpoint_started")
            self.cdi.write_many([(p.ref.uid, p.entry.cdi_spec) for p in plans])
            self._fault("after_cdi_written")
            for p in plans:
                state.claims[p.ref.uid] = p.entry.model_copy(update={"state": ClaimState.PREPARE_COMPLETED})
            self.store.save(state.claims)
            self._fault("after_checkpoint_completed")
        except OSError as exc:
            log.exception("writing prepare state failed")
            for p in plans:
                if p.replaces is not None:  # a held claim keeps its hold (and its spec)
                    state.claims[p.ref.uid] = p.replaces
                    continue
                state.claims.pop(p.ref.uid, None)
                with contextlib.suppress(OSError):
                    self.cdi.remove(p.ref.uid, sync_dir=False)
            with contextlib.suppress(OSError):  # best effort; a left-over PrepareStarted is rolled back next call
                self.store.save(state.claims)
            for p in plans:
                results[p.ref.uid] = ClaimResult(
                    error=f"resourceclaim {p.ref}: writing state failed ({exc}); check that {self.store.dir} and "
                    f"{self.cdi.dir} are writable and not full"
                )
            return
        for p in plans:
            results[p.ref.uid] = p.result

    @staticmethod
    def _alloc_devices(ref: ClaimRef, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        devices = obj["status"]["allocation"].get("devices") or {}
        if not isinstance(devices, Mapping):
            raise PlanError(f"resourceclaim {ref}: status.allocation.devices is not an object")
        return devices

    def _my_results(self, ref: ClaimRef, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        raw = self._alloc_devices(ref, obj).get("results")
        if raw is None:
            raw = []
        if not isinstance(raw, list) or not all(isinstance(r, Mapping) for r in raw):
            raise PlanError(f"resourceclaim {ref}: status.allocation.devices.results is not a list of objects")
        ours = [r for r in raw if r.get("driver") == self.driver_name]
        mine = [r for r in ours if r.get("pool") == self.node_name]
        if not mine:
            pools = sorted({str(r.get("pool")) for r in ours})
            where = f"only in pools {', '.join(pools)}" if pools else "none at all"
            raise PlanError(
                f"resourceclaim {ref}: no device of driver {self.driver_name} is allocated in this node's pool "
                f"{self.node_name} ({where}); the claim was allocated for another node"
            )
        return mine

    def _configs(self, ref: ClaimRef, obj: Mapping[str, Any]) -> list[tuple[frozenset[str], SNNConfig]]:
        """This driver's configs in merge order: FromClass first, then FromClaim, list order kept."""
        raw = self._alloc_devices(ref, obj).get("config") or []
        if not isinstance(raw, list):
            raise PlanError(f"resourceclaim {ref}: status.allocation.devices.config is not a list")
        ordered: list[tuple[int, int, frozenset[str], SNNConfig]] = []
        problems: list[str] = []
        for i, cfg in enumerate(raw):
            where = f"status.allocation.devices.config[{i}]"
            if not isinstance(cfg, Mapping):
                problems.append(f"{where}: not an object")
                continue
            opaque = cfg.get("opaque")
            if not isinstance(opaque, Mapping) or opaque.get("driver") != self.driver_name:
                continue
            source = cfg.get("source")
            if source not in ("FromClass", "FromClaim"):
                problems.append(f"{where}.source: {source!r} is not supported; allowed values: FromClass, FromClaim")
                continue
            requests = cfg.get("requests") or []
            if not isinstance(requests, list) or not all(isinstance(r, str) for r in requests):
                problems.append(f"{where}.requests: must be a list of request names")
                continue
            try:
                parsed = parse_config(opaque.get("parameters"))
            except ConfigError as exc:
                problems.append(f"{where}.opaque.parameters: {exc}")
                continue
            ordered.append((0 if source == "FromClass" else 1, i, frozenset(requests), parsed))
        if problems:
            raise PlanError(
                f"resourceclaim {ref}: invalid opaque config for {self.driver_name}: " + "; ".join(problems)
            )
        ordered.sort(key=lambda t: (t[0], t[1]))
        return [(reqs, cfg) for _, _, reqs, cfg in ordered]

    def _plan(
        self,
        ref: ClaimRef,
        obj: Mapping[str, Any],
        mine: list[Mapping[str, Any]],
        existing: Mapping[str, CheckpointClaim],
        batch: Sequence[_Plan],
    ) -> _Plan:
        configs = self._configs(ref, obj)
        spec_devices: list[SpecDevice] = []
        ckpt_devices: list[CheckpointDevice] = []
        prepared: list[PreparedDevice] = []
        effective_all: list[dict[str, Any]] = []
        seen: set[str] = set()
        found = (self._devices(r["device"]) for r in mine if isinstance(r.get("device"), str))
        one_chip = len({d.chip.id for d in found if d is not None}) <= 1
        for i, r in enumerate(mine):
            where = f"status.allocation.devices.results[{i}]"
            request, name = r.get("request"), r.get("device")
            if not isinstance(request, str) or not request or not isinstance(name, str):
                raise PlanError(f"resourceclaim {ref}: {where}: request and device must be non-empty strings")
            device = self._devices(name)
            if device is None:
                raise PlanError(
                    f"resourceclaim {ref}: {where}.device: {name!r} does not exist on node {self.node_name}; the "
                    "hardware changed since allocation, delete the pod so the claim is allocated again"
                )
            share_id = r.get("shareID")
            if share_id is not None and (not isinstance(share_id, str) or not UID_RE.match(share_id)):
                raise PlanError(f"resourceclaim {ref}: {where}.shareID: {share_id!r} is not a lower-case UUID")
            admin = r.get("adminAccess") is True
            applicable = [cfg for reqs, cfg in configs if not reqs or request in reqs or _base_request(request) in reqs]
            effective = merge_configs(applicable)
            if effective.sharing is SharingMode.SHARED and not device.shared:
                raise PlanError(
                    f"resourceclaim {ref}: config field sharing=shared is only valid on shared devices (spikeRouter, "
                    f"eventQueue), but request {request!r} got {device.type.value} {name!r}; allowed values here: "
                    f"{SharingMode.EXCLUSIVE.value}, {SharingMode.TIME_SLICED.value}"
                )
            cdi_name = f"{ref.uid}-{name}" + (f"-{share_id}" if share_id else "")
            if cdi_name in seen:
                raise PlanError(f"resourceclaim {ref}: {where}: device {name!r} is allocated twice to this claim")
            seen.add(cdi_name)
            ck = CheckpointDevice(
                requests=[_base_request(request)],
                pool=self.node_name,
                device=name,
                cdi_device_ids=[qualified_name(cdi_name)],
                share_id=share_id,
                admin_access=admin,
                chip_id=device.chip.id,
                cores=[c.index for c in device.cores],
                shared=device.shared,
            )
            if not admin:
                self._check_overlap(ref, ck, existing, batch)
            ckpt_devices.append(ck)
            spec_devices.append(self._spec_device(ref, cdi_name, device, share_id, admin, effective, one_chip))
            prepared.append(PreparedDevice(tuple(ck.requests), ck.pool, ck.device, tuple(ck.cdi_device_ids), share_id))
            effective_all.append({"device": name, "shareID": share_id, "config": effective.model_dump(mode="json")})
        try:
            spec = spec_json(build_spec(spec_devices))
        except ValidationError as exc:
            raise PlanError(
                f"resourceclaim {ref}: the CDI spec would be invalid: {exc.errors(include_url=False)[0]['msg']}"
            ) from None
        digest = hashlib.sha256(json.dumps(effective_all, sort_keys=True).encode()).hexdigest()
        entry = CheckpointClaim(
            namespace=ref.namespace,
            name=ref.name,
            uid=ref.uid,
            state=ClaimState.PREPARE_STARTED,
            devices=ckpt_devices,
            config_hash=digest,
            cdi_spec_file=spec_file_name(ref.uid),
            cdi_spec=spec,
        )
        return _Plan(ref, entry, ClaimResult(devices=tuple(prepared)))

    @staticmethod
    def _check_overlap(
        ref: ClaimRef, dev: CheckpointDevice, existing: Mapping[str, CheckpointClaim], batch: Sequence[_Plan]
    ) -> None:
        """Refuse a device (or any of its cores) that another claim already holds, unless legitimately shared.

        Pools are not compared: this plugin prepares only its own node's pool, so an entry naming another pool can
        only be damaged, and skipping it would hand its cores out twice.
        """
        owners = [(c, d) for c in existing.values() if c.uid != ref.uid for d in c.devices]
        owners += [(p.entry, d) for p in batch for d in p.entry.devices]
        for other, d in owners:
            if d.admin_access:
                continue
            if d.device == dev.device:
                if dev.shared and (dev.share_id is None or dev.share_id != d.share_id):
                    continue
                why = f"device {dev.device!r} is already prepared"
            elif d.chip_id == dev.chip_id and set(d.cores) & set(dev.cores):
                why = f"device {dev.device!r} overlaps cores of device {d.device!r} already prepared"
            else:
                continue
            raise PlanError(
                f"resourceclaim {ref}: {why} for resourceclaim {other.namespace}/{other.name} (uid {other.uid}); "
                "a device is given to one claim at a time unless it is shared or the request uses adminAccess. "
                "Delete the other claim's pods first; if it is gone, its stale entry clears on unprepare"
            )

    def _spec_device(
        self,
        ref: ClaimRef,
        cdi_name: str,
        device: ModelDevice,
        share_id: str | None,
        admin: bool,
        config: EffectiveConfig,
        one_chip: bool,
    ) -> SpecDevice:
        """Container edits of one device: everything from the inventory or validated config, nothing else.

        The backend's access env is given unprefixed (what the vendor SDK reads) only when every device of
        the claim is on one chip; with two chips the unprefixed names would collide (the last CDI device
        wins), so then only the per-device prefixed copies exist and the workload picks its chip.
        """
        chip = device.chip
        p = f"SNN_DRA_{_env_name(device.name)}_"
        env = [
            f"SNN_DRA_DEVICE_{_env_name(device.name)}={device.name}",
            f"{p}TYPE={device.type.value}",
            f"{p}CLAIM={ref.namespace}/{ref.name}",
            f"{p}CLAIM_UID={ref.uid}",
            f"{p}FAMILY={chip.family.value}",
            f"{p}MODEL={chip.model}",
            f"{p}CHIP_ID={chip.id}",
            f"{p}CHIP_INDEX={chip.index}",
            f"{p}CHIP_MESH={chip.mesh[0]},{chip.mesh[1]},{chip.mesh[2]}",
            f"{p}BOARD_ID={chip.board_id}",
            f"{p}SYSTEM_ID={chip.system_id}",
        ]
        if device.cores:
            env.append(f"{p}CORES={','.join(str(c.index) for c in device.cores)}")
            env.append(f"{p}CORE_ORIGIN={device.origin[0]},{device.origin[1]}")
            env.append(f"{p}CORE_EXTENT={device.extent[0]},{device.extent[1]}")
        if device.type is DeviceType.SPIKE_ROUTER:
            env.append(f"{p}ROUTER_MESH={chip.router.mesh_width},{chip.router.mesh_height}")
        if device.queue is not None:
            env.append(f"{p}QUEUE={device.queue.index}")
            env.append(f"{p}QUEUE_DEPTH={device.queue.depth}")
        if chip.access.endpoints:
            env.append(f"{p}ENDPOINTS={','.join(chip.access.endpoints)}")
        if share_id:
            env.append(f"{p}SHARE_ID={share_id}")
        if admin:
            env.append(f"{p}ADMIN_ACCESS=true")
        env += [f"{p}{k}={v}" for k, v in config.env()]
        env += [f"{p}{k}={v}" for k, v in chip.access.env]
        if one_chip:
            env += [f"{k}={v}" for k, v in chip.access.env]
        nodes = tuple(
            CdiDeviceNode(
                path=n.path,
                host_path=n.host_path if n.host_path != n.path else None,
                type=n.type or None,
                major=n.major,
                minor=n.minor,
            )
            for n in chip.access.device_nodes
        )
        return SpecDevice(name=cdi_name, env=tuple(env), device_nodes=nodes)

    # ------------------------------------------------------------------ unprepare
    def unprepare(self, claims: Sequence[ClaimRefLike]) -> dict[str, str]:
        """Remove CDI spec and checkpoint entry; unknown or already-deleted claims succeed (no API read)."""
        out: dict[str, str] = {}
        todo: list[ClaimRef] = []
        for raw in claims:
            ref = ClaimRef(str(raw.namespace), str(raw.name), str(raw.uid))
            if not UID_RE.match(ref.uid):
                out[ref.uid] = f"resourceclaim {ref}: uid {ref.uid!r} is not a lower-case UUID; nothing to unprepare"
                continue
            out[ref.uid] = ""
            todo.append(ref)
        if not todo:
            return out
        state = self._load()
        try:
            self._fault("unprepare_before_cdi_removed")
            if [ref for ref in todo if self.cdi.remove(ref.uid, sync_dir=False)]:
                fsync_dir(self.cdi.dir)
            self._fault("unprepare_after_cdi_removed")
            removed = [state.claims.pop(ref.uid, None) for ref in todo]
            if any(entry is not None for entry in removed):
                self.store.save(state.claims)
            self._fault("unprepare_after_checkpoint")
        except OSError as exc:
            log.exception("unprepare failed")
            for ref in todo:
                out[ref.uid] = f"resourceclaim {ref}: unprepare failed ({exc}); the kubelet retries"
        return out
