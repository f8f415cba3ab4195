#!/usr/bin/env bash
# docs/report.png: the README's report screenshot, from a real short run. Trains the domain
# classifier (fast FID features), a short Fashion-MNIST DCGAN evaluated during training,
# writes its `ganforge report`, and renders it with headless Chromium (Debian's package).
#   bash scripts/report_screenshot.sh [WORK_DIR]     (default: runs/report-screenshot)
#   STEPS=600 bash scripts/report_screenshot.sh      (training steps; default 600)
# Needs Fashion-MNIST and chromium (scripts/setup.sh installs both where apt is usable).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/report-screenshot}
steps=${STEPS:-600}
bin=.venv/bin
mkdir -p "$work" docs

features="$work/fm-classifier.safetensors"
if [ ! -f "$features" ]; then
  "$bin/ganforge" train-classifier --data fashion-mnist --out "$features" --epochs 1
fi
"$bin/ganforge" train configs/demo.yaml --out "$work/fm-dcgan" --overwrite --no-progress \
  --set train.steps="$steps" --set train.sample_every=$((steps / 8)) \
  --set train.checkpoint_every=$((steps / 4)) --set log.every=10 \
  --set eval.every=$((steps / 4)) --set eval.metrics=[fid,kid] --set eval.n=1000 \
  --set "eval.features=classifier:$features"
"$bin/ganforge" report "$work/fm-dcgan" --out "$work/report.html" --overwrite
"$bin/python" - "$work/report.html" docs/report.png <<'EOF'
"""Render the report to a PNG; refuse a page that logged console errors."""
import sys
from pathlib import Path

from ganforge.report import browser

done = browser.screenshot(Path(sys.argv[1]), Path(sys.argv[2]), size=(1200, 3800))
if done.console:
    sys.exit("console errors:\n" + "\n".join(done.console))
from PIL import Image  # 128 colours: a third of the bytes, the same picture to the eye

Image.open(sys.argv[2]).convert("RGB").quantize(128).save(sys.argv[2], optimize=True)
print(f"Wrote {sys.argv[2]} with {browser.version()}")
EOF
