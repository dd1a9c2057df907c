"""Socket naming, including rolling-update names and the 1.37 hashed fallback (kubelet-grpc.md §1)."""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path

import pytest

from snn_dra.driver.plugin.sockets import (
    SocketPathError,
    dra_socket_name,
    registration_socket_name,
    remove_own_socket,
    remove_stale_socket,
    socket_identity,
    socket_paths,
)

UID = "0f9c2d6e-3b1a-4c8e-9d7f-5a6b7c8d9e0f"
DRIVER = "snn.dra.dev"


def _h8(uid: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(uid.encode()).digest()[:8]).decode().rstrip("=")


def _h16(driver: str, uid: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(f"{driver}\0{uid}".encode()).digest()[:16]).decode().rstrip("=")


def _dir_of_length(n: int) -> str:
    """An absolute directory path of exactly ``n`` bytes."""
    assert n >= 2
    return "/" + "d" * (n - 1)


def test_plain_names() -> None:
    assert dra_socket_name(None) == "dra.sock"
    assert registration_socket_name("/var/lib/kubelet/plugins_registry", DRIVER) == "snn.dra.dev-reg.sock"
    paths = socket_paths("/var/lib/kubelet/plugins/snn.dra.dev", "/var/lib/kubelet/plugins_registry")
    assert str(paths.dra) == "/var/lib/kubelet/plugins/snn.dra.dev/dra.sock"
    assert str(paths.registration) == "/var/lib/kubelet/plugins_registry/snn.dra.dev-reg.sock"
    assert str(paths.lock) == "/var/lib/kubelet/plugins/snn.dra.dev/serialize.lock"


def test_rolling_update_names_with_default_dirs() -> None:
    paths = socket_paths("/var/lib/kubelet/plugins/snn.dra.dev", "/var/lib/kubelet/plugins_registry", pod_uid=UID)
    assert paths.dra.name == f"dra-{UID}.sock"
    assert paths.registration.name == f"{DRIVER}-{UID}-reg.sock"


def test_hash_helpers_have_documented_lengths() -> None:
    assert len(_h8(UID)) == 11
    assert len(_h16(DRIVER, UID)) == 22


def test_form_one_up_to_exactly_107_bytes_then_form_two() -> None:
    form1 = f"{DRIVER}-{UID}-reg.sock"
    fits = _dir_of_length(107 - 1 - len(form1))
    assert len(f"{fits}/{form1}") == 107
    assert registration_socket_name(fits, DRIVER, UID) == form1
    too_long = fits + "x"
    assert registration_socket_name(too_long, DRIVER, UID) == f"{DRIVER}-{_h8(UID)}-reg.sock"


def test_form_three_for_long_driver_names() -> None:
    driver = "a-rather-long-driver-name.example.com"  # form 3 is shorter than form 2 only for long driver names
    form2 = f"{driver}-{_h8(UID)}-reg.sock"
    form3 = f"dra-{_h16(driver, UID)}-reg.sock"
    assert len(form3) < len(form2)
    registry = _dir_of_length(108 - 1 - len(form2) + 1)
    assert registration_socket_name(registry, driver, UID) == form3


def test_last_form_when_nothing_fits_and_paths_refuse_it() -> None:
    registry = _dir_of_length(100)
    assert registration_socket_name(registry, DRIVER, UID) == f"dra-{_h16(DRIVER, UID)}-reg.sock"
    with pytest.raises(SocketPathError, match="107-byte unix socket limit"):
        socket_paths("/tmp/p", registry, DRIVER, UID)


def test_a_108_byte_registration_path_falls_back_to_the_hashed_name() -> None:
    """The Go library would keep form 1 at exactly 108 bytes, which gRPC cannot bind; we take form 2."""
    form1 = f"{DRIVER}-{UID}-reg.sock"
    registry = _dir_of_length(108 - 1 - len(form1))
    assert len(f"{registry}/{form1}") == 108
    assert registration_socket_name(registry, DRIVER, UID) == f"{DRIVER}-{_h8(UID)}-reg.sock"
    assert socket_paths("/tmp/p", registry, DRIVER, UID).registration.name == f"{DRIVER}-{_h8(UID)}-reg.sock"
    assert socket_paths("/tmp/p", registry[:-1], DRIVER, UID).registration.name == form1


def test_paths_refuse_a_dra_socket_grpc_cannot_bind() -> None:
    plugin = _dir_of_length(108 - 1 - len(f"dra-{UID}.sock"))
    with pytest.raises(SocketPathError, match="is 108 bytes"):
        socket_paths(plugin, "/r", DRIVER, UID)


def test_multibyte_directories_count_bytes_not_characters() -> None:
    form1 = f"{DRIVER}-{UID}-reg.sock"
    chars = 108 - 1 - len(form1) - 1
    registry = "/" + "é" * (chars // 2 + 1)  # fits in characters, not in bytes
    assert len(f"{registry}/{form1}") <= 108
    assert registration_socket_name(registry, DRIVER, UID) != form1


def test_stale_socket_removed_and_only_own_socket_removed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "dra.sock"
    assert remove_stale_socket(path) is False
    path.write_text("left over")
    assert remove_stale_socket(path) is True
    assert not path.exists()
    (tmp_path / "dir.sock").mkdir()
    with pytest.raises(SocketPathError, match="is a directory"):
        remove_stale_socket(tmp_path / "dir.sock")

    other = tmp_path / "other.sock"
    with socket.socket(socket.AF_UNIX) as s, socket.socket(socket.AF_UNIX) as t:
        s.bind(str(path))
        mine = socket_identity(path)
        t.bind(str(other))
    other.replace(path)  # another instance took the path over
    assert remove_own_socket(path, mine) is False
    assert path.exists()
    assert remove_own_socket(path, socket_identity(path)) is True
    assert not path.exists()
