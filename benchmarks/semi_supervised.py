"""Semi-supervised GAN against supervised-only on the same labels: test accuracy of D.

Settings (each a shipped config and a labelled budget): MNIST with 10 labels per class on the
offline 5,000-digit subset (4,000 train, all of them used unlabelled, and a held-out 1,000 as
the test split; make it with benchmarks/mnist_5k_to_idx.py and pass --mnist-dir), and
Fashion-MNIST with 10 and 100 labels per class (60,000 unlabelled, 10,000 test). For every
setting and seed both methods train the same D on the same labelled subset (drawn from the seed)
with the same augmentation and number of steps; "supervised" is the config with
loss.unsupervised_weight=0 (D learns from the labelled batches alone; G is not trained).
"--methods ssgan,supervised,all-labels" adds a reference: the same D supervised on every
training label (400 per class on the MNIST subset, 6,000 on Fashion-MNIST): what the
few-label methods would reach with every label, at the same budget.

Reported, mean ± std over seeds: test accuracy of the final D (no selection on the test split),
and the best accuracy over the in-training evaluations, which is chosen on the test split and so
optimistic (a run keeps that checkpoint as best.*); the gap in points. Runs go in parallel, one
thread each (--jobs); every result is also written as JSON.

    python benchmarks/mnist_5k_to_idx.py ~/data/mnist5k/mnist
    python benchmarks/semi_supervised.py --mnist-dir ~/data/mnist5k --seeds 3 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from stats import add_seed_arguments, mean_std, seed_range

SETTINGS: dict[str, tuple[str, int, int]] = {  # name -> (config, labels, all labels) per class
    "mnist5k-10": ("configs/mnist_ssgan.yaml", 10, 400),
    "fmnist-10": ("configs/fashion_mnist_ssgan.yaml", 10, 6000),
    "fmnist-100": ("configs/fashion_mnist_ssgan.yaml", 100, 6000),
}
SUPERVISED = ["loss.unsupervised_weight=0"]
# all-labels: the same D supervised on every training label, a reference for the other two
METHODS: dict[str, list[str]] = {"ssgan": [], "supervised": SUPERVISED, "all-labels": SUPERVISED}
FLOORS = {"mnist5k-10": "ssgan >= 97%", "fmnist-10": "ssgan >= supervised + 10 points"}


def run_one(job: tuple[str, str, int, list[str], str]) -> dict:
    """Train one (setting, method, seed); read final and best test accuracy from its log."""
    setting, method, seed, overrides, root = job
    import torch

    torch.set_num_threads(1)
    from ganforge import config as configlib
    from ganforge.training.logger import read_metrics
    from ganforge.training.loop import train

    path, per_class, every_label = SETTINGS[setting]
    per_class = every_label if method == "all-labels" else per_class
    sets = [f"train.seed={seed}", f"data.labels_per_class={per_class}", "log.progress=false",
            *METHODS[method], *overrides]
    config = configlib.load(path, sets)
    out = Path(root) / setting / method / f"seed{seed}"
    start = time.perf_counter()
    train(config, out, overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    evals = [r for r in read_metrics(out / "metrics.jsonl") if "eval/accuracy" in r]
    final = evals[-1]
    return {"setting": setting, "method": method, "seed": seed, "seconds": seconds,
            "steps": final["step"], "final": final["eval/accuracy"],
            "errors": final["eval/errors"], "best": max(r["eval/accuracy"] for r in evals)}


def table(results: list[dict]) -> str:
    """One markdown table: each setting's methods side by side, and the gap."""
    header = ("| setting | method | seeds | steps | final test accuracy % | best-on-test % "
              "(optimistic) | test errors | s/run |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        finals = {}
        for method in METHODS:
            rows = [r for r in results if r["setting"] == setting and r["method"] == method]
            if not rows:
                continue
            finals[method] = statistics.fmean(r["final"] for r in rows)
            errors = statistics.fmean(r["errors"] for r in rows)
            seconds = statistics.fmean(r["seconds"] for r in rows)
            lines.append(
                f"| {setting} | {method} | {len(rows)} | {rows[0]['steps']} | "
                f"{mean_std([r['final'] for r in rows], 2, 100)} | "
                f"{mean_std([r['best'] for r in rows], 2, 100)} | {errors:.0f} | {seconds:.0f} |"
            )
        if {"ssgan", "supervised"} <= finals.keys():
            gap = 100 * (finals["ssgan"] - finals["supervised"])
            floor = FLOORS.get(setting, "")
            lines.append(f"| {setting} | gap | | | {gap:+.2f} points | | {floor} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--methods", default="ssgan,supervised", help=", ".join(METHODS))
    add_seed_arguments(parser, default=3)
    parser.add_argument("--steps", type=int, help="override train.steps")
    parser.add_argument("--mnist-dir", help="data.dir holding mnist/ (mnist_5k_to_idx.py)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--set", action="append", default=[], help="extra override, all runs")
    parser.add_argument("--root", default="runs/bench-semi-supervised")
    parser.add_argument("--json", default="semi_supervised.json")
    parser.add_argument("--table", help="only print the table of an earlier --json file")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    settings, methods = args.settings.split(","), args.methods.split(",")
    unknown = [s for s in settings if s not in SETTINGS] + [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown setting or method {unknown}")
    if any(s.startswith("mnist") for s in settings) and not args.mnist_dir:
        parser.error("the MNIST setting needs --mnist-dir (see benchmarks/mnist_5k_to_idx.py)")
    jobs = []
    for setting in settings:
        extra = list(args.set) + ([f"train.steps={args.steps}"] if args.steps else [])
        if setting.startswith("mnist"):
            extra.append(f"data.dir={args.mnist_dir}")
        jobs += [(setting, m, s, extra, args.root) for s in seed_range(args) for m in methods]
    results = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run_one, jobs):
            results.append(row)
            print(json.dumps(row), flush=True)
            Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
