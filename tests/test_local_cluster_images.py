"""The image tooling of the local cluster (hack/local-cluster/oci.py and pause.c), without root or network.

containerd imports the archives oci.py writes; what it checks on import (media types, digests, sizes, diff_ids,
the image-name annotation) is checked here on archives built from small trees.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HACK = Path(__file__).resolve().parent.parent / "hack" / "local-cluster"


def _load_oci() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_cluster_oci", HACK / "oci.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


oci = _load_oci()


def _tree(root: Path) -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "empty").mkdir()
    tool = root / "usr" / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (root / "usr" / "bin" / "alias").symlink_to("tool")
    os.link(tool, root / "usr" / "bin" / "hard")
    (root / "a.txt").write_bytes(b"a" * 5000)
    (root / "a.txt").chmod(0o640)
    return root


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        out = {}
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
        return out


def _blob(members: dict[str, bytes], desc: dict[str, Any]) -> bytes:
    return members["blobs/" + desc["digest"].replace(":", "/")]


def _build(tmp_path: Path, ref: str = "localhost/snn-dra/test:1.0") -> tuple[Path, dict[str, Any]]:
    blobs = tmp_path / "blobs"
    layer = oci.pack_layer(_tree(tmp_path / "root"), blobs, mtime=0)
    config = oci.build_config(
        [layer],
        entrypoint=["tool"],
        cmd=["--help"],
        env=["PATH=/usr/bin", "A=1"],
        labels={"org.opencontainers.image.version": "0.1.0"},
        workdir=None,
        created="2026-12-03T00:00:00Z",
        architecture="amd64",
    )
    out = tmp_path / "out" / "image.tar"
    oci.write_image(ref, blobs, [layer], config, out)
    return out, layer


def test_archive_is_an_oci_layout_with_matching_digests(tmp_path: Path) -> None:
    archive, layer = _build(tmp_path)
    members = _members(archive)
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(members["index.json"])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [entry] = index["manifests"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "localhost/snn-dra/test:1.0",
        "org.opencontainers.image.ref.name": "1.0",
    }
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest_bytes = _blob(members, entry)
    assert entry["digest"] == "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    assert entry["size"] == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config_bytes = _blob(members, manifest["config"])
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config = json.loads(config_bytes)
    assert config["config"] == {
        "Entrypoint": ["tool"],
        "Cmd": ["--help"],
        "Env": ["PATH=/usr/bin", "A=1"],
        "Labels": {"org.opencontainers.image.version": "0.1.0"},
    }
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    [layer_desc] = manifest["layers"]
    assert layer_desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    layer_bytes = _blob(members, layer_desc)
    assert layer_desc["digest"] == layer["digest"] == "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    assert layer_desc["size"] == len(layer_bytes)
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(layer_bytes)).hexdigest()],
    }
    assert oci.check_archive(archive) == ["localhost/snn-dra/test:1.0"]


def test_layer_keeps_modes_links_and_order_and_drops_owner_names(tmp_path: Path) -> None:
    _, layer = _build(tmp_path)
    blob = tmp_path / "blobs" / "sha256" / layer["digest"].split(":")[1]
    with tarfile.open(blob, mode="r:gz") as tar:
        members = tar.getmembers()
        by_name = {m.name: m for m in members}
        assert [m.name for m in members] == [
            "a.txt",
            "empty",
            "usr",
            "usr/bin",
            "usr/bin/alias",
            "usr/bin/hard",
            "usr/bin/tool",
        ]
        assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "tool"
        # The first of two hard links is stored as a file, the second as a link to it.
        assert by_name["usr/bin/hard"].isreg()
        assert by_name["usr/bin/tool"].islnk() and by_name["usr/bin/tool"].linkname == "usr/bin/hard"
        assert by_name["a.txt"].mode == 0o640 and by_name["usr/bin/hard"].mode == 0o755
        assert by_name["empty"].isdir()
        assert {(m.mtime, m.uname, m.gname) for m in members} == {(0, "", "")}
        f = tar.extractfile("a.txt")
        assert f is not None and f.read() == b"a" * 5000


def test_same_tree_gives_same_digests_and_a_change_does_not(tmp_path: Path) -> None:
    first = oci.pack_layer(_tree(tmp_path / "one"), tmp_path / "b1", mtime=0)
    second = oci.pack_layer(_tree(tmp_path / "two"), tmp_path / "b2", mtime=0)
    assert first == second
    (tmp_path / "two" / "a.txt").write_bytes(b"b" * 5000)
    third = oci.pack_layer(tmp_path / "two", tmp_path / "b2", mtime=0)
    assert third["digest"] != first["digest"] and third["diffID"] != first["diffID"]


def test_check_refuses_a_tampered_layer(tmp_path: Path) -> None:
    archive, layer = _build(tmp_path)
    name = "blobs/" + layer["digest"].replace(":", "/")
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isfile() else None
            data = f.read() if f else b""
            if m.name == name:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            dst.addfile(m, io.BytesIO(data) if f else None)
    with pytest.raises(oci.OciError, match=r"layer 0 of localhost/snn-dra/test:1.0 blob does not match"):
        oci.check_archive(tampered)


def test_cli_builds_an_image_and_explains_bad_input(tmp_path: Path) -> None:
    script = str(HACK / "oci.py")
    _tree(tmp_path / "root")
    layer = subprocess.run(
        [sys.executable, script, "layer", "--src", str(tmp_path / "root"), "--blobs", str(tmp_path / "blobs")],
        check=True,
        capture_output=True,
        text=True,
    )
    (tmp_path / "layer.json").write_text(layer.stdout)
    base = [
        sys.executable,
        script,
        "image",
        "--blobs",
        str(tmp_path / "blobs"),
        "--layer",
        str(tmp_path / "layer.json"),
    ]
    ok = subprocess.run(
        [*base, "--ref", "localhost/x/y:dev", "--out", str(tmp_path / "y.tar"), "--entrypoint", '["y"]'],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    check = subprocess.run([sys.executable, script, "check", str(tmp_path / "y.tar")], capture_output=True, text=True)
    assert (check.returncode, check.stdout) == (0, "localhost/x/y:dev\n")

    no_tag = subprocess.run(
        [*base, "--ref", "localhost/x/y", "--out", str(tmp_path / "z.tar")], capture_output=True, text=True
    )
    assert no_tag.returncode == 1
    assert "image reference 'localhost/x/y' has no tag" in no_tag.stderr
    bad_entrypoint = subprocess.run(
        [*base, "--ref", "a/b:c", "--out", str(tmp_path / "z.tar"), "--entrypoint", "snn-dra"],
        capture_output=True,
        text=True,
    )
    assert bad_entrypoint.returncode != 0
    missing = subprocess.run(
        [sys.executable, script, "layer", "--src", str(tmp_path / "nope"), "--blobs", str(tmp_path / "blobs")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and f"layer source {tmp_path / 'nope'} is not a directory" in missing.stderr
    assert not (tmp_path / "z.tar").exists()


def _caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigCgt in /proc status")


@pytest.fixture(scope="module")
def pause_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (Debian package gcc): cannot build pause.c")
    binary = tmp_path_factory.mktemp("pause") / "pause"
    subprocess.run(
        [gcc, "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(HACK / "pause.c")], check=True
    )
    return binary


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_pause_stays_until_told_to_stop(pause_binary: Path, signo: signal.Signals) -> None:
    proc = subprocess.Popen([str(pause_binary)])
    try:
        wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGCHLD - 1))
        deadline = time.monotonic() + 10
        while _caught_signals(proc.pid) & wanted != wanted:
            assert time.monotonic() < deadline, "pause never installed its signal handlers"
            assert proc.poll() is None, f"pause exited early with {proc.returncode}"
            time.sleep(0.01)
        assert proc.poll() is None
        proc.send_signal(signo)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _wait_for(what: str, predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_pause_as_pid_1_reaps_orphans(pause_binary: Path) -> None:
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("needs root and util-linux's unshare/nsenter to give pause a PID namespace of its own")
    # pause becomes PID 1 of a new PID namespace, as in a pod sandbox; an orphan started inside is reparented to it.
    wrapper = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(pause_binary)])
    try:
        _wait_for("pause to start", lambda: len(_children(wrapper.pid)) == 1)
        [pause] = _children(wrapper.pid)
        wanted = 1 << (signal.SIGCHLD - 1)
        _wait_for("pause's SIGCHLD handler", lambda: _caught_signals(pause) & wanted)
        subprocess.run(
            ["nsenter", "--target", str(pause), "--pid", "--", "sh", "-c", "sleep 60 >/dev/null 2>&1 &"], check=True
        )
        _wait_for("the orphan to be reparented to pause", lambda: len(_children(pause)) == 1)
        [orphan] = _children(pause)
        os.kill(orphan, signal.SIGKILL)
        # A zombie keeps its /proc entry until its parent reaps it.
        _wait_for(f"pause to reap the killed orphan {orphan}", lambda: not Path(f"/proc/{orphan}").exists())
        os.kill(pause, signal.SIGTERM)
        assert wrapper.wait(timeout=10) == 0
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()


def test_images_sh_prints_ref_and_archive_and_reuses_its_cache(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (Debian package gcc): images.sh cannot build pause.c")
    script = str(HACK / "images.sh")
    env = {**os.environ, "SNN_DRA_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([script, "pause"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    archive = tmp_path / "cache" / "local-cluster" / "images" / "archives" / "pause.tar"
    assert first.stdout == f"localhost/snn-dra/pause:3.10 {archive}\n"
    assert "pause: compiling hack/local-cluster/pause.c" in first.stderr
    assert oci.check_archive(archive) == ["localhost/snn-dra/pause:3.10"]
    members = _members(archive)
    manifest = json.loads(_blob(members, json.loads(members["index.json"])["manifests"][0]))
    config = json.loads(_blob(members, manifest["config"]))
    assert config["config"]["Entrypoint"] == ["/pause"]
    with tarfile.open(fileobj=io.BytesIO(_blob(members, manifest["layers"][0])), mode="r:gz") as layer:
        [entry] = layer.getmembers()
        assert (entry.name, entry.mode, entry.isreg()) == ("pause", 0o755, True)

    again = subprocess.run([script, "pause"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "localhost/snn-dra/pause:3.10: archive up to date" in again.stderr
    assert "compiling" not in again.stderr

    wrong = subprocess.run([script, "pauze"], env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1
    assert "unknown image 'pauze': choose from pause, busybox, driver" in wrong.stderr
