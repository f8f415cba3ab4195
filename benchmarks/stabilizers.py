"""DCGAN on Fashion-MNIST with and without stabilizers, at one fixed CPU budget, one table.

Every variant trains configs/fashion_mnist_dcgan.yaml at width 32 (z 64, batch 64) for the same
number of steps (--steps) with its overrides, then its final generator (the EMA copy where EMA
is on) is evaluated with the fast protocol: domain-classifier features (a file made by
`ganforge train-classifier`, trained first when missing), --n samples against the test split:
FID, KID, precision and recall (k = 3). Inception features are the standard protocol but run at
about 5 images/s on this CPU; pass --features inception on a GPU machine.

    python benchmarks/stabilizers.py --classifier fm-classifier.safetensors --steps 3000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BASE = ["model.g_width=32", "model.d_width=32", "model.z_dim=64", "log.progress=false"]
VARIANTS: dict[str, list[str]] = {
    "dcgan": [],
    "+ spectral norm": ["model.spectral_norm=d"],
    "+ EMA": ["stabilize.ema=0.999"],
    "+ DiffAugment": ["stabilize.diffaugment=[color,translation,cutout]"],
    "resnet (SNGAN)": ["model.arch=resnet", "model.spectral_norm=d", "loss.name=hinge",
                       "optim.betas=[0.0, 0.9]"],
}
METRICS = ["fid", "kid", "pr"]


def train_one(job: tuple[str, list[str], str, int]) -> tuple[str, float]:
    """Train one variant in a worker process (one thread); returns (name, seconds)."""
    name, overrides, root, steps = job
    import torch

    torch.set_num_threads(1)
    from ganforge import config as configlib
    from ganforge.training.loop import train

    config = configlib.load("configs/fashion_mnist_dcgan.yaml",
                            [*BASE, *overrides, f"train.steps={steps}"])
    start = time.perf_counter()
    train(config, Path(root) / slug(name), overwrite=True, progress=False)
    return name, time.perf_counter() - start


def slug(name: str) -> str:
    """A folder name for a variant."""
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="fm-classifier.safetensors")
    parser.add_argument("--features", default=None, help="default: classifier:--classifier")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--root", default="runs/bench-stabilizers")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", default="stabilizers.json")
    args = parser.parse_args()
    names = args.variants.split(",")
    jobs = [(name, VARIANTS[name], args.root, args.steps) for name in names]
    with ProcessPoolExecutor(args.jobs) as pool:
        seconds = dict(pool.map(train_one, jobs))
    from ganforge.training.classifier import train_classifier
    from ganforge.training.evaluation import evaluate_sampler
    from ganforge.training.generator import load_run

    features = args.features or f"classifier:{args.classifier}"
    if features.startswith("classifier:") and not Path(args.classifier).is_file():
        train_classifier("fashion-mnist", args.classifier, progress=False)
    results = {}
    print(f"\nFashion-MNIST, DCGAN width 32, {args.steps} steps x batch 64, CPU; features "
          f"{features}; n = {args.n} vs the test split\n")
    print("| variant | train s | FID | KID x 1e3 | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        loaded = load_run(Path(args.root) / slug(name))
        r = evaluate_sampler(loaded.sampler, loaded.config.data, against="fashion-mnist:test",
                             metrics=METRICS, features=features, n=args.n, seed=0,
                             progress=False)
        results[name] = {"train_seconds": seconds[name], **r}
        print(f"| {name} | {seconds[name]:.0f} | {r['fid']:.2f} | {1e3 * r['kid']:.2f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} |", flush=True)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
