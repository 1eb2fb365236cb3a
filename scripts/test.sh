#!/usr/bin/env bash
# Sets everything up (test extras included), then runs the whole test suite.
# Extra arguments go to pytest (e.g. -m 'not slow', -k kcenters).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest -q "$@"
