#!/usr/bin/env bash
# Runs every quality gate and then the test suite, on a fresh machine as on a developer's:
# creates .venv (or $SNN_DRA_VENV), installs snn-dra with its dev extras, then ruff, mypy (strict),
# import-linter (layering contracts) and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SNN_DRA_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
echo "==> installing snn-dra[dev] into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"

# mypy cannot see setuptools' editable import hook, so give it the snn_dra namespace as a symlink tree.
mkdir -p .mypy-src/snn_dra
ln -sfn ../../api .mypy-src/snn_dra/api
ln -sfn ../../driver .mypy-src/snn_dra/driver

echo "==> ruff"
"$VENV/bin/ruff" check .
echo "==> mypy --strict"
"$VENV/bin/mypy" -p snn_dra.api -p snn_dra.driver
echo "==> import-linter"
PYTHONPATH=.mypy-src "$VENV/bin/lint-imports" --no-cache
echo "==> pytest"
exec "$VENV/bin/pytest" "$@"
