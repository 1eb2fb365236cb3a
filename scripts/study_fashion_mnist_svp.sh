#!/usr/bin/env bash
# Reproduces the issue-5 study: SVP on real Fashion-MNIST, 3 seeds of
#   proxy         ResNet8 (15 epochs) selects for ResNet20 (least confidence)
#   baseline      ResNet20 (15 epochs) selects for itself
#   random        no selector
#   fewer_epochs  ResNet20 trained 5 epochs selects for ResNet20 (15 epochs)
# on configs/fashion_mnist_svp.py's schedule (1,000 -> 2,000 -> 4,000 labels of
# 60,000), then writes the report to docs/results/fashion_mnist_svp_study/.
# About 30 min per seed of all four groups on a 2-core CPU (README). Runs
# resume where they stopped, so rerunning after an interruption is safe.
# Usage: bash scripts/study_fashion_mnist_svp.sh [SEEDS...]   (default 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
seeds=("${@:-0 1 2}")
seeds=(${seeds[@]})
root=workdirs/fashion_mnist_svp_study
out=docs/results/fashion_mnist_svp_study
cores=$(nproc)
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=$((cores < 8 ? cores : 8)) --xla_cpu_collective_call_terminate_timeout_seconds=86400 --xla_cpu_collective_call_warn_stuck_timeout_seconds=600}"
manual_dir=()
if [[ -n "${SVP_FASHION_MNIST_DIR:-}" ]]; then
  manual_dir=(--config.data.manual_dir="$SVP_FASHION_MNIST_DIR")
fi

run() {  # run GROUP SEED CONFIG_ARG [EXTRA FLAGS...]
  local group=$1 seed=$2 arg=$3
  shift 3
  echo "$(date -u +%FT%TZ) start $group seed $seed"
  .venv/bin/python main.py --config="configs/fashion_mnist_svp.py$arg" \
    --config.seed="$seed" --workdir="$root/${group}_seed$seed" \
    "${manual_dir[@]}" "$@"
  echo "$(date -u +%FT%TZ) done $group seed $seed"
}

# Every seed of the three main groups first, so that an interrupted study
# still has a complete comparison.
for seed in "${seeds[@]}"; do
  run proxy "$seed" "" --config.selection.compare_with_target=True
  run baseline "$seed" ":baseline"
  run random "$seed" ":random"
done
for seed in "${seeds[@]}"; do
  run fewer_epochs "$seed" ":fewer_epochs" \
    --config.selection.compare_with_target=True
done

.venv/bin/python -m svp_jax.report "$root"/*_seed* --out="$out"
# The raw per-run files next to the report (small CSV/JSON; no checkpoints).
for dir in "$root"/*_seed*; do
  mkdir -p "$out/runs/$(basename "$dir")"
  cp "$dir"/{config.json,summary.json,proxy.csv,selection.csv,target.csv} \
    "$out/runs/$(basename "$dir")/"
done
echo "report: $out/report.md"
