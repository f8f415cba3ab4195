"""Sanity table for the metrics: Fashion-MNIST train vs test and uniform noise vs test, per
feature extractor (FID, KID, precision, recall), plus each extractor's features per second.

Real-vs-real should score near the floor (FID small, precision and recall near 1); noise should
score far worse. Usage:
    python benchmarks/eval_sanity.py --n 1000 --extractors inception
    python benchmarks/eval_sanity.py --n 10000 --extractors classifier --classifier clf.safetensors
Inception runs at about 5 images/s on a laptop CPU: 10k vs 10k takes hours there.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import evaluate, load_extractor
from ganforge.metrics.extract import extract
from ganforge.metrics.targets import fake_from_target

METRICS = ["fid", "kid", "pr"]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per side")
    parser.add_argument("--extractors", default="inception,classifier")
    parser.add_argument("--classifier", default=None, help="classifier weights (classifier:PATH)")
    parser.add_argument("--inception", default=None, help="Inception TorchScript path")
    parser.add_argument("--source", default="fashion-mnist")
    parser.add_argument("--speed-n", type=int, default=64, help="images timed for features/s")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args()


def feature_spec(name: str, args: argparse.Namespace) -> str | None:
    """'inception[:PATH]' or 'classifier:PATH'; None when the classifier path is missing."""
    if name == "inception":
        return f"inception:{args.inception}" if args.inception else "inception"
    if name == "classifier":
        return f"classifier:{args.classifier}" if args.classifier else None
    raise SystemExit(f"unknown extractor {name}")


def features_per_second(spec: str, images: torch.Tensor, args: argparse.Namespace) -> float:
    """Throughput of one extractor on `images` (one warm-up batch not timed)."""
    extractor = load_extractor(spec, args.device)
    extract(extractor, images[: args.batch_size], args.batch_size)
    start = time.perf_counter()
    extract(extractor, images, args.batch_size)
    return images.shape[0] / (time.perf_counter() - start)


def uniform_noise(shape: tuple[int, ...]):
    """A sampler of uniform random pixels of the given (C, H, W) shape."""

    def sample(n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed + 12345)
        return torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)

    sample.description = "uniform noise"  # type: ignore[attr-defined]
    return sample


def main() -> None:
    """Run every comparison for every extractor and print one table."""
    args = parse_args()
    against = f"{args.source}:test"
    train = fake_from_target(f"real:{args.source}:train")
    speed_images = train(args.speed_n, args.seed)
    rows, speeds, notes = [], [], []
    for name in [e.strip() for e in args.extractors.split(",") if e.strip()]:
        spec = feature_spec(name, args)
        if spec is None:
            notes.append(f"{name}: skipped (no --classifier PATH given)")
            continue
        try:
            speeds.append((name, features_per_second(spec, speed_images, args)))
        except GanforgeError as exc:
            notes.append(f"{name}: skipped ({exc})")
            continue
        for label, fake in (
            ("train vs test", train),
            ("noise vs test", uniform_noise(tuple(speed_images.shape[1:]))),
        ):
            start = time.perf_counter()
            result = evaluate(
                fake,
                against,
                METRICS,
                spec,
                n=args.n,
                seed=args.seed,
                batch_size=args.batch_size,
                cache_dir=args.cache_dir,
                progress=not args.no_progress,
                device=args.device,
            )
            rows.append((name, label, result, time.perf_counter() - start))
    print_table(args, rows, speeds, notes)


def print_table(args, rows, speeds, notes) -> None:
    """The measured table, with the protocol of each extractor."""
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"\neval_sanity: {args.source}, n = {args.n} per side, seed {args.seed}, {machine}")
    header = f"{'extractor':<11} {'comparison':<14} {'FID':>10} {'KID':>19} {'precision':>9} "
    print(header + f"{'recall':>7} {'time s':>7}")
    for name, label, r, seconds in rows:
        kid_text = f"{r['kid']:.5f}±{r['kid_std']:.5f}"
        print(
            f"{name:<11} {label:<14} {r['fid']:>10.3f} {kid_text:>19} {r['precision']:>9.3f} "
            f"{r['recall']:>7.3f} {seconds:>7.0f}"
        )
    print()
    for name, speed in speeds:
        print(f"{name:<11} features/s on {args.device}: {speed:.1f} (batch {args.batch_size})")
    seen = set()
    for name, _, r, _ in rows:
        if name in seen:
            continue
        seen.add(name)
        p = r["protocol"]
        print(f"{name:<11} sha256 {p['features']['digest'][:16]}; resize {p['resize']}")
        print(f"{'':<11} real: {p['real_selection']}; KID {p['params']['kid']}")
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
