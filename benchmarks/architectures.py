"""DCGAN vs progressive growing vs a style-based G on Fashion-MNIST at 32x32, equal wall time.

Each architecture trains its shipped config (data.resolution=32, batch 64; widths below) for
the same wall-clock budget (--seconds): `ganforge train` runs as a child process with one
thread, and is sent SIGINT when the budget is spent, so it stops after the current step and
saves its checkpoint (the loop's Ctrl-C path). The runs go one after another, never side by
side, so each has the same machine. The final generator (the EMA copy where the config has
one) is then scored with the fast protocol: domain-classifier features (a file made by
`ganforge train-classifier`, trained first when missing), --n samples against the 32x32 test
split: FID, KID, precision and recall (k = 3). Pass --features inception on a GPU machine.

    python benchmarks/architectures.py --seconds 600 --n 5000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import budget

SIZE = ["data.resolution=32", "log.progress=false", "log.every=50", "train.steps=1000000",
        "train.sample_every=100000", "train.checkpoint_every=100000"]
VARIANTS: dict[str, tuple[str, list[str]]] = {  # name -> (config, overrides)
    "dcgan": ("configs/fashion_mnist_dcgan.yaml",
              ["model.g_width=32", "model.d_width=32", "model.z_dim=64"]),
    "progressive": ("configs/fashion_mnist_progressive.yaml",
                    ["model.g_width=8", "model.d_width=8", "model.phase_images=12000"]),
    "style": ("configs/fashion_mnist_style.yaml", ["model.g_width=8", "model.d_width=8"]),
}
METRICS = ["fid", "kid", "pr"]


def train_for(name: str, seconds: float, root: Path, extra: list[str]) -> float:
    """Train variant `name` (plus `extra` overrides) for `seconds` of wall time."""
    config, overrides = VARIANTS[name]
    return budget.train_for(config, root / name, SIZE + overrides + extra, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall time per variant")
    parser.add_argument("--classifier", default="fm-classifier.safetensors")
    parser.add_argument("--features", default=None, help="default: classifier:--classifier")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--root", default="runs/bench-architectures")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", default="architectures.json")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        metavar="KEY=VALUE", help="one more override for every variant")
    parser.add_argument("--eval-only", action="store_true",
                        help="score the runs already in --root (no training)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from ganforge.training.classifier import train_classifier
    from ganforge.training.evaluation import evaluate_sampler
    from ganforge.training.generator import load_run
    from ganforge.training.loop import default_against

    features = args.features or f"classifier:{args.classifier}"
    if features.startswith("classifier:") and not Path(args.classifier).is_file():
        train_classifier("fashion-mnist", args.classifier, progress=False)
    names = args.variants.split(",")
    root = Path(args.root)
    if args.eval_only:
        trained = {n: json.loads((root / n / "train_seconds.json").read_text()) for n in names}
    else:
        trained = {name: train_for(name, args.seconds, root, args.extra) for name in names}
    seconds_each = max(trained.values())
    print(f"\nFashion-MNIST 32x32, {seconds_each:.0f} s of training each (1 thread, CPU); "
          f"features {features}; n = {args.n} vs the test split\n")
    print("| arch | widths | train s | steps | images | FID | KID x 1e3 | precision | recall |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name in names:
        loaded = load_run(Path(args.root) / name)
        against = default_against(loaded.config.data)  # the test split at 32x32
        r = evaluate_sampler(loaded.sampler, loaded.config.data, against=against,
                             metrics=METRICS, features=features, n=args.n, seed=0,
                             progress=False)
        seconds, steps = trained[name], loaded.step
        m = loaded.config.model
        results[name] = {"train_seconds": seconds, "steps": steps, **r}
        print(f"| {name} | G {m.g_width} / D {m.d_width} | {seconds:.0f} | {steps} | "
              f"{steps * loaded.config.train.batch_size} | {r['fid']:.2f} | "
              f"{1e3 * r['kid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} |", flush=True)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
