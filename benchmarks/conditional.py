"""The three class-conditioning methods on Fashion-MNIST at one fixed CPU budget, one table.

Each method trains its shipped config (configs/fashion_mnist_cgan_{concat,projection,acgan}.yaml:
DCGAN width 32, z 64, batch 64) for the same number of steps (--steps, default 3000) on this
machine's CPU, then is evaluated with the fast protocol (domain-classifier features) against
the Fashion-MNIST test split: FID and intra-class FID on 10,000 samples with balanced classes,
conditional accuracy (the classifier's accuracy on samples of the requested classes), and the
Classification Accuracy Score (classifier trained on 60,000 generated images, tested on the
real test split) beside the same training on real images, the ceiling. The domain classifier's
own test accuracy is printed as well.

    python benchmarks/conditional.py --classifier fm-classifier.safetensors
(trains the classifier first when the file does not exist: ~8 CPU minutes)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ganforge import config as configlib
from ganforge.metrics.classifier import load_classifier
from ganforge.training.classifier import train_classifier
from ganforge.training.evaluation import evaluate_sampler
from ganforge.training.generator import load_run
from ganforge.training.loop import train

METHODS = ("concat", "projection", "acgan")
METRICS = ["fid", "ifid", "cacc", "cas"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="fm-classifier.safetensors")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--root", default="runs/bench-conditional")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--n", type=int, default=10_000, help="samples for FID/iFID/cacc")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()
    seconds = {}
    for method in args.methods.split(","):  # train first: the classifier is only for scoring
        config = configlib.load(
            f"configs/fashion_mnist_cgan_{method}.yaml",
            [f"train.steps={args.steps}", "log.progress=false"],
        )
        start = time.perf_counter()
        train(config, Path(args.root) / method, overwrite=True, progress=False)
        seconds[method] = time.perf_counter() - start
        print(f"{method}: trained in {seconds[method]:.0f} s", flush=True)
    if not Path(args.classifier).is_file():
        print(f"training the domain classifier -> {args.classifier}", flush=True)
        train_classifier("fashion-mnist", args.classifier, progress=False)
    clf = load_classifier(args.classifier)
    rows, results = [], {}
    for method, train_seconds in seconds.items():
        loaded = load_run(Path(args.root) / method)
        result = evaluate_sampler(
            loaded.sampler, loaded.config.data, against="fashion-mnist:test", metrics=METRICS,
            features=f"classifier:{args.classifier}", n=args.n, seed=0, progress=False,
        )
        results[method] = {"train_seconds": train_seconds, **result}
        rows.append((method, train_seconds, result))
        print(f"{method}: evaluated", flush=True)
    print(f"\nFashion-MNIST, {args.steps} steps x batch 64 each, CPU; classifier features "
          f"({clf.digest[:12]}, test accuracy {clf.meta['test_accuracy']:.4f}); "
          f"n = {args.n} balanced samples vs the test split; CAS on 60,000 generated images\n")
    print("| method | train s | FID | intra-FID | cond. accuracy | CAS | CAS real data |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, seconds, r in rows:
        print(f"| {method} | {seconds:.0f} | {r['fid']:.2f} | {r['ifid']:.2f} | "
              f"{100 * r['cacc']:.1f}% | {100 * r['cas']:.1f}% | {100 * r['cas_real']:.1f}% |")
    print(f"\nreal-data ceiling: the domain classifier scores "
          f"{100 * clf.meta['test_accuracy']:.1f}% on the real test split")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
