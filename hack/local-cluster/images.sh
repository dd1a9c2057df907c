#!/usr/bin/env bash
# Builds the container images of the local cluster as OCI image-layout archives, without a container engine or a
# registry; containerd imports each with `ctr -n k8s.io images import --local <archive>`.
#
#   pause    localhost/snn-dra/pause:3.10    containerd's pinned sandbox image: hack/local-cluster/pause.c, static
#   busybox  localhost/snn-dra/busybox:local a workload image from Debian's busybox-static
#   driver   ghcr.io/snn-dra/snn-dra:dev     what the Dockerfile builds, on a Debian root filesystem instead of
#            python:3.11-slim: debootstrap (minbase + python3) | the project's PyPI dependencies | the snn-dra wheel
#
# Usage: hack/local-cluster/images.sh [pause|busybox|driver]...   (default: all three)
# Prints one line per image on stdout, `<image-ref> <absolute path of the archive>`; progress goes to stderr.
#
# Each layer is cached under its own key in $SNN_DRA_CACHE/local-cluster/images (default ~/.cache/snn-dra/...):
# the Debian layer by suite and package list, the dependency layer by pyproject.toml's dependency list, the
# snn-dra layer by the files the wheel is built from (pyproject.toml setup.py README.md api/ driver/). A cold
# build takes about five minutes and downloads about 100 MB of Debian packages and 100 MB of wheels; after a source
# change only the snn-dra layer is rebuilt (seconds). Dependencies are resolved when their layer is built: to pick
# up new Debian or PyPI releases without changing pyproject.toml, delete the cache directory.
#
# Needs root for the driver image (debootstrap, chroot). Missing Debian packages are installed with apt-get.
#
# Environment:
#   SNN_DRA_CACHE       cache root (default ~/.cache/snn-dra)
#   SNN_DRA_IMAGE       driver image reference (default ghcr.io/snn-dra/snn-dra:dev)
#   DEBIAN_MIRROR       Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   DOWNLOAD_TIMEOUT    seconds allowed for each download step (default 900)
set -euo pipefail
umask 022 # the modes of what is packed become the image's

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/hack/local-cluster
CACHE=${SNN_DRA_CACHE:-$HOME/.cache/snn-dra}/local-cluster/images
SUITE=bookworm # Debian 12: its python3 is 3.11, the version the project targets
PYVER=3.11
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOWNLOAD_TIMEOUT=${DOWNLOAD_TIMEOUT:-900}
PAUSE_REF=localhost/snn-dra/pause:3.10
BUSYBOX_REF=localhost/snn-dra/busybox:local
DRIVER_REF=${SNN_DRA_IMAGE:-ghcr.io/snn-dra/snn-dra:dev}
# Bump a recipe version when the way its layer is built changes, so cached layers are not reused.
RECIPE_PAUSE=1 RECIPE_BUSYBOX=1 RECIPE_OS=1 RECIPE_DEPS=1 RECIPE_APP=1
OS_PACKAGES=python3,python-is-python3 # python-is-python3: the DaemonSet's probes run `python`
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SITE=usr/local/lib/python$PYVER/dist-packages # Debian's python3 reads /usr/local/.../dist-packages, not site-packages

start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*" >&2; }
die() {
  echo "error: $*" >&2
  exit 1
}
# run_logged LOG WHAT CMD...: runs a noisy step with its output in LOG; on failure shows the end of LOG.
run_logged() {
  local log=$1 what=$2
  shift 2
  if ! "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "$what failed (full log: $log)"
  fi
}
# key WORDS...: a short cache key for the given inputs.
key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
oci() { python3 "$HERE/oci.py" "$@"; }

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  die "python3 >= 3.11 is needed on this machine (to pack images and read pyproject.toml)"

# need_pkg COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is missing (root only).
need_pkg() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ -x "$cmd" ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "'$cmd' is missing: install the Debian package '$pkg' (apt-get install $pkg) and run this again"
  fi
  step "installing the Debian package $pkg (for $cmd)"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout "$DOWNLOAD_TIMEOUT" apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "$pkg" \
    >"$CACHE/logs/apt-$pkg.log" 2>&1; then
    step "apt-get install $pkg failed; updating the package lists and trying again"
    run_logged "$CACHE/logs/apt-update.log" \
      "apt-get update (check that the mirrors in /etc/apt/sources.list* are reachable)" \
      timeout "$DOWNLOAD_TIMEOUT" apt-get update -o DPkg::Lock::Timeout=600
    run_logged "$CACHE/logs/apt-$pkg.log" "apt-get install $pkg" \
      timeout "$DOWNLOAD_TIMEOUT" apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "$pkg"
  fi
}

# prune: keeps the most recently used layers of each kind (five snn-dra layers, two of every other kind) and
# deletes every other blob, so a long-lived cache does not grow with every source change.
prune() {
  python3 - "$CACHE" <<'PY'
import json, sys
from pathlib import Path

cache = Path(sys.argv[1])
keep = {"app": 5}
descs = sorted((cache / "layers").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
kept, dropped, count = [], [], {}
for desc in descs:
    kind = desc.name.split("-")[0]
    count[kind] = count.get(kind, 0) + 1
    (kept if count[kind] <= keep.get(kind, 2) else dropped).append(desc)
for desc in dropped:
    desc.unlink()
# Configs and manifests are rewritten with every archive, so only the kept layers' blobs are worth keeping.
used = {json.loads(d.read_text())["digest"].split(":")[1] for d in kept}
for blob in (cache / "blobs" / "sha256").iterdir():
    if blob.name not in used:
        blob.unlink()
PY
}

# archive NAME REF LAYER_DESC... -- OCI_IMAGE_ARGS...: writes $CACHE/archives/NAME.tar unless an identical one
# exists, then prints the contract line.
archive() {
  local name=$1 ref=$2
  shift 2
  local descs=() layers=()
  while [ "$1" != -- ]; do
    descs+=("$1")
    layers+=(--layer "$1")
    shift
  done
  shift
  local out=$CACHE/archives/$name.tar k
  touch "${descs[@]}" # last use, for prune
  k=$(key "$ref" "$@" "$(cat "${descs[@]}")")
  if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$k" ]; then
    step "$ref: archive up to date ($(du -h "$out" | cut -f1))"
  else
    rm -f "$out.key"
    oci image --ref "$ref" --blobs "$CACHE/blobs" "${layers[@]}" --out "$out" "$@" >/dev/null ||
      die "could not write the archive of $ref"
    echo "$k" >"$out.key"
    step "$ref: wrote $out ($(du -h "$out" | cut -f1))"
  fi
  echo "$ref $out"
}

# cached DESC: whether a layer descriptor and its blob are both in the cache.
cached() {
  local digest
  [ -f "$1" ] || return 1
  digest=$(sed -n 's/.*"digest": "sha256:\([0-9a-f]*\)".*/\1/p' "$1")
  [ -n "$digest" ] && [ -f "$CACHE/blobs/sha256/$digest" ]
}

# pack NAME SRC [oci layer args]: packs SRC into a layer and stores its descriptor as $CACHE/layers/NAME.json.
pack() {
  local name=$1 src=$2
  shift 2
  oci layer --src "$src" --blobs "$CACHE/blobs" --created-by "snn-dra images.sh: $name" "$@" \
    >"$CACHE/layers/$name.json.tmp" ||
    die "could not pack the layer $name from $src"
  mv "$CACHE/layers/$name.json.tmp" "$CACHE/layers/$name.json"
}

build_pause() {
  need_pkg gcc gcc
  local k desc
  k=$(key "$RECIPE_PAUSE" "$(sha256sum <"$HERE/pause.c")" "$(gcc --version | head -n1)")
  desc=$CACHE/layers/pause-$k.json
  if ! cached "$desc"; then
    step "pause: compiling hack/local-cluster/pause.c (gcc -static -Os)"
    local tmp
    tmp=$(mktemp -d "$CACHE/pause.XXXXXX")
    if ! gcc -static -Os -Wall -Wextra -Werror -o "$tmp/pause" "$HERE/pause.c" 2>"$CACHE/logs/pause-gcc.log"; then
      cat "$CACHE/logs/pause-gcc.log" >&2
      rm -rf "$tmp"
      die "compiling pause.c failed; a static build needs the C library's static archive (Debian package libc6-dev)"
    fi
    strip "$tmp/pause"
    pack "pause-$k" "$tmp" --mtime 0
    rm -rf "$tmp"
  fi
  archive pause "$PAUSE_REF" "$desc" -- --entrypoint '["/pause"]' --env "PATH=/" \
    --label org.opencontainers.image.title=snn-dra-pause
}

build_busybox() {
  need_pkg /bin/busybox busybox-static
  local linkage
  linkage=$(ldd /bin/busybox 2>&1 || true)
  case $linkage in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) die "/bin/busybox is dynamically linked: install the Debian package busybox-static (it replaces busybox)" ;;
  esac
  local k desc
  k=$(key "$RECIPE_BUSYBOX" "$(sha256sum </bin/busybox)")
  desc=$CACHE/layers/busybox-$k.json
  if ! cached "$desc"; then
    step "busybox: packing /bin/busybox with a link for every applet"
    local tmp applet
    tmp=$(mktemp -d "$CACHE/busybox.XXXXXX")
    mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/root" "$tmp/tmp"
    chmod 1777 "$tmp/tmp"
    chmod 0755 "$tmp" "$tmp/bin" "$tmp/etc"
    chmod 0700 "$tmp/root"
    cp /bin/busybox "$tmp/bin/busybox"
    for applet in $(/bin/busybox --list); do
      [ "$applet" = busybox ] || ln -s busybox "$tmp/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tmp/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/etc/group"
    pack "busybox-$k" "$tmp" --mtime 0
    rm -rf "$tmp"
  fi
  archive busybox "$BUSYBOX_REF" "$desc" -- --cmd '["sh"]' --env "PATH=/bin"
}

# ---- the driver image ----------------------------------------------------------------------------------------

# remove_rootfs DIR: deletes a debootstrap target without following what an interrupted debootstrap may have left
# mounted in it (proc, sysfs, device nodes bound from the host).
remove_rootfs() {
  local dir mnt
  dir=$(realpath -m "$1")
  awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt" || die "cannot unmount $mnt, left by an interrupted debootstrap: unmount it, then run again"
  done
  rm -rf --one-file-system "$dir"
}

# build_os KEY ROOTFS: debootstrap, then drop what a container never reads (package caches, docs, man pages,
# translations, device nodes), keeping each package's copyright file.
build_os() {
  local k=$1 rootfs=$2 tmp=$2.tmp
  need_pkg debootstrap debootstrap
  remove_rootfs "$tmp"
  step "driver: debootstrap $SUITE (minbase + $OS_PACKAGES) from $MIRROR" \
    "(about 2 minutes, log $CACHE/logs/debootstrap.log)"
  if ! timeout "$DOWNLOAD_TIMEOUT" debootstrap --variant=minbase --include="$OS_PACKAGES" "$SUITE" "$tmp" "$MIRROR" \
    >"$CACHE/logs/debootstrap.log" 2>&1; then
    tail -n 25 "$CACHE/logs/debootstrap.log" >&2
    remove_rootfs "$tmp"
    die "debootstrap of Debian $SUITE failed or took longer than ${DOWNLOAD_TIMEOUT}s; check that $MIRROR is" \
      "reachable (set DEBIAN_MIRROR to use another mirror). Full log: $CACHE/logs/debootstrap.log"
  fi
  step "driver: trimming the root filesystem"
  rm -rf "$tmp"/var/cache/apt/* "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/debconf/*-old "$tmp"/var/cache/ldconfig/* \
    "$tmp"/usr/share/man/* "$tmp"/usr/share/info/* "$tmp"/usr/share/locale/* "$tmp"/usr/share/lintian \
    "${tmp:?}"/dev/* "$tmp"/tmp/* "$tmp"/var/tmp/* "$tmp"/root/.cache
  find "$tmp/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$tmp/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$tmp/var/log" -type f -delete
  # The runtime mounts these per container; image copies would only leak the build host's settings.
  : >"$tmp/etc/resolv.conf"
  : >"$tmp/etc/hostname"
  : >"$tmp/etc/machine-id"
  [ -x "$tmp/usr/bin/python$PYVER" ] || die "the $SUITE root filesystem has no /usr/bin/python$PYVER"
  mv "$tmp" "$rootfs"
}

# dependency list of the wheel, one per line, straight from pyproject.toml
dependencies() {
  python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$ROOT/pyproject.toml"
}

# compile ROOTFS STAGE_NAME: byte-compiles a stage with the image's own python (hash-based .pyc: no timestamp
# check, so the layer's fixed mtimes are fine), with source paths as they will be in the image.
compile() {
  local rootfs=$1 name=$2
  if ! chroot "$rootfs" "/usr/bin/python$PYVER" -m compileall -q -j 1 --invalidation-mode unchecked-hash \
    -s "/.stage/$name" -p / "/.stage/$name" >"$CACHE/logs/compile-$name.log" 2>&1; then
    # Some distributions ship deliberately invalid Python as test data; those files stay uncompiled.
    step "driver: note: some files of the $name layer did not byte-compile (see $CACHE/logs/compile-$name.log)"
  fi
}

# ensure_buildenv: a virtualenv of this machine's python with pip, setuptools and wheel: it builds the snn-dra
# wheel and downloads the image's dependencies (so the host's own pip, if any, does not matter).
BUILDENV=$CACHE/buildenv
ensure_buildenv() {
  [ -x "$BUILDENV/bin/python" ] && "$BUILDENV/bin/python" -c 'import setuptools, wheel' 2>/dev/null && return 0
  step "driver: creating the build environment $BUILDENV (pip, setuptools, wheel)"
  rm -rf "$BUILDENV"
  python3 -m venv "$BUILDENV" >"$CACHE/logs/venv.log" 2>&1 ||
    die "python3 -m venv failed ($(tail -n1 "$CACHE/logs/venv.log")); on Debian install the package python3-venv"
  run_logged "$CACHE/logs/pip-buildenv.log" "installing setuptools and wheel from PyPI (check that PyPI is reachable)" \
    timeout "$DOWNLOAD_TIMEOUT" "$BUILDENV/bin/python" -m pip install --disable-pip-version-check 'setuptools>=69' wheel
}

# drop_scripts SITE: removes the bin/ that `pip install --target` writes and the lines naming it in RECORD files.
drop_scripts() {
  rm -rf "${1:?}/bin"
  sed -i '\#^\.\./\.\./bin/#d' "$1"/*.dist-info/RECORD
}

# pip_target DIR ARGS...: pip install into DIR for the image's interpreter (CPython $PYVER, glibc 2.36).
# shellcheck disable=SC2317  # called through run_logged
pip_target() {
  local dir=$1
  shift
  local arch plats=() v
  arch=$(uname -m)
  for v in $(seq 36 -1 17); do plats+=(--platform "manylinux_2_${v}_$arch"); done
  plats+=(--platform "manylinux2014_$arch")
  timeout "$DOWNLOAD_TIMEOUT" "$BUILDENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir \
    --no-compile --no-warn-script-location --no-warn-conflicts --target "$dir" --only-binary=:all: "${plats[@]}" \
    --python-version "$PYVER" --implementation cp --abi "cp${PYVER/./}" "$@"
}

build_driver() {
  [ "$(id -u)" = 0 ] || die "the driver image needs root (debootstrap and chroot): run this script as root"
  local os_k deps_k app_k rootfs deps_desc app_desc
  os_k=$(key "$RECIPE_OS" "$SUITE" "$OS_PACKAGES" "$(uname -m)")
  rootfs=$CACHE/rootfs-$os_k
  deps_k=$(key "$RECIPE_DEPS" "$os_k" "$(dependencies)")
  deps_desc=$CACHE/layers/deps-$deps_k.json
  app_k=$(key "$RECIPE_APP" "$deps_k" "$(
    cd "$ROOT" && find pyproject.toml setup.py README.md api driver -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
      -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  )")
  app_desc=$CACHE/layers/app-$app_k.json
  # Root filesystems of other Debian recipes (and leftovers of interrupted debootstraps) are only disk space.
  local old
  for old in "$CACHE"/rootfs-*; do
    [ "$old" = "$rootfs" ] || [ ! -e "$old" ] || remove_rootfs "$old"
  done

  # The root filesystem is needed to byte-compile the upper layers with the image's own python.
  if ! cached "$CACHE/layers/os-$os_k.json" ||
    { [ ! -d "$rootfs" ] && ! { cached "$deps_desc" && cached "$app_desc"; }; }; then
    [ -d "$rootfs" ] || build_os "$os_k" "$rootfs"
    step "driver: packing the Debian layer"
    rm -rf "$rootfs/.stage"
    pack "os-$os_k" "$rootfs"
  fi

  if ! cached "$deps_desc"; then
    step "driver: installing the dependencies from PyPI for CPython $PYVER (log $CACHE/logs/pip-deps.log)"
    local stage=$rootfs/.stage/deps
    ensure_buildenv
    rm -rf "$stage"
    mkdir -p "$stage/$SITE"
    dependencies >"$rootfs/.stage/deps.txt"
    run_logged "$CACHE/logs/pip-deps.log" \
      "installing the dependencies from PyPI (check that PyPI is reachable; time box ${DOWNLOAD_TIMEOUT}s)" \
      pip_target "$stage/$SITE" -r "$rootfs/.stage/deps.txt"
    # Their console scripts carry this machine's interpreter in the shebang: dropped, with their RECORD lines
    # (which would also make the layer depend on where the cache is).
    drop_scripts "$stage/$SITE"
    step "driver: byte-compiling the dependencies with the image's python"
    compile "$rootfs" deps
    step "driver: packing the dependency layer ($(du -sh "$stage" | cut -f1))"
    pack "deps-$deps_k" "$stage" --mtime 0
    rm -rf "$rootfs/.stage"
  fi

  if ! cached "$app_desc"; then
    local src=$CACHE/wheel-src stage=$rootfs/.stage/app
    ensure_buildenv
    step "driver: building the snn-dra wheel"
    rm -rf "$src" "$stage"
    mkdir -p "$src" "$stage/$SITE" "$stage/usr/local/bin"
    (cd "$ROOT" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' pyproject.toml setup.py README.md api driver) |
      tar -xf - -C "$src"
    # One pip run builds the wheel (PEP 517, setuptools) and installs it.
    run_logged "$CACHE/logs/wheel.log" "building and installing the snn-dra wheel" \
      "$BUILDENV/bin/python" -m pip install --disable-pip-version-check --no-deps --no-build-isolation --no-compile \
      --no-cache-dir --no-warn-script-location --target "$stage/$SITE" "$src"
    [ -f "$stage/$SITE/bin/snn-dra" ] || die "the snn-dra wheel installed no snn-dra console script"
    # pip wrote this machine's interpreter into the script; the image runs it with its own.
    sed '1s|^#!.*|#!/usr/bin/python3|' "$stage/$SITE/bin/snn-dra" >"$stage/usr/local/bin/snn-dra"
    chmod 0755 "$stage/usr/local/bin/snn-dra"
    drop_scripts "$stage/$SITE"
    # pip records where the sources were (a path in this cache); the image has no use for it.
    rm -f "$stage/$SITE"/snn_dra-*.dist-info/direct_url.json
    sed -i '/direct_url\.json,/d' "$stage/$SITE"/snn_dra-*.dist-info/RECORD
    compile "$rootfs" app
    pack "app-$app_k" "$stage" --mtime 0
    rm -rf "$rootfs/.stage" "$src"
  fi

  local version revision created
  version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$ROOT/pyproject.toml")
  revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  created=$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
  archive driver "$DRIVER_REF" "$CACHE/layers/os-$os_k.json" "$deps_desc" "$app_desc" -- \
    --entrypoint '["snn-dra"]' --cmd '["--help"]' \
    --env "PATH=$IMAGE_PATH" --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
    --label org.opencontainers.image.title=snn-dra \
    --label "org.opencontainers.image.description=Kubernetes DRA driver for spiking-neural-network accelerators" \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.base.name=debian:$SUITE" \
    --created "$created"
}

# main IMAGE...: the whole run is one function, so bash has parsed all of it before it starts: editing this file
# while a build is running cannot change what that build executes.
main() {
  local images=("$@") image
  [ ${#images[@]} -gt 0 ] || images=(pause busybox driver)
  for image in "${images[@]}"; do
    case $image in
    pause | busybox | driver) ;;
    *) die "unknown image '$image': choose from pause, busybox, driver" ;;
    esac
  done
  mkdir -p "$CACHE/blobs" "$CACHE/layers" "$CACHE/archives" "$CACHE/logs"
  # One build at a time per cache: layers and archives are shared.
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    step "another images.sh is using $CACHE; waiting for it"
    flock -w 3600 9 || die "gave up waiting for the lock on $CACHE/.lock after an hour"
  fi
  for image in "${images[@]}"; do
    case $image in
    pause) build_pause ;;
    busybox) build_busybox ;;
    driver) build_driver ;;
    esac
  done
  prune
  step "done"
}

main "$@"
exit
