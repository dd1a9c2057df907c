#!/usr/bin/env python3
"""Writes OCI image-layout archives for the local cluster, with no container engine and no registry.

containerd imports them with `ctr -n k8s.io images import --local <archive>`. Layers are packed once from a
directory into a content-addressed blob store and described by a small JSON descriptor, so images.sh can cache
each layer under its own key and assemble an image from cached layers in about a second.

Reproducible: entries are sorted, user and group names are left out (only numeric ids count inside an image),
gzip carries no timestamp, and `--mtime` pins every file time (the caller compiles Python with hash-based .pyc
files where it uses it, so no timestamp check can go stale).

    oci.py layer --src DIR --blobs STORE [--mtime N] [--level N]     prints the layer descriptor (JSON)
    oci.py image --ref REF --blobs STORE --layer DESC.json... --out ARCHIVE.tar [config options]
    oci.py check ARCHIVE.tar                                          verifies every digest, size and media type

Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
# containerd names an imported image after this annotation; the OCI one alone holds only the tag.
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class OciError(Exception):
    """A problem with the input that the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class _Sink(Protocol):
    def write(self, data: Any, /) -> int: ...


class _HashingWriter(io.RawIOBase):
    """Counts and hashes the bytes on their way to a file, so a blob is written and digested in one pass."""

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self._sink.write(view)
        self.size += len(view)
        return len(view)


def _walk(src: Path) -> Iterator[Path]:
    """Every path under src, parents before children, siblings in byte order (os.walk order is not stable)."""
    stack = [src]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        dirs = []
        for entry in entries:
            path = Path(entry.path)
            yield path
            if entry.is_dir(follow_symlinks=False):
                dirs.append(path)
        stack.extend(reversed(dirs))


def _blob_path(blobs: Path, digest: str) -> Path:
    algo, _, hexdigest = digest.partition(":")
    return blobs / algo / hexdigest


def _store(blobs: Path, tmp: Path, digest: str) -> None:
    target = _blob_path(blobs, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


def pack_layer(src: Path, blobs: Path, mtime: int | None = None, level: int = 6) -> dict[str, Any]:
    """Packs src (as the image's /) into a gzip layer blob; returns its descriptor plus the uncompressed diff_id."""
    if not src.is_dir():
        raise OciError(f"layer source {src} is not a directory")
    (blobs / "sha256").mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=blobs, prefix=".layer-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            compressed = _HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=level, mtime=0) as gz:
                uncompressed = _HashingWriter(gz)
                with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for path in _walk(src):
                        _add(tar, path, path.relative_to(src).as_posix(), mtime)
        digest = "sha256:" + compressed.sha.hexdigest()
        _store(blobs, tmp, digest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    desc = Descriptor(MT_LAYER_GZIP, digest, compressed.size).to_json()
    desc["diffID"] = "sha256:" + uncompressed.sha.hexdigest()
    return desc


def _add(tar: tarfile.TarFile, path: Path, arcname: str, mtime: int | None) -> None:
    info = tar.gettarinfo(str(path), arcname)
    if info is None:  # sockets: nothing a container could use
        return
    info.uname = info.gname = ""
    if mtime is not None:
        info.mtime = mtime
    if info.isreg():
        with path.open("rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


def _write_blob(blobs: Path, data: bytes, media_type: str) -> Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    target = _blob_path(blobs, digest)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".blob-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    return Descriptor(media_type, digest, len(data))


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _split_ref(ref: str) -> str:
    """The tag of a reference; the OCI ref.name annotation holds only that."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        raise OciError(f"image reference {ref!r} has no tag: give it as <name>:<tag>, e.g. localhost/x/y:dev")
    return last.rsplit(":", 1)[1]


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OciError(f"{what} {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def build_config(
    layers: list[dict[str, Any]],
    *,
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    env: list[str],
    labels: dict[str, str],
    workdir: str | None,
    created: str,
    architecture: str,
) -> dict[str, Any]:
    config: dict[str, Any] = {"Env": env}
    if entrypoint is not None:
        config["Entrypoint"] = entrypoint
    if cmd is not None:
        config["Cmd"] = cmd
    if labels:
        config["Labels"] = labels
    if workdir:
        config["WorkingDir"] = workdir
    return {
        "created": created,
        "architecture": architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer["diffID"] for layer in layers]},
        "history": [{"created": created, "created_by": layer.get("createdBy", "oci.py layer")} for layer in layers],
    }


def write_image(
    ref: str, blobs: Path, layers: list[dict[str, Any]], config: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Writes config and manifest blobs and the archive (oci-layout, index.json, blobs/); returns index.json."""
    tag = _split_ref(ref)
    for layer in layers:
        if not _blob_path(blobs, layer["digest"]).is_file():
            raise OciError(f"layer blob {layer['digest']} is missing from {blobs}: pack the layer again")
    config_desc = _write_blob(blobs, _canonical(config), MT_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc.to_json(),
        "layers": [Descriptor(layer["mediaType"], layer["digest"], layer["size"]).to_json() for layer in layers],
    }
    manifest_desc = _write_blob(blobs, _canonical(manifest), MT_MANIFEST)
    entry = manifest_desc.to_json()
    entry["platform"] = {"architecture": config["architecture"], "os": config["os"]}
    entry["annotations"] = {ANNOTATION_CONTAINERD_NAME: ref, ANNOTATION_REF_NAME: tag}
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [entry]}
    members: list[tuple[str, bytes | Path]] = [
        ("oci-layout", _canonical({"imageLayoutVersion": "1.0.0"})),
        ("index.json", _canonical(index)),
    ]
    for digest in [manifest_desc.digest, config_desc.digest] + [layer["digest"] for layer in layers]:
        members.append((f"blobs/{digest.replace(':', '/')}", _blob_path(blobs, digest)))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for directory in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            seen: set[str] = set()
            for name, content in members:
                if name in seen:  # two identical layers share one blob
                    continue
                seen.add(name)
                info = tarfile.TarInfo(name)
                info.mode = 0o644
                if isinstance(content, bytes):
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
                else:
                    info.size = content.stat().st_size
                    with content.open("rb") as f:
                        tar.addfile(info, f)
        os.chmod(tmp, 0o644)  # mkstemp made it private; the archive holds nothing secret
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return index


def check_archive(archive: Path) -> list[str]:
    """Verifies an archive the way an importer reads it; returns the image names it carries."""
    try:
        readable = tarfile.is_tarfile(archive)
    except OSError:
        readable = False
    if not readable:
        raise OciError(f"{archive} is not a readable tar archive")
    with tarfile.open(archive, mode="r") as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}

        def open_member(name: str) -> IO[bytes]:
            member = files.get(name)
            f = tar.extractfile(member) if member else None
            if f is None:
                raise OciError(f"{archive}: {name} is missing")
            return f

        def read(name: str) -> bytes:
            with open_member(name) as f:
                return f.read()

        def verify(desc: dict[str, Any], want_type: str, where: str) -> IO[bytes]:
            if desc.get("mediaType") != want_type:
                raise OciError(f"{archive}: {where} has media type {desc.get('mediaType')!r}, want {want_type!r}")
            sha, size = hashlib.sha256(), 0
            with open_member("blobs/" + str(desc["digest"]).replace(":", "/")) as f:
                while chunk := f.read(_CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
            if "sha256:" + sha.hexdigest() != desc["digest"] or size != desc["size"]:
                raise OciError(
                    f"{archive}: {where} blob does not match its descriptor (sha256:{sha.hexdigest()}, {size} bytes)"
                )
            return open_member("blobs/" + str(desc["digest"]).replace(":", "/"))

        def blob(desc: dict[str, Any], want_type: str, where: str) -> bytes:
            with verify(desc, want_type, where) as f:
                return f.read()

        if json.loads(read("oci-layout")) != {"imageLayoutVersion": "1.0.0"}:
            raise OciError(f"{archive}: oci-layout is not imageLayoutVersion 1.0.0")
        index = json.loads(read("index.json"))
        if index.get("schemaVersion") != 2 or index.get("mediaType") != MT_INDEX:
            raise OciError(f"{archive}: index.json is not an OCI image index (schemaVersion 2)")
        names = []
        for entry in index["manifests"]:
            name = entry.get("annotations", {}).get(ANNOTATION_CONTAINERD_NAME)
            if not name:
                raise OciError(f"{archive}: a manifest in index.json has no {ANNOTATION_CONTAINERD_NAME} annotation")
            names.append(name)
            manifest = json.loads(blob(entry, MT_MANIFEST, f"manifest of {name}"))
            config = json.loads(blob(manifest["config"], MT_CONFIG, f"config of {name}"))
            diff_ids = config["rootfs"]["diff_ids"]
            if len(diff_ids) != len(manifest["layers"]):
                raise OciError(f"{archive}: {name} has {len(manifest['layers'])} layers but {len(diff_ids)} diff_ids")
            for i, (layer, diff_id) in enumerate(zip(manifest["layers"], diff_ids, strict=True)):
                sha = hashlib.sha256()
                with verify(layer, MT_LAYER_GZIP, f"layer {i} of {name}") as f, gzip.GzipFile(fileobj=f) as gz:
                    while chunk := gz.read(_CHUNK):
                        sha.update(chunk)
                if "sha256:" + sha.hexdigest() != diff_id:
                    raise OciError(f"{archive}: layer {i} of {name} does not match diff_id {diff_id}")
        return names


def _architecture() -> str:
    machine = platform.machine()
    return _GOARCH.get(machine, machine)


def _load_json_list(value: str | None, flag: str) -> list[str] | None:
    if value is None:
        return None
    parsed = json.loads(value)
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        raise OciError(f"{flag} must be a JSON list of strings, e.g. '[\"snn-dra\"]', not {value!r}")
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    layer = sub.add_parser("layer", help="pack a directory into a layer blob; prints its descriptor")
    layer.add_argument("--src", type=Path, required=True, help="directory that becomes the image's /")
    layer.add_argument("--blobs", type=Path, required=True, help="blob store directory (blobs/sha256/<hex>)")
    layer.add_argument("--mtime", type=int, help="set every entry's modification time to this (seconds)")
    layer.add_argument("--level", type=int, default=6, help="gzip level (default 6)")
    layer.add_argument("--created-by", default="", help="history note stored with the layer")
    image = sub.add_parser("image", help="assemble an image archive from packed layers")
    image.add_argument("--ref", required=True, help="full image reference, e.g. localhost/snn-dra/pause:3.10")
    image.add_argument("--blobs", type=Path, required=True)
    image.add_argument("--layer", type=Path, action="append", default=[], help="layer descriptor file (repeat)")
    image.add_argument("--out", type=Path, required=True, help="archive to write (.tar)")
    image.add_argument("--entrypoint", help="JSON list")
    image.add_argument("--cmd", help="JSON list")
    image.add_argument("--env", action="append", default=[], help="KEY=VALUE (repeat)")
    image.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeat)")
    image.add_argument("--workdir")
    image.add_argument("--created", default="1970-01-01T00:00:00Z", help="RFC 3339 time stored in the config")
    image.add_argument("--architecture", default=_architecture())
    check = sub.add_parser("check", help="verify an archive's digests, sizes and media types")
    check.add_argument("archive", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "layer":
            desc = pack_layer(args.src, args.blobs, args.mtime, args.level)
            if args.created_by:
                desc["createdBy"] = args.created_by
            print(json.dumps(desc, sort_keys=True))
        elif args.command == "image":
            if not args.layer:
                raise OciError("an image needs at least one --layer descriptor")
            layers = []
            for path in args.layer:
                try:
                    layers.append(json.loads(path.read_text()))
                except (OSError, ValueError) as exc:
                    raise OciError(f"cannot read layer descriptor {path}: {exc}") from exc
            _pairs(args.env, "--env")  # only validates: the order of Env is kept as given
            config = build_config(
                layers,
                entrypoint=_load_json_list(args.entrypoint, "--entrypoint"),
                cmd=_load_json_list(args.cmd, "--cmd"),
                env=args.env,
                labels=_pairs(args.label, "--label"),
                workdir=args.workdir,
                created=args.created,
                architecture=args.architecture,
            )
            index = write_image(args.ref, args.blobs, layers, config, args.out)
            print(index["manifests"][0]["digest"])
        else:
            for name in check_archive(args.archive):
                print(name)
    except OciError as exc:
        print(f"oci.py {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
