"""Where the plugin's unix sockets live, and how they are created and removed.

The names are part of the kubelet contract: the kubelet discovers ``*-reg.sock`` files in its registry dir and
dials the absolute DRA endpoint the plugin advertises. Rolling updates give every pod its own names so that an
old and a new driver pod can serve side by side; kubelet 1.37 hashes names that would not fit a unix socket path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

DRIVER_NAME = "snn.dra.dev"
DEFAULT_PLUGIN_DIR = Path("/var/lib/kubelet/plugins") / DRIVER_NAME
DEFAULT_REGISTRY_DIR = Path("/var/lib/kubelet/plugins_registry")
LOCK_FILE_NAME = "serialize.lock"
UNIX_PATH_MAX = 108
"""Bytes in ``sockaddr_un.sun_path`` on Linux; the Go library picks registration names against this length
(we pick against :data:`GRPC_UNIX_PATH_MAX`, the length gRPC can actually bind)."""
GRPC_UNIX_PATH_MAX = 107
"""gRPC core also needs the terminating NUL in ``sun_path``, so it binds paths of at most 107 bytes."""


class SocketPathError(ValueError):
    """A socket path cannot be used (too long, wrong kind of file)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def dra_socket_name(pod_uid: str | None = None) -> str:
    """``dra.sock``, or ``dra-<podUID>.sock`` with rolling update (never hashed upstream)."""
    return f"dra-{pod_uid}.sock" if pod_uid else "dra.sock"


def registration_socket_name(registry_dir: str | Path, driver_name: str, pod_uid: str | None = None) -> str:
    """The registration socket basename, following the 1.37 library's three candidates for rolling update.

    The first candidate whose full path gRPC can bind (107 bytes, see :data:`GRPC_UNIX_PATH_MAX`) wins; if
    none fits, the last (shortest) one is used. The Go library measures against 108, but a 108-byte path is
    one gRPC core refuses, so choosing against 107 turns that case into the next (hashed) name instead of a
    start-up failure; the kubelet discovers any ``*-reg.sock``, so the choice is free.
    """
    if not pod_uid:
        return f"{driver_name}-reg.sock"
    h8 = _b64url(hashlib.sha256(pod_uid.encode()).digest()[:8])
    h16 = _b64url(hashlib.sha256(f"{driver_name}\x00{pod_uid}".encode()).digest()[:16])
    candidates = (f"{driver_name}-{pod_uid}-reg.sock", f"{driver_name}-{h8}-reg.sock", f"dra-{h16}-reg.sock")
    for name in candidates:
        if len(os.fsencode(os.path.join(registry_dir, name))) <= GRPC_UNIX_PATH_MAX:  # noqa: PTH118 - byte length of the raw join
            return name
    return candidates[-1]


@dataclass(frozen=True, slots=True)
class SocketPaths:
    """Absolute paths of everything the plugin creates under the kubelet's directories."""

    dra: Path
    registration: Path
    lock: Path


def socket_paths(
    plugin_dir: str | Path, registry_dir: str | Path, driver_name: str = DRIVER_NAME, pod_uid: str | None = None
) -> SocketPaths:
    """Resolve the plugin's paths; the DRA endpoint must be absolute because it is advertised to the kubelet."""
    plugin = Path(plugin_dir).absolute()
    registry = Path(registry_dir).absolute()
    paths = SocketPaths(
        dra=plugin / dra_socket_name(pod_uid),
        registration=registry / registration_socket_name(registry, driver_name, pod_uid),
        lock=plugin / LOCK_FILE_NAME,
    )
    for path in (paths.dra, paths.registration):
        if len(os.fsencode(str(path))) > GRPC_UNIX_PATH_MAX:
            raise SocketPathError(
                f"socket path {path} is {len(os.fsencode(str(path)))} bytes, over the {GRPC_UNIX_PATH_MAX}-byte unix "
                "socket limit: use a shorter --plugin-dir/--registry-dir"
            )
    return paths


def ensure_dir(path: Path, mode: int) -> None:
    """Create a directory (and parents) with ``mode`` if missing; existing directories are left as they are."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    path.chmod(mode)  # mkdir's mode is filtered by the umask


def remove_stale_socket(path: Path) -> bool:
    """Remove a leftover socket (or file) at ``path`` before listening, as the Go library does.

    Returns whether something was removed. A directory there is a configuration error, not something to delete.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        raise SocketPathError(f"{path} is a directory, expected a unix socket path: remove it or choose another dir")
    path.unlink(missing_ok=True)
    return True


SocketIdentity = tuple[int, int, int]


def socket_identity(path: Path) -> SocketIdentity | None:
    """(device, inode, ctime) of a socket file, so we only ever delete the socket we created ourselves."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


def remove_own_socket(path: Path, identity: SocketIdentity | None) -> bool:
    """Remove ``path`` only if it is still the file we bound (another instance may have replaced it)."""
    if identity is None or socket_identity(path) != identity:
        return False
    path.unlink(missing_ok=True)
    return True
