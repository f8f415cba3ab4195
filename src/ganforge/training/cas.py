"""Classification Accuracy Score (Ravuri & Vinyals 2019): train on generated, test on real.

A classifier is trained only on a conditional generator's images, labelled with the classes
they were generated for, and its accuracy is measured on the real test split. A generator that
draws the wrong class, or too little of each class's variety, scores low even when its images
look real. The same architecture, epochs, seed and number of images trained on the REAL training
set give the ceiling, `cas_real`; it depends on no generator, so it is cached (JSON under the
user cache folder, keyed by everything it depends on, the real pixels included).

It trains a classifier, so it lives in training/ (metrics never imports training).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganforge import __version__
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data.paths import user_cache_dir
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_json
from ganforge.metrics.classifier import read_meta
from ganforge.metrics.classifier_net import ClassifierArch
from ganforge.metrics.refstats import tensor_digest
from ganforge.training import classifier as trainer

# Epochs of classifier training on the generated (and on the real) set. Measured on the 2-core
# CPU this was written on (shared with other jobs): one epoch over 60,000 Fashion-MNIST images
# costs 109 s of CPU on one thread, so about 60 s wall on 2 idle threads, plus 8 s to classify
# the 10,000 test images; one epoch already reaches 0.87 test accuracy. With 2 epochs a CAS
# takes about 2 minutes, plus 2 more once for the real ceiling, which is then cached.
CAS_EPOCHS = 2
BATCH_SIZE = 128
CACHE_FORMAT = 1

# fake_labelled(labels, seed) -> uint8 images (N, C, H, W), one per requested label
LabelledSampler = Callable[[torch.Tensor, int], torch.Tensor]


def class_counts(train_counts: list[int], n: int) -> list[int]:
    """Images per class for n generated images: the training set's own counts when n is its
    size, else proportional to them (floors, then the largest remainders, lower class first)."""
    total = sum(train_counts)
    floors = [c * n // total for c in train_counts]
    remainders = [c * n % total for c in train_counts]
    order = sorted(range(len(train_counts)), key=lambda k: (-remainders[k], k))
    for k in order[: n - sum(floors)]:
        floors[k] += 1
    return floors


def requested_labels(counts: list[int], seed: int) -> torch.Tensor:
    """int64 labels with counts[k] of class k, in an order shuffled with `seed`."""
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def real_for_labels(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Real images matching `labels` position by position: the i-th request of class k gets
    the i-th image of class k in the dataset's order (so n < N uses each class's first ones)."""
    picked = torch.empty_like(labels)
    for k in labels.unique().tolist():
        where = torch.nonzero(labels == k).flatten()
        picked[where] = torch.nonzero(y == k).flatten()[: len(where)]
    return x[picked]


def _labelled(config: DataConfig) -> Any:
    """A Dataset of labelled images for `config`, or a GanforgeError saying how to get one."""
    data = build_dataset(config)
    trainer.require_labelled_images(data, config.source)
    return data


def _arch(
    arch: ClassifierArch | str | Path | None, channels: int, classes: int, side: int
) -> Any:
    """The architecture to train: given, read from a classifier file, or the default one,
    which reads the images at their own size (side), so CAS judges what G made, unresized."""
    if arch is None:
        return ClassifierArch(in_channels=channels, num_classes=classes, input_size=side)
    if not isinstance(arch, ClassifierArch):
        arch = ClassifierArch(**read_meta(Path(arch))["arch"])
    if arch.num_classes != classes:
        raise GanforgeError(
            f"The CAS classifier architecture has {arch.num_classes} classes but the data has "
            f"{classes}; give an architecture (or classifier file) for this data's classes."
        )
    return arch


def _data_key(config: DataConfig) -> dict[str, Any]:
    """The parts of a DataConfig that choose the examples (the pixel digest covers the rest)."""
    fields = ("source", "split", "resolution", "channels", "limit")
    return {k: v for k, v in dataclasses.asdict(config).items() if k in fields}


def _cache_path(key: dict[str, Any], cache_dir: str | Path | None) -> Path:
    """Where the real-ceiling entry for key lives: cas/<hash of the key>.json."""
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "cas"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return folder / f"real-{digest}.json"


def _cached_real(key: dict[str, Any], path: Path) -> float | None:
    """The cached real-ceiling accuracy for key, or None when absent, stale or unreadable."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        value = entry["cas_real"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = entry.get("key") == key and isinstance(value, float) and math.isfinite(value)
    return value if ok else None


def _train_and_test(x: torch.Tensor, y: torch.Tensor, test: Any, what: str, **kwargs: Any) -> float:
    """Test accuracy of the classifier trained on (x, y) (`what` images) on the real test set."""
    extractor = trainer.train_on_tensors(
        x,
        y,
        test.x,
        test.labels,
        num_classes=test.num_classes,
        source=f"cas: {what}",
        batch_size=BATCH_SIZE,
        **kwargs,
    )
    return float(extractor.meta["test_accuracy"])


def classification_accuracy_score(
    fake: LabelledSampler,
    against: DataConfig,
    *,
    train_source: DataConfig,
    arch: ClassifierArch | str | Path | None = None,
    epochs: int = CAS_EPOCHS,
    seed: int = 0,
    n: int | None = None,
    progress: bool = False,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """CAS of a conditional generator: accuracy on the real `against` split of a classifier
    trained only on generated images, and the same for real training images (`cas_real`).

    fake: fake_labelled(labels, seed) -> uint8 images (N, C, H, W), one image generated for
    each requested class in `labels` (int64 (N,)), in the same order; called once with all n
    labels and `seed`. An optional `description` attribute names it in the protocol.
    train_source: the real training data (labelled images; the generator's training set).
    n: generated training images, default the size of train_source; per-class counts equal
    the training set's (proportional to them when n differs), shuffled with `seed`. The real
    ceiling trains on n real images of the same counts (at most the training set's size).
    arch: a ClassifierArch, a classifier file whose architecture to use, or None for the
    default one (train_on_tensors' default for the data's channels and classes, reading the
    images at the training data's own resolution).
    Returns {"cas", "cas_real", "protocol"}; cas_real is cached under cache_dir (default:
    the user cache folder, cas/).
    """
    train, test = _labelled(train_source), _labelled(against)
    if test.num_classes != train.num_classes:
        raise GanforgeError(
            f"CAS trains on {train_source.source} ({train.num_classes} classes) and tests on "
            f"{against.source} ({test.num_classes}); use the same classes on both sides."
        )
    total = len(train.labels)
    n = total if n is None else n
    if not 2 <= n <= total:
        raise GanforgeError(
            f"CAS needs 2 <= n <= {total} (the real training set's size, which the real "
            f"ceiling trains on); got n={n}."
        )
    classes = train.num_classes
    counts = class_counts(torch.bincount(train.labels, minlength=classes).tolist(), n)
    labels = requested_labels(counts, seed)
    arch = _arch(arch, train.x.shape[1], classes, train.x.shape[-1])
    common = {"epochs": epochs, "seed": seed, "progress": progress, "arch": arch}

    fake_x = fake(labels, seed)
    if not isinstance(fake_x, torch.Tensor) or fake_x.shape[:1] != labels.shape:
        raise GanforgeError(
            f"fake_labelled(labels, seed) must return one uint8 image per label ({n}); got "
            f"{type(fake_x).__name__} {tuple(getattr(fake_x, 'shape', ()))}."
        )
    real_x = real_for_labels(train.x, train.labels, labels)
    key = {
        "format": CACHE_FORMAT,
        "train_source": _data_key(train_source),
        "against": _data_key(against),
        "n": n,
        "epochs": epochs,
        "seed": seed,
        "arch": arch.to_dict(),
        "batch_size": BATCH_SIZE,
        "train_pixels_sha256": tensor_digest(real_x),
        "train_labels_sha256": tensor_digest(labels),
        "test_pixels_sha256": tensor_digest(test.x),
        "test_labels_sha256": tensor_digest(test.labels),
        "ganforge": __version__,
        "torch": torch.__version__,
    }
    path = _cache_path(key, cache_dir)
    cas_real, cache_status = _cached_real(key, path), "hit"
    if cas_real is None:
        cas_real, cache_status = _train_and_test(real_x, labels, test, "real", **common), "miss"
        atomic_write_json(path, {"key": key, "cas_real": cas_real})
    description = getattr(fake, "description", "generator")
    cas = _train_and_test(fake_x.detach().cpu(), labels, test, description, **common)
    balance = "the training set's per-class counts" + (
        "" if n == total else f", scaled to n={n} (largest remainder)"
    )
    protocol = {
        "fake": description,
        "classifier": {
            "arch": arch.to_dict(),
            "batch_size": BATCH_SIZE,
            "lr": trainer.LEARNING_RATE,
        },
        "epochs": epochs,
        "n_train": n,
        "label_balance": f"{balance}, shuffled with seed {seed}",
        "label_counts": counts,
        "train_source": _data_key(train_source),
        "test": {**_data_key(against), "n": len(test.labels)},
        "seed": seed,
        "real_ceiling": f"same classifier on {n} real training images; cache {cache_status}",
    }
    return {"cas": cas, "cas_real": cas_real, "protocol": protocol}
