"""The six adversarial losses side by side: one short DCGAN run each on Fashion-MNIST, scored
with the same protocol (classifier features, test split, same n and seed).

Short CPU runs rank how fast each loss gets going, not where it converges; pass --steps and
--width for longer runs. Prints a table and writes RUN_ROOT/losses.json.

    python benchmarks/loss_comparison.py --classifier fm.safetensors --steps 1500 --width 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ganforge import config as configlib
from ganforge.losses import LOSSES
from ganforge.metrics.evaluate import evaluate
from ganforge.training.generator import load_run
from ganforge.training.loop import default_against, train


def config_for(loss: str) -> Path:
    """The shipped config of a loss."""
    suffix = "" if loss == "non-saturating" else "_" + loss.replace("-", "_")
    return Path(__file__).parent.parent / "configs" / f"fashion_mnist_dcgan{suffix}.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", required=True, help="classifier .safetensors")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--losses", default=",".join(tuple(LOSSES)))
    parser.add_argument("--root", default="runs/loss_comparison")
    args = parser.parse_args()
    rows = []
    for loss in args.losses.split(","):
        overrides = [f"train.steps={args.steps}", f"model.g_width={args.width}",
                     f"model.d_width={args.width}", "log.progress=false",
                     f"train.checkpoint_every={args.steps}", f"train.sample_every={args.steps}"]
        config = configlib.load(config_for(loss), overrides)
        start = time.perf_counter()
        train(config, Path(args.root) / loss, overwrite=True, progress=False)
        seconds = time.perf_counter() - start
        loaded = load_run(Path(args.root) / loss)
        result = evaluate(loaded.sampler.eval_fn(), default_against(config.data),
                          ["fid", "kid", "pr"], f"classifier:{args.classifier}", n=args.n,
                          progress=False)
        rows.append({"loss": loss, "train_s": seconds, **{k: v for k, v in result.items()
                                                          if k != "protocol"}})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.root).mkdir(parents=True, exist_ok=True)
    (Path(args.root) / "losses.json").write_text(json.dumps(rows, indent=2))
    print(f"\nDCGAN width {args.width}, {args.steps} steps, Fashion-MNIST; classifier features, "
          f"n={args.n} vs test split")
    print("| loss | train s | FID | KID | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['loss']} | {r['train_s']:.0f} | {r['fid']:.2f} | {r['kid']:.3f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} |")


if __name__ == "__main__":
    main()
