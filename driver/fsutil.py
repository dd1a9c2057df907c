"""Crash-safe file replacement shared by the CDI writer and the checkpoint store.

A runtime may read a CDI spec at any moment and the plugin may be killed at any instruction, so a file
is never written in place: a temp file in the same directory is filled, fsync'd, given its final mode,
renamed over the target, and the directory is fsync'd so the rename itself survives a power loss.
The temp name ends in ``.tmp`` so CDI loaders (``*.json``/``*.yaml``) never pick it up.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int, *, sync_dir: bool = True, sync_file: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically; ``mode`` is applied regardless of the umask.

    Readers never see a partial file either way; the fsyncs only add durability across a power loss.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            if sync_file:
                os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise
    if sync_dir:
        fsync_dir(path.parent)


def remove_stale_temps(directory: Path, stem: str) -> None:
    """Delete temp files a killed writer left behind for ``stem`` (they are never read)."""
    for leftover in directory.glob(f".{stem}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
