"""Training the `classifier` feature extractor (the extractor and its file: metrics.classifier).

Adam with linear warm-up and cosine decay, random-shift augmentation, a seeded data order; the
same seed gives a byte-identical classifier file. The training images are preprocessed exactly
as images to evaluate are (metrics.classifier.to_input), then normalized by the training set's
per-channel mean and std, which are stored in the file.

Data: fashion-mnist and mnist train on their train split and report accuracy on their test
split; other labelled sources (folder:PATH with one subfolder per class, arrays) hold out a
seeded 10% of each class.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge import __version__
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.classifier import (
    CNN_VERSION,
    LAYER,
    ClassifierExtractor,
    accuracy,
    check_images,
    describe,
    normalize,
    save_classifier,
    to_input,
)
from ganforge.metrics.classifier_net import ClassifierArch, ClassifierNet

INPUT_SIZE = 28
DEFAULT_EPOCHS = 8
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
MAX_SHIFT = 2  # augmentation: random translation of up to this many pixels each way
HOLDOUT = 0.1  # test fraction held out of sources that have no test split (folders, arrays)
SPLIT_SOURCES = ("fashion-mnist", "mnist")  # sources with their own test split


# ---------------------------------------------------------------------------------------------
# pieces


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0, 1] scale (float64 accumulation)."""
    values = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255.0
    std = values.std(dim=1).clamp_min(1e-3)
    return values.mean(dim=1).tolist(), std.tolist()


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift], edges held."""
    if max_shift == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    shifts = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    rows = (torch.arange(h) + shifts[0, :, None]).view(n, 1, h, 1)
    cols = (torch.arange(w) + shifts[1, :, None]).view(n, 1, 1, w)
    batch = torch.arange(n).view(n, 1, 1, 1)
    chans = torch.arange(c).view(1, c, 1, 1)
    return padded[batch, chans, rows, cols]


def schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def check_labelled(x: torch.Tensor, y: torch.Tensor, num_classes: int, what: str) -> None:
    """Raise a GanforgeError unless x are images with one label below num_classes each."""
    check_images(x)
    if y.ndim != 1 or len(y) != len(x):
        raise GanforgeError(f"{what}: need one label per image; got {tuple(y.shape)} labels.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise GanforgeError(f"{what}: labels must lie in [0, {num_classes}).")


# ---------------------------------------------------------------------------------------------
# training


def train_epoch(
    net: ClassifierNet,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    state: dict[str, Any],
) -> tuple[float, float]:
    """One pass over (normalized x, y) in a seeded order; returns (mean loss, accuracy)."""
    net.train()
    gen, batch_size = state["generator"], state["batch_size"]
    order = torch.randperm(len(x), generator=gen)
    loss_sum = correct = 0.0
    bar = tqdm(
        order.split(batch_size),
        desc=f"epoch {state['epoch']}",
        leave=False,
        disable=not state["progress"],
        unit="batch",
    )
    for idx in bar:
        if len(idx) < 2:  # BatchNorm needs two examples; a lone straggler is skipped
            continue
        for group in opt.param_groups:
            group["lr"] = LEARNING_RATE * schedule(state["step"], state["total"], state["warmup"])
        device = next(net.parameters()).device  # the shift stays on the CPU generator
        _, logits = net(random_shift(x[idx], MAX_SHIFT, gen).to(device))
        loss = F.cross_entropy(logits, y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["step"] += 1
        loss_sum += float(loss.detach()) * len(idx)
        correct += float((logits.argmax(1) == y[idx]).sum())
    return loss_sum / len(x), correct / len(x)


def train_on_tensors(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    num_classes: int,
    class_names: list[str] | None = None,
    source: str = "tensors",
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
    arch: ClassifierArch | None = None,
    input_size: int = INPUT_SIZE,
    device: torch.device | str = "cpu",
) -> ClassifierExtractor:
    """Train a classifier on uint8 images with int labels; the same seed gives the same weights.

    The test set only measures accuracy (stored in the result's meta); it never steers training.
    """
    check_labelled(x_train, y_train, num_classes, "training set")
    check_labelled(x_test, y_test, num_classes, "test set")
    if epochs < 1 or batch_size < 2 or len(x_train) < 2:
        raise GanforgeError(
            "Classifier training needs epochs >= 1, batch_size >= 2 and at "
            "least two training images."
        )
    arch = arch or ClassifierArch(
        in_channels=x_train.shape[1], num_classes=num_classes, input_size=input_size
    )
    if arch.final_size < 1:
        raise GanforgeError(
            f"A classifier input size of {arch.input_size} is too small for its "
            f"{len(arch.widths)} 2x2 poolings; use 28 (the default) or the run's data.resolution."
        )
    start = time.perf_counter()
    x = to_input(x_train, arch.in_channels, arch.input_size)
    mean, std = channel_stats(x)
    meta = {
        "format_version": CNN_VERSION,
        "arch": arch.to_dict(),
        "class_names": list(class_names or [str(k) for k in range(num_classes)]),
        "normalization": {"mean": mean, "std": std},
        "source": source,
        "layer": LAYER,
        "train": {
            "examples": len(x),
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "max_shift": MAX_SHIFT,
            "lr": LEARNING_RATE,
        },
        "ganforge_version": __version__,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ClassifierNet(arch).to(device)
        extractor = ClassifierExtractor(net, meta)
        fit(
            net,
            normalize(x, mean, std),
            y_train.long(),
            extractor,
            (x_test, y_test),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
        )
    net.eval().cpu()  # saved and used from the CPU; extractors move it where they run
    test_acc = accuracy(extractor, x_test, y_test.long())
    meta["test_accuracy"] = None if math.isnan(test_acc) else test_acc
    meta["test_examples"] = len(x_test)
    extractor.description = describe(meta)
    extractor.train_seconds = time.perf_counter() - start
    return extractor


def fit(
    net: ClassifierNet,
    x: torch.Tensor,
    y: torch.Tensor,
    extractor: ClassifierExtractor,
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool,
) -> None:
    """Adam with warm-up + cosine decay and random-shift augmentation; reports each epoch."""
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch
    state = {
        "generator": torch.Generator().manual_seed(seed),
        "batch_size": batch_size,
        "progress": progress,
        "step": 0,
        "total": total,
        "warmup": min(total // 10, steps_per_epoch),
        "epoch": 0,
    }
    for epoch in range(1, epochs + 1):
        state["epoch"] = epoch
        loss, train_acc = train_epoch(net, opt, x, y, state)
        if progress:
            test_acc = accuracy(extractor, *test)
            tqdm.write(
                f"epoch {epoch}/{epochs}: loss {loss:.4f}, train accuracy "
                f"{train_acc:.4f} (augmented), test accuracy {test_acc:.4f}"
            )


# ---------------------------------------------------------------------------------------------
# data sources


def holdout_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    """(train indices, test indices): a seeded, per-class `fraction` of each class held out."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in torch.unique(y).tolist():
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = round(len(idx) * fraction) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def labelled_image_data(
    source: str, split: str, data_dir: str | None, limit: int | None, size: int = INPUT_SIZE
) -> Any:
    """A split of a source as a Dataset, checked to be labelled images (folders at `size`)."""
    data = build_dataset(
        DataConfig(
            source=source,
            split=split,
            dir=data_dir,
            limit=limit,
            resolution=None if source in SPLIT_SOURCES else size,
        )
    )
    require_labelled_images(data, source)
    return data


def require_labelled_images(data: Any, source: str) -> None:
    """Raise a GanforgeError unless the Dataset `data` holds images with class labels."""
    if data.kind != "image" or data.labels is None or not data.num_classes:
        raise GanforgeError(
            f"A classifier needs labelled images; source '{source}' gives "
            f"{'unlabelled ' if data.labels is None else ''}{data.kind} data. Use fashion-mnist, "
            "mnist, or folder:PATH with one subfolder per class."
        )


def load_splits(
    source: str, data_dir: str | None, limit: int | None, seed: int, size: int = INPUT_SIZE
) -> tuple:
    """(x_train, y_train, x_test, y_test, num_classes, class_names) of a labelled source.

    fashion-mnist and mnist use their test split; other sources hold out 10% of each class.
    `limit` keeps the first N images of each split (of the whole source before a hold-out).
    """
    train = labelled_image_data(source, "train", data_dir, limit, size)
    if source in SPLIT_SOURCES:
        test = labelled_image_data(source, "test", data_dir, limit, size)
        x_test, y_test = test.x, test.labels
        x_train, y_train = train.x, train.labels
    else:
        train_idx, test_idx = holdout_split(train.labels, HOLDOUT, seed)
        x_train, y_train = train.x[train_idx], train.labels[train_idx]
        x_test, y_test = train.x[test_idx], train.labels[test_idx]
    names = train.class_names or [str(k) for k in range(train.num_classes)]
    return x_train, y_train, x_test, y_test, train.num_classes, names


def train_classifier(
    source: str,
    out: str | Path,
    *,
    data_dir: str | None = None,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 128,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    input_size: int = INPUT_SIZE,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train the classifier on a labelled source and save it to `out` (atomic safetensors).

    input_size is the side it reads: every image, in training and in evaluation, is resized to
    it. Match it to the runs it will judge (e.g. 32 for fashion-edges at data.resolution 32):
    a classifier that reads other sizes through a resize scores worse on real images too.

    Returns {"test_accuracy", "test_examples", "train_examples", "epochs", "input_size",
    "train_seconds", "path", "sha256"}.
    """
    x_train, y_train, x_test, y_test, num_classes, names = load_splits(
        source, data_dir, limit, seed, input_size
    )
    extractor = train_on_tensors(
        x_train,
        y_train,
        x_test,
        y_test,
        num_classes=num_classes,
        class_names=names,
        source=source,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        input_size=input_size,
        device=device,
    )
    digest = save_classifier(extractor, out)
    return {
        "test_accuracy": extractor.meta["test_accuracy"],
        "test_examples": len(x_test),
        "train_examples": len(x_train),
        "epochs": epochs,
        "input_size": input_size,
        "train_seconds": round(extractor.train_seconds, 1),
        "path": str(Path(out)),
        "sha256": digest,
    }
