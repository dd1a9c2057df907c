#!/usr/bin/env bash
# Regenerates the Python code for the kubelet protos under api/kubelet/ (or into the directory given as $1).
#
# Each proto is compiled under its import path snn_dra/api/kubelet/<pkg>/<version>/api.proto, so the generated
# imports read `from snn_dra.api.kubelet... import api_pb2` and the five files called api.proto get five distinct
# names in the protobuf descriptor pool. Output is deterministic for a given grpcio-tools/mypy-protobuf version;
# tests/test_protos_codegen.py regenerates into a temp dir and diffs against the committed files.
#
# Python: $PYTHON, else .venv/bin/python, else python3 (it needs grpcio-tools and mypy-protobuf).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/api/kubelet}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
BIN=$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src/snn_dra/api/kubelet" "$WORK/out"
PROTOS=()
while IFS= read -r rel; do
  mkdir -p "$WORK/src/snn_dra/api/kubelet/$(dirname "$rel")"
  cp "$ROOT/api/kubelet/$rel" "$WORK/src/snn_dra/api/kubelet/$rel"
  PROTOS+=("snn_dra/api/kubelet/$rel")
done < <(cd "$ROOT/api/kubelet" && find . -name '*.proto' -printf '%P\n' | LC_ALL=C sort)

# mypy-protobuf chats on stderr ("Writing mypy to ..."); show its output only when protoc fails.
if ! (cd "$WORK/src" && "$PYTHON" -m grpc_tools.protoc -I . \
  --plugin=protoc-gen-mypy="$BIN/protoc-gen-mypy" --plugin=protoc-gen-mypy_grpc="$BIN/protoc-gen-mypy_grpc" \
  --python_out="$WORK/out" --grpc_python_out="$WORK/out" --mypy_out="$WORK/out" --mypy_grpc_out="$WORK/out" \
  "${PROTOS[@]}") >"$WORK/protoc.log" 2>&1; then
  cat "$WORK/protoc.log" >&2
  exit 1
fi

(cd "$WORK/out/snn_dra/api/kubelet" && find . -type f -printf '%P\n' | LC_ALL=C sort) | while IFS= read -r rel; do
  mkdir -p "$OUT/$(dirname "$rel")"
  if [[ $rel == *_pb2_grpc.pyi ]]; then
    # Generated stubs follow mypy-protobuf's style, not ours; keep ruff off them like the other generated files.
    { echo '# ruff: noqa'; cat "$WORK/out/snn_dra/api/kubelet/$rel"; } > "$OUT/$rel"
  else
    cp "$WORK/out/snn_dra/api/kubelet/$rel" "$OUT/$rel"
  fi
done
