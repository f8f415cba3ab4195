#!/usr/bin/env bash
# Install everything, then train a small DCGAN on Fashion-MNIST for a few CPU minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}
.venv/bin/ganforge train configs/demo.yaml --out "$out"
.venv/bin/ganforge sample "$out" -n 64 --out "$out/final-samples.png"
echo
echo "Demo done. Look at:"
echo "  $out/samples/        sample grids during training (fixed noise)"
echo "  $out/losses.png      loss curves"
echo "  $out/checkpoints/    checkpoints (resume with: ganforge train --resume $out --set train.steps=3000)"
