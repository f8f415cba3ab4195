"""The `classifier` feature extractor: a small CNN trained on any labelled image source.

This is the fast evaluation protocol (DESIGN.md, Protocols): its penultimate layer gives
features for FID/KID/PR/DC, its softmax gives the Inception Score and class histograms. Every
result names the classifier by the SHA-256 of its file.

File format (`.safetensors`, never pickle): the network's state dict as tensors; the header
metadata holds one key, "ganforge-classifier", whose value is JSON (sorted keys) with the format
version, architecture, class names, input size and channels, normalization, the source it was
trained on, its test accuracy and the ganforge version. One key, because safetensors writes
several in arbitrary order: this way the same seed gives a byte-identical file. Writes are
atomic.

Preprocessing, the same for training data and for images to evaluate: uint8 (N, C, H, W) ->
channels matched to the classifier's (gray tiled to RGB, RGB to luma, as the data sources do) ->
antialiased bilinear resize to the input size (data.transforms.resize_square, which the folder
source also uses) -> float in [0, 1] -> per-channel (x - mean) / std of the training set.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from ganforge import __version__
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write, file_digest
from ganforge.metrics.classifier_net import ClassifierArch, ClassifierNet

FORMAT = "ganforge-classifier"
FORMAT_VERSION = 1
INPUT_SIZE = 28
DEFAULT_EPOCHS = 8
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
MAX_SHIFT = 2  # augmentation: random translation of up to this many pixels each way
HOLDOUT = 0.1  # test fraction held out of sources that have no test split (folders, arrays)
CHUNK = 512  # images per forward pass inside the extractor (bounds memory, not results)
# oneDNN picks other conv kernels for batches under ~12 images, which round differently; padding
# every forward pass to at least MIN_BATCH images keeps features bitwise batch-size independent.
MIN_BATCH = 16
LAYER = "fc1 (penultimate, post-ReLU)"
TRAIN_HINT = "train one with `ganforge train-classifier --data fashion-mnist --out PATH`"
SPLIT_SOURCES = ("fashion-mnist", "mnist")  # sources with their own test split


# ---------------------------------------------------------------------------------------------
# preprocessing


def check_images(images: torch.Tensor) -> None:
    """Raise a GanforgeError unless images is uint8 (N, 1 or 3, H, W)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GanforgeError(
            "The classifier extractor expects uint8 images (N, 1 or 3, H, W); got "
            f"{images.dtype} {tuple(images.shape)}."
        )


def to_input(images: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """uint8 images -> uint8 (N, channels, size, size), as training data and eval images."""
    check_images(images)
    return resize_square(match_channels(images, channels), size)


def normalize(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (N, C, S, S) -> float32 (x / 255 - mean) / std per channel."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x.float() / 255.0 - mean_t) / std_t


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


# ---------------------------------------------------------------------------------------------
# the extractor


@dataclass
class ClassifierExtractor:
    """A trained classifier as a FeatureExtractor: uint8 images -> (features, logits)."""

    net: ClassifierNet
    meta: dict[str, Any]
    digest: str = ""
    name: str = "classifier"
    train_seconds: float | None = None  # set by train_on_tensors; not stored in the file
    num_classes: int = field(init=False)
    description: str = field(init=False)

    def __post_init__(self) -> None:
        """Put the net in eval mode and derive the FeatureExtractor fields from it."""
        self.net.eval()
        self.num_classes = self.net.arch.num_classes
        self.description = describe(self.meta)

    @property
    def class_names(self) -> list[str]:
        """Names of the classes, in logit order."""
        return list(self.meta["class_names"])

    @property
    def feature_dim(self) -> int:
        """Length of one feature vector (the penultimate layer's width)."""
        return self.net.arch.hidden

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, C, H, W) -> (features float32 (N, F), logits float32 (N, K)), eval mode."""
        arch, norm = self.net.arch, self.meta["normalization"]
        x = to_input(images, arch.in_channels, arch.input_size)
        self.net.eval()
        features, logits = [], []
        with torch.no_grad():
            for part in x.split(CHUNK):
                f, lg = self.net(pad_batch(normalize(part, norm["mean"], norm["std"])))
                features.append(f[: len(part)])
                logits.append(lg[: len(part)])
        if not features:
            return torch.empty(0, arch.hidden), torch.empty(0, arch.num_classes)
        return torch.cat(features), torch.cat(logits)


def pad_batch(x: torch.Tensor) -> torch.Tensor:
    """x with zero images appended up to MIN_BATCH (eval mode: images do not interact)."""
    if len(x) >= MIN_BATCH:
        return x
    return torch.cat([x, x.new_zeros(MIN_BATCH - len(x), *x.shape[1:])])


def describe(meta: dict[str, Any]) -> str:
    """One line for results: layer, input size and channels, resize, training source."""
    arch = meta["arch"]
    size, channels = arch["input_size"], arch["in_channels"]
    acc = meta.get("test_accuracy")
    acc_text = f", test accuracy {acc:.4f}" if isinstance(acc, float) else ""
    return (
        f"{LAYER} {arch['hidden']}-d, {arch['num_classes']} classes; input {channels}x{size}x"
        f"{size} ({'gray tiled' if channels == 3 else 'RGB to luma'} when channels differ, "
        f"antialiased bilinear resize of the shorter side to {size}, center crop); trained on "
        f"{meta['source']}{acc_text}"
    )


def accuracy(extractor: ClassifierExtractor, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images whose argmax logit equals the label."""
    if len(x) == 0:
        return float("nan")
    _, logits = extractor(x)
    return float((logits.argmax(1) == y).double().mean())


# ---------------------------------------------------------------------------------------------
# training


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
        _, logits = net(random_shift(x[idx], MAX_SHIFT, gen))
        loss = F.cross_entropy(logits, y[idx])
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
        in_channels=x_train.shape[1], num_classes=num_classes, input_size=INPUT_SIZE
    )
    start = time.perf_counter()
    x = to_input(x_train, arch.in_channels, arch.input_size)
    mean, std = channel_stats(x)
    meta = {
        "format_version": FORMAT_VERSION,
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
        net = ClassifierNet(arch)
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
    net.eval()
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
# files


def save_classifier(extractor: ClassifierExtractor, path: str | Path) -> str:
    """Write the classifier atomically as safetensors + JSON metadata; returns its SHA-256."""
    tensors = {k: v.detach().contiguous().clone() for k, v in extractor.net.state_dict().items()}
    header = {FORMAT: json.dumps(extractor.meta, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    extractor.digest = file_digest(path)
    return extractor.digest


def not_a_classifier(path: Path, why: str) -> GanforgeError:
    """The error for a file that cannot be loaded as a classifier, with how to get one."""
    return GanforgeError(f"'{path}' is not a ganforge classifier file ({why}); {TRAIN_HINT}.")


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON metadata of a classifier file, checked for the fields loading needs."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise not_a_classifier(path, f"unreadable safetensors: {exc}") from None
    if FORMAT not in header:
        raise not_a_classifier(path, f"no '{FORMAT}' metadata")
    try:
        meta = json.loads(header[FORMAT])
    except json.JSONDecodeError:
        raise not_a_classifier(path, "its metadata is not valid JSON") from None
    check_meta(path, meta)
    return meta


def check_meta(path: Path, meta: Any) -> None:
    """Raise unless meta has a known version, an architecture, classes and normalization."""
    if not isinstance(meta, dict):
        raise not_a_classifier(path, "metadata is not a JSON object")
    version = meta.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise GanforgeError(
            f"'{path}' is a classifier file of format version {version}; this ganforge "
            f"({__version__}) reads version {FORMAT_VERSION}. Upgrade ganforge, or {TRAIN_HINT}."
        )
    needed = ("arch", "class_names", "normalization", "source")
    missing = [k for k in needed if k not in meta]
    if version != FORMAT_VERSION or missing:
        raise not_a_classifier(path, f"metadata lacks {', '.join(missing) or 'format_version'}")
    norm, arch = meta["normalization"], meta["arch"]
    channels = arch.get("in_channels") if isinstance(arch, dict) else None
    if not (
        isinstance(norm, dict)
        and len(norm.get("mean", [])) == channels
        and len(norm.get("std", [])) == channels
    ):
        raise not_a_classifier(path, "normalization does not match the input channels")
    if len(meta["class_names"]) != arch.get("num_classes"):
        raise not_a_classifier(path, "class names do not match num_classes")


def build_net(path: Path, meta: dict[str, Any]) -> ClassifierNet:
    """The network the metadata describes, with the file's weights (shapes checked)."""
    try:
        net = ClassifierNet(ClassifierArch(**meta["arch"]))
    except (TypeError, ValueError) as exc:
        raise not_a_classifier(path, f"bad architecture {meta['arch']}: {exc}") from None
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        net.load_state_dict(tensors, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise not_a_classifier(path, f"weights do not match the architecture: {exc}") from None
    return net.eval()


def load_classifier(path: str | Path) -> ClassifierExtractor:
    """A classifier file -> ClassifierExtractor; digest is the SHA-256 of the file's bytes."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"Classifier file '{path}' does not exist; {TRAIN_HINT}.")
    digest = file_digest(path)
    meta = read_meta(path)
    return ClassifierExtractor(build_net(path, meta), meta, digest=digest)


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


def labelled_image_data(source: str, split: str, data_dir: str | None, limit: int | None) -> Any:
    """A split of a source as a Dataset, checked to be labelled images."""
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset

    data = build_dataset(
        DataConfig(
            source=source,
            split=split,
            dir=data_dir,
            limit=limit,
            resolution=None if source in SPLIT_SOURCES else INPUT_SIZE,
        )
    )
    if data.kind != "image" or data.labels is None or not data.num_classes:
        raise GanforgeError(
            f"A classifier needs labelled images; source '{source}' gives "
            f"{'unlabelled ' if data.labels is None else ''}{data.kind} data. Use fashion-mnist, "
            "mnist, or folder:PATH with one subfolder per class."
        )
    return data


def load_splits(source: str, data_dir: str | None, limit: int | None, seed: int) -> tuple:
    """(x_train, y_train, x_test, y_test, num_classes, class_names) of a labelled source.

    fashion-mnist and mnist use their test split; other sources hold out 10% of each class.
    `limit` keeps the first N images of each split (of the whole source before a hold-out).
    """
    train = labelled_image_data(source, "train", data_dir, limit)
    if source in SPLIT_SOURCES:
        test = labelled_image_data(source, "test", data_dir, limit)
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
) -> dict[str, Any]:
    """Train the classifier on a labelled source and save it to `out` (atomic safetensors).

    Returns {"test_accuracy", "test_examples", "train_examples", "epochs", "train_seconds",
    "path", "sha256"}.
    """
    x_train, y_train, x_test, y_test, num_classes, names = load_splits(
        source, data_dir, limit, seed
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
    )
    digest = save_classifier(extractor, out)
    return {
        "test_accuracy": extractor.meta["test_accuracy"],
        "test_examples": len(x_test),
        "train_examples": len(x_train),
        "epochs": epochs,
        "train_seconds": round(extractor.train_seconds, 1),
        "path": str(Path(out)),
        "sha256": digest,
    }
