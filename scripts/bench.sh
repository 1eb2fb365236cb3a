#!/usr/bin/env bash
# Runs every benchmark (benchmarks/run_all.py) and writes BENCHMARKS.md and
# benchmarks/results/all.json. Needs a quiet machine for meaningful numbers.
#   bash scripts/bench.sh              # everything (about an hour on 2 cores)
#   bash scripts/bench.sh --quick      # tiny settings: checks the harness
# Extra arguments go to run_all.py (e.g. --parts=throughput --models=preact20).
# PyTorch, the side-by-side reference, goes into a separate virtualenv,
# .venv-bench, so it never enters the project's .venv or requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv-bench/bin/python ]]; then
  echo "[bench] creating virtualenv .venv-bench with $($PYTHON --version)"
  "$PYTHON" -m venv .venv-bench
fi
# torch==2.13.0 exactly: pip then takes the CPU wheel; a range could pull a
# multi-GB CUDA build.
echo "[bench] installing requirements-bench.txt (first time: a few minutes)"
.venv-bench/bin/python -m pip install -q --disable-pip-version-check \
  -r requirements-bench.txt

# As scripts/run_default.sh: one XLA CPU device per core (up to 8), and the
# collective timeout raised (see sharding.simulated_cpu_devices_flags); an
# explicit XLA_FLAGS wins. k-center subprocesses set their own device count.
cores=$(nproc)
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=$((cores < 8 ? cores : 8)) --xla_cpu_collective_call_terminate_timeout_seconds=86400 --xla_cpu_collective_call_warn_stuck_timeout_seconds=600}"
echo "[bench] XLA_FLAGS=$XLA_FLAGS"
exec .venv-bench/bin/python -m benchmarks.run_all "$@"
