#!/usr/bin/env bash
# A virtualenv .venv-label-studio with a pinned Label Studio, for the slow
# round-trip test against a real server (tests/test_label_studio_server.py)
# and for a person who labels there (svp_jax/label_studio.py says how to
# start it). svp_jax itself never imports Label Studio. Idempotent: an
# existing venv with this version is left as it is.
#   bash scripts/setup_label_studio.sh     # about 1 minute, 1 GB
set -euo pipefail
cd "$(dirname "$0")/.."

LABEL_STUDIO_VERSION=1.23.2
# Label Studio 1.23.2 asks for sentry-sdk>=2.16, and 3.x refuses an option
# it passes (TypeError: Unknown option 'send_default_pii') when its error
# reporting is on, so the server cannot start: pinned below 3.
SENTRY_SDK_VERSION=2.76.0
VENV=.venv-label-studio
PYTHON=${PYTHON:-python3}

installed() {  # The installed version of package $1, or nothing.
  "$VENV/bin/python" -c "import importlib.metadata as m, sys
print(m.version(sys.argv[1]))" "$1" 2>/dev/null || true
}
if [[ -x "$VENV/bin/label-studio" &&
      "$(installed label-studio)" == "$LABEL_STUDIO_VERSION" &&
      "$(installed sentry-sdk)" == "$SENTRY_SDK_VERSION" ]]; then
  echo "[setup] $VENV has label-studio $LABEL_STUDIO_VERSION"
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating virtualenv $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
echo "[setup] installing label-studio $LABEL_STUDIO_VERSION into $VENV" \
  "(first time: about a minute)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  "label-studio==$LABEL_STUDIO_VERSION" "sentry-sdk==$SENTRY_SDK_VERSION"
echo "[setup] $VENV ready: $VENV/bin/label-studio"
