#!/usr/bin/env bash
# The main job, on a fresh machine.
#   With Docker and kind: create a DRA-enabled kind cluster, build the image, install the driver and
#   run the demo workloads (hack/kind-demo.sh).
#   Without them (or with SNN_DRA_EMBEDDED=1): the same demo on the embedded cluster (`snn-dra demo`):
#   an HTTPS API server on loopback, the structured allocator, a kubelet emulation and the real
#   kubelet-plugin process, all local and unprivileged.
# Creates .venv (or $SNN_DRA_VENV) and installs snn-dra into it first. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SNN_DRA_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
echo "==> installing snn-dra into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .

have_kind() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 &&
    command -v kind >/dev/null 2>&1 && command -v kubectl >/dev/null 2>&1
}

if [ "${SNN_DRA_EMBEDDED:-0}" != 1 ] && have_kind; then
  echo "==> Docker and kind found: running the demo on a kind cluster"
  PATH="$PWD/$VENV/bin:$PATH" exec hack/kind-demo.sh "$@"
fi
echo "==> Docker/kind not available: running the demo on the embedded cluster"
exec "$VENV/bin/snn-dra" demo "$@"
