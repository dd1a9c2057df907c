"""Per-claim CDI spec files in the dynamic CDI dir (usually tmpfs ``/var/run/cdi``).

One spec per claim, ``snn.dra.dev-snn_<claimUID>.json``, kind ``snn.dra.dev/snn`` (one class for every
device type: the type travels in env, and one kind keeps the file name predictable for cleanup).
Device names are ``<claimUID>-<device>`` (plus ``-<shareID>`` for shared allocations) so a name is never
reused: runtimes cache specs and reload only on a miss. ``cdiVersion`` is the lowest the used fields
need, because runtimes with an older vendored CDI library reject versions they do not know.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from snn_dra.api.cdi import CdiContainerEdits, CdiDevice, CdiDeviceNode, CdiSpec
from snn_dra.driver.claims import UID_RE
from snn_dra.driver.fsutil import atomic_write, fsync_dir

VENDOR: Final = "snn.dra.dev"
CDI_CLASS: Final = "snn"
KIND: Final = f"{VENDOR}/{CDI_CLASS}"
SPEC_MODE: Final = 0o644
DIR_MODE: Final = 0o755


def minimum_version(spec: CdiSpec) -> str:
    """Lowest cdiVersion whose loader accepts every field used (CDI ``MinimumRequiredVersion`` rules).

    Only fields this model can hold are checked; hooks, intelRdt, additionalGids and netDevices are
    not representable, so 0.7.0 and 1.1.0 never become necessary.
    """
    edits = [d.container_edits for d in spec.devices]
    if spec.container_edits is not None:
        edits.append(spec.container_edits)
    if spec.annotations or any(d.annotations for d in spec.devices) or "." in spec.kind.split("/", 1)[1]:
        return "0.6.0"
    if any(n.host_path for e in edits for n in e.device_nodes or ()) or any(d.name[0].isdigit() for d in spec.devices):
        return "0.5.0"
    if any(m.type for e in edits for m in e.mounts or ()):
        return "0.4.0"
    return "0.3.0"


@dataclass(frozen=True, slots=True)
class SpecDevice:
    """One CDI device of a claim's spec; env already validated, device nodes from the inventory only."""

    name: str
    env: tuple[str, ...]
    device_nodes: tuple[CdiDeviceNode, ...] = ()


def build_spec(devices: Sequence[SpecDevice]) -> CdiSpec:
    cdi_devices = [
        CdiDevice(
            name=d.name,
            container_edits=CdiContainerEdits(env=list(d.env) or None, device_nodes=list(d.device_nodes) or None),
        )
        for d in devices
    ]
    draft = CdiSpec(cdi_version="1.1.0", kind=KIND, devices=cdi_devices)
    return draft.model_copy(update={"cdi_version": minimum_version(draft)})


def qualified_name(device_name: str) -> str:
    return f"{KIND}={device_name}"


def spec_file_name(claim_uid: str) -> str:
    if not UID_RE.match(claim_uid):
        raise ValueError(f"claim uid {claim_uid!r} is not a UUID; refusing to build a CDI file name from it")
    return f"{VENDOR}-{CDI_CLASS}_{claim_uid}.json"


def spec_json(spec: CdiSpec) -> dict[str, Any]:
    data: dict[str, Any] = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return data


class CdiWriter:
    """Owns the driver's files in one CDI directory; never touches a file it did not name."""

    def __init__(self, cdi_dir: str | Path) -> None:
        self.dir = Path(cdi_dir)

    def path_for(self, claim_uid: str) -> Path:
        return self.dir / spec_file_name(claim_uid)

    def _ensure_dir(self) -> None:
        if not self.dir.is_dir():
            self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    @staticmethod
    def _encode(spec: dict[str, Any]) -> bytes:
        """Canonical bytes; re-validating also keeps a tampered checkpoint from smuggling in hooks or mounts."""
        return json.dumps(spec_json(CdiSpec.model_validate(spec)), indent=2).encode() + b"\n"

    def write(self, claim_uid: str, spec: dict[str, Any]) -> Path:
        """Write (or replace) the claim's spec atomically, mode 0644."""
        path = self.path_for(claim_uid)
        self._ensure_dir()
        atomic_write(path, self._encode(spec), SPEC_MODE)
        return path

    def write_many(self, specs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Write several specs atomically but without fsync (batch prepare).

        Durability comes from the checkpoint instead: it holds each spec's exact content, a spec that is
        missing or damaged is rewritten on the next Prepare, and all are rewritten after a reboot. The
        dynamic CDI dir is normally tmpfs, where fsync buys nothing anyway.
        """
        if not specs:
            return
        self._ensure_dir()
        for uid, spec in specs:
            atomic_write(self.path_for(uid), self._encode(spec), SPEC_MODE, sync_dir=False, sync_file=False)

    def orphans(self, known: set[str]) -> list[str]:
        """UIDs of this driver's spec files in the dir that ``known`` does not list."""
        prefix = f"{VENDOR}-{CDI_CLASS}_"
        out = []
        for path in self.dir.glob(f"{prefix}*.json") if self.dir.is_dir() else ():
            uid = path.name[len(prefix) : -len(".json")]
            if UID_RE.match(uid) and uid not in known:
                out.append(uid)
        return sorted(out)

    def remove_stale_temps(self) -> list[str]:
        """Delete temp files a killed writer left for this driver's specs; returns the names removed.

        Only ``.<our spec file name>.<random>.tmp`` (what :func:`atomic_write` creates) is touched, never
        another vendor's file. Call it while no write can be in flight (under the serialization lock):
        another plugin instance's temp file would otherwise vanish under it.
        """
        prefix = f".{VENDOR}-{CDI_CLASS}_"
        removed = []
        for path in self.dir.glob(f"{prefix}*.json.*.tmp") if self.dir.is_dir() else ():
            uid = path.name[len(prefix) :].split(".json.", 1)[0]
            if not UID_RE.match(uid) or not path.is_file():
                continue
            with contextlib.suppress(OSError):  # one that cannot go is harmless: CDI loaders skip *.tmp
                path.unlink()
                removed.append(path.name)
        return removed

    def read(self, claim_uid: str) -> dict[str, Any] | None:
        """The spec on disk, or None if missing or unreadable (then it gets rewritten)."""
        try:
            data = json.loads(self.path_for(claim_uid).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def is_current(self, claim_uid: str, spec: dict[str, Any]) -> bool:
        path = self.path_for(claim_uid)
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            return False
        return mode == SPEC_MODE and self.read(claim_uid) == spec

    def remove(self, claim_uid: str, *, sync_dir: bool = True) -> bool:
        path = self.path_for(claim_uid)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        if sync_dir:
            with contextlib.suppress(FileNotFoundError):
                fsync_dir(self.dir)
        return True


class UnresolvableCdiDevicesError(LookupError):
    """A qualified CDI ID names no device in any spec dir (a runtime fails container creation with this)."""


def resolve(ids: Sequence[str], dirs: Sequence[str | Path]) -> dict[str, list[Any]]:
    """Merge the container edits the IDs select, as a CDI-enabled runtime would (for emulation and tests).

    Specs are read from ``*.json`` files in ``dirs``; a later dir wins on a duplicate ID. Spec-level edits
    are applied once per spec that contributes a device. A device node (and a mount) seen again for the same
    container path replaces the earlier one, as the CDI library does when it edits the OCI spec, so two
    devices of one chip give the container one ``/dev/akidaN``. Unknown IDs raise
    :class:`UnresolvableCdiDevicesError`.
    """
    devices: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for directory in dirs:
        for path in sorted(Path(directory).glob("*.json")):
            try:
                spec = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
                continue
            for dev in spec.get("devices") or []:
                if isinstance(dev, dict) and isinstance(dev.get("name"), str):
                    devices[f"{spec['kind']}={dev['name']}"] = (str(path), spec, dev.get("containerEdits") or {})
    missing = [i for i in ids if i not in devices]
    if missing:
        raise UnresolvableCdiDevicesError(f"unresolvable CDI devices {', '.join(missing)}")
    merged: dict[str, list[Any]] = {"env": [], "deviceNodes": [], "mounts": [], "hooks": []}
    seen_specs: set[str] = set()
    for i in ids:
        source, spec, edits = devices[i]
        layers = [edits]
        if source not in seen_specs:
            seen_specs.add(source)
            layers.insert(0, spec.get("containerEdits") or {})
        for layer in layers:
            for key, items in merged.items():
                for item in layer.get(key) or []:
                    path_key = {"deviceNodes": "path", "mounts": "containerPath"}.get(key)
                    if path_key is not None:
                        items[:] = [x for x in items if x.get(path_key) != item.get(path_key)]
                    items.append(item)
    return merged
