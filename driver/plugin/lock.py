"""Serialization of Prepare/Unprepare: an in-process lock plus an exclusive ``flock`` on ``serialize.lock``.

Two driver pods may serve one node during a rolling update and the kubelet may call either, so the on-disk
state (checkpoint, CDI specs) must be changed by one of them at a time. ``flock`` locks belong to the open file
description, so they also exclude two holders inside one process, and the kernel drops them if a holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class LockTimeoutError(TimeoutError):
    """The lock was not obtained before the caller's deadline."""


class SerializationLock:
    """Blocking, deadline-aware lock held around every Prepare and Unprepare.

    ``acquire`` runs in a worker thread (never on the event loop). Deadlines are absolute ``time.monotonic()``
    values so that the kubelet's 45 s call deadline bounds the wait for the lock, too.
    """

    def __init__(self, lock_file: Path | None) -> None:
        self._mutex = threading.Lock()
        self._path = lock_file
        self._fd: int | None = None

    @property
    def path(self) -> Path | None:
        return self._path

    def _open(self) -> int:
        if self._fd is None:
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def _flock(self, deadline: float | None) -> None:
        fd = self._open()
        delay = 0.001
        pause = threading.Event()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if deadline is None:
                # No deadline: the kernel can wait for us without polling.
                fcntl.flock(fd, fcntl.LOCK_EX)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeoutError(
                    f"timed out waiting for the file lock {self._path} held by another plugin instance"
                )
            pause.wait(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    def acquire(self, deadline: float | None = None) -> None:
        """Take both locks before ``deadline``; a deadline already passed fails even when the lock is free.

        (A zero timeout would otherwise make a non-blocking attempt that succeeds, and a call whose caller
        has given up would still run.)
        """
        if deadline is not None and deadline <= time.monotonic():
            raise LockTimeoutError("the call's deadline passed before the lock was tried")
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._mutex.acquire(timeout=timeout):
            raise LockTimeoutError("timed out waiting for another Prepare/Unprepare call in this process")
        if self._path is None:
            return
        try:
            self._flock(deadline)
        except BaseException:
            self._mutex.release()
            raise

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    @contextlib.contextmanager
    def hold(self, deadline: float | None = None) -> Iterator[None]:
        self.acquire(deadline)
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        """Close the lock file; only call when no one holds the lock."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
