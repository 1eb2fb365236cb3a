#!/usr/bin/env bash
# The core-set study on real Fashion-MNIST, 3 seeds of
#   all        a ResNet8 proxy (3 epochs, trained once per seed) keeps 6,000
#              of 60,000 images by each of random, least_confidence, entropy,
#              margin, forgetting_events and kcenters; a ResNet20 target
#              (5 epochs) trains on each subset (configs/fashion_mnist_coreset.py:all)
# and, for seed 0, the same ResNet20 recipe on all 60,000 images
# (configs/fashion_mnist_resnet20.py; the report refuses it if its model,
# recipe or data differ from the core-set target's), then writes the report
# to docs/results/fashion_mnist_coreset_study/. About 23 min per seed and
# 19 min for the full-data run on a 2-core CPU (measured, machine shared). Core-set
# runs resume where they stopped and a finished full-data run is not repeated,
# so rerunning after an interruption is safe.
# Usage: bash scripts/study_fashion_mnist_coreset.sh [SEEDS...]   (default 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
seeds=("${@:-0 1 2}")
seeds=(${seeds[@]})
root=workdirs/fashion_mnist_coreset_study
out=docs/results/fashion_mnist_coreset_study
cores=$(nproc)
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=$((cores < 8 ? cores : 8)) --xla_cpu_collective_call_terminate_timeout_seconds=86400 --xla_cpu_collective_call_warn_stuck_timeout_seconds=600}"
manual_dir=()
if [[ -n "${SVP_FASHION_MNIST_DIR:-}" ]]; then
  manual_dir=(--config.data.manual_dir="$SVP_FASHION_MNIST_DIR")
fi

run() {  # run NAME CONFIG SEED
  local name=$1 config=$2 seed=$3
  echo "$(date -u +%FT%TZ) start $name"
  .venv/bin/python main.py --config="$config" --config.seed="$seed" \
    --workdir="$root/$name" "${manual_dir[@]}"
  echo "$(date -u +%FT%TZ) done $name"
}

for seed in "${seeds[@]}"; do
  run "all_seed$seed" configs/fashion_mnist_coreset.py:all "$seed"
done
# A train run does not resume: skip it once it has finished (summary.json).
if [[ ! -f "$root/full_seed0/summary.json" ]]; then
  run full_seed0 configs/fashion_mnist_resnet20.py 0
fi

runs=()
for seed in "${seeds[@]}"; do runs+=("$root/all_seed$seed"); done
runs+=("$root/full_seed0")
.venv/bin/python -m svp_jax.report "${runs[@]}" --out="$out"
# How balanced each method's subset is across the classes.
.venv/bin/python scripts/coreset_class_balance.py "$root"/all_seed* \
  > "$out/class_balance.md"
# The raw per-run files next to the report: the small JSON/CSV ones (no
# checkpoints, no index files), keeping each method's folder.
for dir in "${runs[@]}"; do
  dest="$PWD/$out/runs/$(basename "$dir")"
  mkdir -p "$dest"
  (cd "$dir" && find . -type f \( -name '*.json' -o -name '*.jsonl' \
    -o -name '*.csv' \) -exec cp --parents {} "$dest/" \;)
done
echo "report: $out/report.md"
