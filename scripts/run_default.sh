#!/usr/bin/env bash
# Sets everything up, then runs the default job on real Fashion-MNIST.
# Extra arguments go to main.py (e.g. --config.train.batch_size=64).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
manual_dir=()
[[ -n "${SVP_FASHION_MNIST_DIR:-}" ]] && \
  manual_dir=(--config.data.manual_dir="$SVP_FASHION_MNIST_DIR")
exec .venv/bin/python main.py --config=configs/fashion_mnist_resnet20.py \
  --workdir=workdirs/fashion_mnist_resnet20 "${manual_dir[@]}" "$@"
