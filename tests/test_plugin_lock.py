"""The serialization lock: mutual exclusion across processes (flock) and threads, bounded by deadlines."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from snn_dra.driver.plugin.lock import LockTimeoutError, SerializationLock

WORKER = r"""
import os, sys
from pathlib import Path
from snn_dra.driver.plugin.lock import SerializationLock

lock_file, counter, marker, rounds = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
lock = SerializationLock(lock_file)
print("started", flush=True)
sys.stdin.readline()  # both workers start hammering at the same moment
for _ in range(rounds):
    with lock.hold():
        # Inside the critical section nobody else may be: the marker must not exist, and the
        # read-modify-write of the counter must never lose an update.
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
        value = int(counter.read_text())
        counter.write_text(str(value + 1))
        marker.unlink()
lock.close()
print("done", flush=True)
"""


def test_two_processes_never_overlap(tmp_path: Path) -> None:
    lock_file, counter, marker = tmp_path / "serialize.lock", tmp_path / "counter", tmp_path / "inside"
    counter.write_text("0")
    rounds = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(lock_file), str(counter), str(marker), str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "started"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            _out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert int(counter.read_text()) == 2 * rounds
    assert not marker.exists()


def test_file_lock_excludes_a_second_instance_until_released(tmp_path: Path) -> None:
    a, b = SerializationLock(tmp_path / "serialize.lock"), SerializationLock(tmp_path / "serialize.lock")
    a.acquire()
    with pytest.raises(LockTimeoutError, match="file lock"):
        b.acquire(deadline=time.monotonic() + 0.05)  # must not get in while a holds it
    a.release()
    b.acquire(deadline=time.monotonic() + 30)
    b.release()
    a.close()
    b.close()


def test_waiter_gets_the_lock_when_the_holder_releases(tmp_path: Path) -> None:
    a, b = SerializationLock(tmp_path / "serialize.lock"), SerializationLock(tmp_path / "serialize.lock")
    a.acquire()
    got = threading.Event()

    def waiter() -> None:
        with b.hold(deadline=time.monotonic() + 30):
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not got.is_set()
    a.release()
    t.join(timeout=30)
    assert got.is_set()
    a.close()
    b.close()


def test_in_process_lock_has_deadline_too(tmp_path: Path) -> None:
    lock = SerializationLock(None)
    lock.acquire()
    result: list[BaseException] = []

    def other() -> None:
        try:
            lock.acquire(deadline=time.monotonic() + 0.05)
        except LockTimeoutError as exc:
            result.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(timeout=30)
    assert result and "in this process" in str(result[0])
    lock.release()
    with lock.hold(deadline=time.monotonic() + 1):
        pass


def test_lock_file_is_owner_only(tmp_path: Path) -> None:
    lock = SerializationLock(tmp_path / "serialize.lock")
    with lock.hold():
        assert (tmp_path / "serialize.lock").stat().st_mode & 0o777 == 0o600
    lock.close()
