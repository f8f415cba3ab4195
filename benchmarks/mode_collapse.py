"""Mode collapse on the 2D mixtures and Stacked MNIST: the vanilla GAN against each remedy.

For each mixture (ring8: 8 Gaussians on the unit circle, sigma 0.01; grid25: 25 Gaussians at
{-4,-2,0,2,4}^2, sigma 0.05) and each variant, trains the vanilla config
(configs/{ring8,grid25}_vanilla.yaml) with the variant's overrides for every seed, draws 2,500
samples from the final G and reports, as mean +- std over seeds (DESIGN.md, Protocols):
modes covered (a mode is covered by a sample within 3 sigma), % high-quality samples (within
3 sigma of the nearest mode) and the reverse KL of the high-quality mode histogram to uniform.
The PacGAN paper's rows (Lin et al. 2018, Table 1) are printed beside them, and so is the
data's own score (its samples scored the same way: the ceiling, and the floor of the KL that
a finite sample leaves). Runs go in parallel, one thread each (--jobs); every result is also
written as JSON. --seeds 0 scores the data alone.

    python benchmarks/mode_collapse.py --mixtures ring8,grid25 --seeds 10 --jobs 2

`stacked-mnist` (1,000 modes: three MNIST digits as R, G, B) trains
configs/fashion_mnist_dcgan.yaml on it (60,000 stacks, so every mode is in the data) with the
variant's overrides, and counts the modes of 26,000 samples with a digit classifier, one channel
at a time (the PacGAN/VEEGAN protocol; "vanilla" is DCGAN, "pacgan2" PacDCGAN2). --mnist-dir is
a folder with MNIST's IDX files (offline: benchmarks/mnist_5k_to_idx.py); the classifier is
trained there first when --mnist-classifier does not exist. High quality is not defined there.

    python benchmarks/mode_collapse.py --mixtures stacked-mnist --variants vanilla,pacgan2 \
        --mnist-dir DATA --seeds 1 --steps 3000 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from stats import add_seed_arguments, mean_std, seed_range

# remedy name -> overrides on the vanilla config (each one key, as a user would switch it on)
VARIANTS: dict[str, list[str]] = {
    "vanilla": [],
    "pacgan2": ["model.pack=2"],
    "pacgan4": ["model.pack=4"],
    "mbstd": ["model.mbstd_group=4"],
    "minibatch-disc": ["model.minibatch_disc=32"],
    "feature-matching": ["loss.feature_matching=1"],
    "instance-noise": ["stabilize.instance_noise=0.1"],
    "replay": ["stabilize.replay=0.5"],
    "r1": ["loss.r1_gamma=0.1"],
    "spectral-norm": ["model.spectral_norm=d"],
    "shipped": [],  # configs/{ring8,grid25}.yaml as shipped (batch 2048, 24k steps; grid25 PacGAN2)
}
# Lin et al. 2018 (PacGAN), Tables 1 and 3: modes, % high quality, reverse KL
PAPER = {
    "ring8": {"GAN": (6.3, 98.2, 0.45), "PacGAN4": (7.8, 95.9, 0.07)},
    "grid25": {"GAN": (17.3, 94.8, 0.70), "PacGAN4": (24.8, 93.6, 0.04)},
    "stacked-mnist": {"DCGAN": (99.0, "-", 3.40), "PacDCGAN2": (1000.0, "-", 0.06)},
}
STACKED = "stacked-mnist"
DATA = "data"  # the row that scores samples of the data itself
STACKED_DATA = ["data.source=stacked-mnist", "data.limit=60000"]  # every mode in the data


def row(job: dict, seconds: float, result: dict) -> dict:
    """One JSON result row of a job."""
    return {"mixture": job["mixture"], "variant": job["variant"], "seed": job["seed"],
            "seconds": seconds, "modes": result["modes_covered"],
            "total": result["modes_total"], "hq": result.get("hq_percent", math.nan),
            "kl": result["modes_kl"]}


def score_data(job: dict) -> dict:
    """The ceiling: the protocol's scoring applied to samples of the data itself (2,500 points
    of the mixture; 26,000 stacks of held-out test digits for Stacked MNIST)."""
    import torch

    torch.set_num_threads(1)
    from ganforge import config as configlib
    from ganforge.data import build_dataset
    from ganforge.metrics.evaluate import DEFAULT_N, STACKED_N, evaluate

    stacked = job["mixture"] == STACKED
    n = STACKED_N if stacked else DEFAULT_N["vector"]  # the protocol's sample sizes
    sets = ([f"data.source={STACKED}", f"data.limit={n}", f"data.dir={job['mnist_dir']}",
             "data.split=test"] if stacked else [f"data.source={job['mixture']}"])
    data = configlib.load(None, sets).data
    x = build_dataset(data).x
    drawn = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]]
    scoring = ({"features": f"classifier:{job['classifier']}", "against": data} if stacked
               else {"against": job["mixture"]})
    return row(job, 0.0, evaluate(drawn, metrics=["modes"], n=n, progress=False, **scoring))


def run_one(job: dict) -> dict:
    """Train one (mixture, variant, seed) and score its final G; runs in a worker process."""
    mixture, variant, seed = job["mixture"], job["variant"], job["seed"]
    if variant == DATA:
        return score_data(job)
    stacked = mixture == STACKED
    if stacked:
        name = "fashion_mnist_dcgan"
    else:
        name = mixture if variant == "shipped" else f"{mixture}_vanilla"
    import torch

    torch.set_num_threads(1)
    from ganforge import config as configlib
    from ganforge.training.evaluation import evaluate_sampler
    from ganforge.training.generator import load_run
    from ganforge.training.loop import default_against, train

    sets = [f"train.seed={seed}", "log.progress=false", *job["overrides"]]
    if stacked:
        sets += [*STACKED_DATA, f"data.dir={job['mnist_dir']}"]
    if job["steps"]:
        sets.append(f"train.steps={job['steps']}")
    config = configlib.load(f"configs/{name}.yaml", sets)
    out = Path(job["root"]) / mixture / variant / f"seed{seed}"
    start = time.perf_counter()
    train(config, out, overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    loaded = load_run(out)
    scoring = ({"features": f"classifier:{job['classifier']}",
                "against": default_against(loaded.config.data)} if stacked
               else {"against": mixture, "n": 2500})
    result = evaluate_sampler(
        loaded.sampler, loaded.config.data, metrics=["modes"], seed=seed, progress=False,
        **scoring,
    )
    return row(job, seconds, result)


def summary(rows: list[dict]) -> tuple[str, str, str, str]:
    """'mean +- std' of modes, hq, kl over seeds, and 'k/n' seeds with every mode and hq."""

    def fmt(key: str, digits: int) -> str:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        if not values:
            return "-"  # e.g. high quality on Stacked MNIST, where it is not defined
        return mean_std(values, digits)

    full = sum(r["modes"] == r["total"] for r in rows)
    return fmt("modes", 1), fmt("hq", 1), fmt("kl", 3), f"{full}/{len(rows)}"


def table(results: list[dict], mixture: str) -> str:
    """One markdown table: our variants, then the paper's rows."""
    n = "26,000" if mixture == STACKED else "2,500"
    lines = [f"### {mixture} ({n} samples per run; mean ± std over seeds)",
             "| variant | seeds | modes | % high quality | reverse KL | all modes | s/run |",
             "|---|---|---|---|---|---|---|"]
    for variant in [*VARIANTS, DATA]:
        rows = [r for r in results if r["mixture"] == mixture and r["variant"] == variant]
        if rows:
            seconds = statistics.fmean(r["seconds"] for r in rows)
            cells = " | ".join(summary(rows))
            name, took = ("the data itself", "") if variant == DATA else (variant, f"{seconds:.0f}")
            lines.append(f"| {name} | {len(rows)} | {cells} | {took} |")
    for name, (modes, hq, kl) in PAPER[mixture].items():
        lines.append(f"| paper: {name} | | {modes} | {hq} | {kl} | | |")
    return "\n".join(lines)


def prepare_stacked(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stacked MNIST needs MNIST's files and a digit classifier: check one, train the other."""
    if not args.mnist_dir:
        parser.error("stacked-mnist needs --mnist-dir (benchmarks/mnist_5k_to_idx.py DIR/mnist)")
    if not Path(args.mnist_classifier).is_file():
        from ganforge.training.classifier import train_classifier

        train_classifier("mnist", args.mnist_classifier, data_dir=args.mnist_dir, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixtures", default="ring8,grid25")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    add_seed_arguments(parser, default=10)
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--set", action="append", default=[], help="extra override, all runs")
    parser.add_argument("--root", default="runs/bench-mode-collapse")
    parser.add_argument("--json", default="mode_collapse.json")
    parser.add_argument("--table", help="only print the tables of an earlier --json file")
    parser.add_argument("--mnist-dir", help="stacked-mnist: folder with MNIST's IDX files")
    parser.add_argument("--mnist-classifier", default="mnist-classifier.safetensors",
                        help="stacked-mnist: digit classifier (trained on --mnist-dir if absent)")
    args = parser.parse_args()
    mixtures, variants = args.mixtures.split(","), args.variants.split(",")
    if args.table:
        results = json.loads(Path(args.table).read_text())
        print("\n\n".join(table(results, m) for m in mixtures))
        return
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choices: {', '.join(VARIANTS)}")
    if STACKED in mixtures:
        prepare_stacked(parser, args)
    runs = [(v, s) for v in variants for s in seed_range(args)]
    jobs = [{"mixture": m, "variant": v, "seed": s, "overrides": VARIANTS.get(v, []) + args.set,
             "root": args.root, "steps": args.steps, "mnist_dir": args.mnist_dir,
             "classifier": args.mnist_classifier}
            for m in mixtures for v, s in [(DATA, 0), *runs]]
    results = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run_one, jobs):
            results.append(row)
            print(json.dumps(row), flush=True)
            Path(args.json).write_text(json.dumps(results, indent=1))
    for mixture in mixtures:
        print()
        print(table(results, mixture))


if __name__ == "__main__":
    main()
