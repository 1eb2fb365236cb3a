#!/usr/bin/env bash
# Sets everything up, then runs the default job: a real SVP experiment on
# Fashion-MNIST (a ResNet8 proxy selecting for a ResNet20 target).
# Extra arguments go to main.py (e.g. --config.selection.method=kcenters).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
manual_dir=()
if [[ -n "${SVP_FASHION_MNIST_DIR:-}" ]]; then
  manual_dir=(--config.data.manual_dir="$SVP_FASHION_MNIST_DIR")
fi
# On a CPU, one XLA device per core (up to 8), so the sharded paths run (with
# oneDNN convolutions 1 and 2 devices train about equally fast: README,
# "Measured"); it changes nothing on GPU/TPU, and an explicit XLA_FLAGS wins. The collective timeout: see sharding.simulated_cpu_devices_flags.
cores=$(nproc)
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=$((cores < 8 ? cores : 8)) --xla_cpu_collective_call_terminate_timeout_seconds=86400 --xla_cpu_collective_call_warn_stuck_timeout_seconds=600}"
exec .venv/bin/python main.py --config=configs/fashion_mnist_svp.py \
  --workdir=workdirs/fashion_mnist_svp "${manual_dir[@]}" "$@"
