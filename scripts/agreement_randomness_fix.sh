#!/usr/bin/env bash
# Proxy-target agreement before and after the issue-21 randomness fix
# (selector and target trainings on independent random streams), on the
# schedule of the issue-5 study (configs/fashion_mnist_svp.py: 1,000 ->
# 2,000 -> 4,000 labels of real Fashion-MNIST), seeds 0 1 2 by default:
#   after/proxy_seed*          ResNet8 proxy, this checkout
#   after/fewer_epochs_seed*   5-epoch ResNet20 proxy, this checkout
#   before/fewer_epochs_seed*  the same, code of the commit before the fix
# (the ResNet8 proxy's "before" is docs/results/fashion_mnist_svp_study/).
# Only rounds 1 and 2 are compared, so the target is trained at 2,000 labels
# only (round 1 trains one on 1,000 for the agreement). About 5-6 min a run
# on a 2-core CPU. Writes docs/results/fashion_mnist_agreement_randomness/.
# Usage: bash scripts/agreement_randomness_fix.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
seeds=("${@:-0 1 2}")
seeds=(${seeds[@]})
root=workdirs/agreement_randomness
out=docs/results/fashion_mnist_agreement_randomness
before_fix=99047c7^  # The parent of "Selector and target train on independent random streams".
cores=$(nproc)
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=$((cores < 8 ? cores : 8)) --xla_cpu_collective_call_terminate_timeout_seconds=86400 --xla_cpu_collective_call_warn_stuck_timeout_seconds=600}"
repo=$PWD
old_code=$root/code_before_fix
if [[ ! -d $old_code ]]; then
  mkdir -p "$root"
  git worktree add --detach "$old_code" "$before_fix"
fi

run() {  # run CODE_DIR WORKDIR CONFIG_ARG SEED
  local code=$1 workdir=$2 arg=$3 seed=$4
  echo "$(date -u +%FT%TZ) start $workdir"
  (cd "$code" && "$repo/.venv/bin/python" main.py \
    --config="configs/fashion_mnist_svp.py$arg" --config.seed="$seed" \
    --workdir="$repo/$workdir" --config.selection.compare_with_target=True \
    --config.selection.eval_target_at='(2000,)')
  echo "$(date -u +%FT%TZ) done $workdir"
}

for seed in "${seeds[@]}"; do
  run "$repo" "$root/after/proxy_seed$seed" "" "$seed"
  run "$repo" "$root/after/fewer_epochs_seed$seed" ":fewer_epochs" "$seed"
  run "$old_code" "$root/before/fewer_epochs_seed$seed" ":fewer_epochs" "$seed"
done
for when in before after; do
  .venv/bin/python -m svp_jax.report "$root/$when"/*_seed* --out="$out/$when"
done
echo "agreement: $out/{before,after}/agreement.md"
