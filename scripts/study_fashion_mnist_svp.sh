#!/usr/bin/env bash
# The issue-21 study: SVP on real Fashion-MNIST at the paper's first budgets.
# Pool: the 60,000 training images; 2% at random, then +8% and +10%
# (1,200 -> 6,000 -> 12,000 labels); a ResNet20 target (15 epochs) trained
# from scratch at 6,000 and 12,000 labels and tested on the 10,000 test
# images. Groups, 3 seeds each (0 1 2 by default):
#   proxy           ResNet8 (15 epochs) selects by least confidence
#   fewer_epochs    ResNet20 trained 5 epochs selects by least confidence
#   baseline        ResNet20 (15 epochs) selects for itself, least confidence
#   kcenters_proxy  ResNet8 selects by greedy k-centers
#   kcenters_baseline  ResNet20 selects for itself by greedy k-centers
#   random          no selector
# The two least-confidence proxy groups also score the pool with a target
# trained on the same labels (proxy-target agreement; not in their times).
# About 1 h per seed of all six groups on a quiet 2-core CPU. Runs resume where
# they stopped, so rerunning after an interruption is safe. While it runs,
# scripts/study_load.py samples how many cores other work took
# ($root/load.csv); the report marks the runs that shared the machine.
# Usage: bash scripts/study_fashion_mnist_svp.sh [SEEDS...]   (default 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
seeds=("${@:-0 1 2}")
seeds=(${seeds[@]})
root=workdirs/fashion_mnist_svp_20pct
out=docs/results/fashion_mnist_svp_20pct
cores=$(nproc)
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=$((cores < 8 ? cores : 8)) --xla_cpu_collective_call_terminate_timeout_seconds=86400 --xla_cpu_collective_call_warn_stuck_timeout_seconds=600}"
manual_dir=()
if [[ -n "${SVP_FASHION_MNIST_DIR:-}" ]]; then
  manual_dir=(--config.data.manual_dir="$SVP_FASHION_MNIST_DIR")
fi
mkdir -p "$root"
log=$root/study.log
.venv/bin/python scripts/study_load.py monitor "$root/load.csv" &
monitor=$!
trap 'kill $monitor 2>/dev/null || true' EXIT

run() {  # run GROUP SEED CONFIG_ARG [EXTRA FLAGS...]
  local group=$1 seed=$2 arg=$3
  shift 3
  echo "$(date -u +%FT%TZ) start ${group}_seed$seed" | tee -a "$log"
  .venv/bin/python main.py --config="configs/fashion_mnist_svp.py$arg" \
    --config.seed="$seed" --workdir="$root/${group}_seed$seed" \
    --config.selection.initial_subset=0.02 \
    --config.selection.rounds='(0.08, 0.1)' "${manual_dir[@]}" "$@"
  echo "$(date -u +%FT%TZ) done ${group}_seed$seed" | tee -a "$log"
}

# Every group of a seed before the next seed, so that an interrupted study
# still holds complete comparisons.
for seed in "${seeds[@]}"; do
  run proxy "$seed" "" --config.selection.compare_with_target=True
  run fewer_epochs "$seed" ":fewer_epochs" \
    --config.selection.compare_with_target=True
  run baseline "$seed" ":baseline"
  run kcenters_proxy "$seed" ":kcenters"
  run kcenters_baseline "$seed" ":kcenters,baseline"
  run random "$seed" ":random"
done

# Runs that shared the machine with other work: their errors count, their
# seconds are left out of the speed-ups.
shared=$(.venv/bin/python scripts/study_load.py shared "$root/load.csv" "$log")
.venv/bin/python -m svp_jax.report "$root"/*_seed* --out="$out" \
  --shared_runs="$shared"
# The raw per-run files next to the report (small CSV/JSON; no checkpoints).
for dir in "$root"/*_seed*; do
  mkdir -p "$out/runs/$(basename "$dir")"
  cp "$dir"/{config.json,summary.json,proxy.csv,selection.csv,target.csv} \
    "$out/runs/$(basename "$dir")/"
done
cp "$log" "$root/load.csv" "$out/"
.venv/bin/python scripts/study_load.py summarize "$root/load.csv" "$log" \
  > "$out/load.md"
echo "report: $out/report.md"
