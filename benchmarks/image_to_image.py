"""L1-only U-Net vs pix2pix vs CycleGAN (unpaired) on fashion-edges at one fixed CPU budget.

Each method trains its shipped config (configs/fashion_edges_{l1,pix2pix,cyclegan}.yaml,
32x32) for the same wall-clock budget (--seconds) on one thread, one run after another: a
short probe run measures its speed, train.steps is set to what fits the budget (so the
constant-then-linear learning-rate decay completes), and the run is stopped by SIGINT if it
overruns. Every method is then scored on the first --n pairs of the fashion-edges test split
(CycleGAN's test split is paired: the truth it never saw): L1, PSNR and SSIM against the
target; FID and KID of the outputs against the real test garments and cacc, the domain
classifier's agreement with the input's class (is the garment's class preserved?), both with
domain-classifier features; CycleGAN's cycle reconstruction error. A last row gives cacc of the
true target garments: the classifier's own accuracy on real 32x32 images, the ceiling. The
classifier reads 32x32 (trained with input_size 32 when --classifier does not exist): one that
reads 28x28 through a resize recognizes fewer real garments (83.2% against 92.0% measured) and
would understate every method's cacc.

    python benchmarks/image_to_image.py --seconds 600
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import budget

COMMON = ["log.progress=false", "log.every=50", "train.sample_every=100000",
          "train.checkpoint_every=100000"]
VARIANTS = {  # name -> config
    "l1-only": "configs/fashion_edges_l1.yaml",
    "pix2pix": "configs/fashion_edges_pix2pix.yaml",
    "cyclegan": "configs/fashion_edges_cyclegan.yaml",
}
METRICS = ["l1", "psnr", "ssim", "fid", "kid", "cacc"]


def resolution(config: str) -> int:
    """data.resolution of a config file: the side the domain classifier should read."""
    from ganforge import config as configlib

    return configlib.load(config).data.resolution


def batch_size(config: str) -> int:
    """train.batch_size of a config file."""
    from ganforge import config as configlib

    return configlib.load(config).train.batch_size


def train_variant(name: str, seconds: float, root: Path, extra: list[str]) -> dict:
    """Probe, then train one method for the budget; returns its steps and seconds."""
    config = VARIANTS[name]
    sets = COMMON + [f"train.batch_size={batch_size(config)}"] + extra
    steps = budget.calibrated_steps(config, root / name, sets, seconds)
    taken = budget.train_for(config, root / name, sets + [f"train.steps={steps}"],
                             1.1 * seconds)
    return {"planned_steps": steps, "train_seconds": taken}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall time per method")
    parser.add_argument("--classifier", default="fm-classifier-32.safetensors")
    parser.add_argument("--n", type=int, default=10000, help="test pairs scored")
    parser.add_argument("--root", default="runs/bench-image-to-image")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", default="image_to_image.json")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        metavar="KEY=VALUE", help="one more override for every method")
    parser.add_argument("--eval-only", action="store_true",
                        help="score the runs already in --root (no training)")
    parser.add_argument("--input-ceiling", action="store_true",
                        help="also train the classifier's CNN on the edge maps themselves: the "
                        "share of test inputs whose class they carry (about 12 CPU minutes here)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from ganforge.training.classifier import train_classifier
    from ganforge.training.evaluation import evaluate_sampler
    from ganforge.training.generator import load_run
    from ganforge.training.loop import default_against

    if not Path(args.classifier).is_file():
        train_classifier("fashion-mnist", args.classifier, progress=False,
                         input_size=resolution(VARIANTS["pix2pix"]))
    features = f"classifier:{args.classifier}"
    names, root = args.variants.split(","), Path(args.root)
    trained = {}
    for name in names:
        if args.eval_only:
            trained[name] = {"train_seconds": json.loads(
                (root / name / "train_seconds.json").read_text())}
        else:
            trained[name] = train_variant(name, args.seconds, root, args.extra)
    print(f"\nfashion-edges 32x32, about {args.seconds:.0f} s of training each (1 thread, "
          f"CPU); {args.n} test pairs; FID/KID/cacc with {features}\n")
    print("| method | train s | steps | L1 | PSNR dB | SSIM | FID | KID x 1e3 | class kept "
          "| cycle L1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name in names:
        loaded = load_run(root / name)
        metrics = METRICS + (["cycle"] if loaded.config.task.name == "cyclegan" else [])
        against = default_against(loaded.config.data)
        r = evaluate_sampler(loaded.sampler, loaded.config.data, against=against,
                             metrics=metrics, features=features, n=args.n, seed=0,
                             progress=False)
        results[name] = {**trained[name], "steps": loaded.step, **r}
        cycle = f"{r['cycle_l1']:.4f}" if "cycle_l1" in r else "-"
        print(f"| {name} | {trained[name]['train_seconds']:.0f} | {loaded.step} | "
              f"{r['l1']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['fid']:.2f} | "
              f"{1e3 * r['kid']:.2f} | {r['cacc']:.3f} | {cycle} |", flush=True)
    results["real targets"] = ceiling(args.n, features)
    print(f"| real targets (the classifier's ceiling) | - | - | 0 | inf | 1 | 0 | 0 | "
          f"{results['real targets']['cacc']:.3f} | - |")
    if args.input_ceiling:
        results["edge maps"] = {"accuracy": input_ceiling()}
        print(f"\nthe same CNN trained on the 28x28 edge maps themselves names the class of "
              f"{results['edge maps']['accuracy']:.4f} of the test edge maps")
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def input_ceiling() -> float:
    """Test accuracy of the domain classifier's CNN and recipe trained on the edge maps (A):
    how often the input itself carries its garment's class, which no translation can add."""
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from ganforge.training.classifier import train_on_tensors

    train, test = (build_dataset(DataConfig(source="fashion-edges", split=split))
                   for split in ("train", "test"))
    extractor = train_on_tensors(train.x, train.labels, test.x, test.labels,
                                 num_classes=train.num_classes, source="fashion-edges inputs",
                                 progress=False)
    return extractor.meta["test_accuracy"]


def ceiling(n: int, features: str) -> dict:
    """cacc of the true target garments of the same test pairs: what the classifier itself
    reaches on real 32x32 images, the most any translation can score."""
    import dataclasses

    from ganforge import config as configlib
    from ganforge.data import build_dataset
    from ganforge.metrics.evaluate import evaluate
    from ganforge.training.loop import default_against

    data = configlib.load(VARIANTS["pix2pix"]).data
    against = default_against(data)
    test = build_dataset(against)
    garments = dataclasses.replace(against, direction="BtoA")
    return evaluate((test.x_b[:n], test.labels[:n]), against=garments, metrics=["cacc"],
                    features=features, n=min(n, len(test)), progress=False)


if __name__ == "__main__":
    main()
