"""The `classifier` feature extractor: a small CNN trained on any labelled image source.

This is the fast evaluation protocol (DESIGN.md, Protocols): its penultimate layer gives
features for FID/KID/PR/DC, its softmax gives the Inception Score and class histograms. Every
result names the classifier by the SHA-256 of its file. This module is the extractor, its
preprocessing and its file format; training it lives in ganforge.training.classifier.

File format (`.safetensors`, never pickle): the network's state dict as tensors; the header
metadata holds one key, "ganforge-classifier", whose value is JSON (sorted keys) with the format
version, architecture, class names, input size and channels, normalization, the source it was
trained on, its test accuracy and the ganforge version. One key, because safetensors writes
several in arbitrary order: this way the same seed gives a byte-identical file. Writes are
atomic.

Versions: 1 is the CNN above. 2 adds a second kind, a semi-supervised run's discriminator
(`ganforge export-classifier`): its metadata has a "discriminator" entry (the run's task, config
and data description) from which D is rebuilt, the tensors are D's state dict, the features are
D's penultimate features and the logits its K class logits; normalization mean = std = 0.5 maps
[0, 1] to D's [-1, 1]. A version-2 file without that entry is the CNN. Readers load 1 and 2.

Preprocessing, the same for training data and for images to evaluate: uint8 (N, C, H, W) ->
channels matched to the classifier's (gray tiled to RGB, RGB to luma, as the data sources do) ->
antialiased bilinear resize to the input size (data.transforms.resize_square, which the folder
source also uses) -> float in [0, 1] -> per-channel (x - mean) / std of the training set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ganforge import __version__
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write, file_digest
from ganforge.metrics.classifier_net import ClassifierArch, ClassifierNet

FORMAT = "ganforge-classifier"
FORMAT_VERSION = 2  # the newest version this ganforge reads and writes
READABLE_VERSIONS = (1, 2)
CNN_VERSION = 1  # CNN files stay at version 1, so older ganforge versions still read them
DISCRIMINATOR_VERSION = 2  # the first version with discriminator classifiers
ARCH_KEYS = ("in_channels", "num_classes", "input_size", "hidden")  # a D file's arch entry
CHUNK = 512  # images per forward pass inside the extractor (bounds memory, not results)
# oneDNN picks other conv kernels for batches under ~12 images, which round differently; padding
# every forward pass to at least MIN_BATCH images keeps features bitwise batch-size independent.
MIN_BATCH = 16
LAYER = "fc1 (penultimate, post-ReLU)"
D_LAYER = "semi-supervised D's penultimate features"
TRAIN_HINT = "train one with `ganforge train-classifier --data fashion-mnist --out PATH`"


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


# ---------------------------------------------------------------------------------------------
# the extractor


@dataclass
class ClassifierExtractor:
    """A trained classifier as a FeatureExtractor: uint8 images -> (features, logits)."""

    net: ClassifierNet | DiscriminatorClassifier
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
    def input_size(self) -> int:
        """Side of the square images the net reads; others are resized (the protocol says so)."""
        return self.net.arch.input_size

    resize_note = "antialiased bilinear"

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
        device = next(self.net.parameters()).device
        with torch.no_grad():
            for part in x.split(CHUNK):
                batch = pad_batch(normalize(part, norm["mean"], norm["std"])).to(device)
                f, lg = self.net(batch)
                features.append(f[: len(part)].cpu())
                logits.append(lg[: len(part)].cpu())
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
    disc = meta["discriminator"] if is_discriminator(meta) else None
    if disc is not None and "step" in disc:
        acc_text += f" (task {disc.get('task')}, step {disc['step']})"
    layer = D_LAYER if disc is not None else LAYER
    return (
        f"{layer} {arch['hidden']}-d, {arch['num_classes']} classes; input {channels}x{size}x"
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
# files


def write_classifier_file(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any], path: str | Path
) -> str:
    """Write tensors + JSON metadata (one header key) atomically; returns the file's SHA-256."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    header = {FORMAT: json.dumps(meta, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    return file_digest(path)


def save_classifier(extractor: ClassifierExtractor, path: str | Path) -> str:
    """Write the classifier atomically as safetensors + JSON metadata; returns its SHA-256."""
    extractor.digest = write_classifier_file(extractor.net.state_dict(), extractor.meta, path)
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
            f"({__version__}) reads versions up to {FORMAT_VERSION}. Upgrade ganforge, or "
            f"{TRAIN_HINT}."
        )
    needed = ("arch", "class_names", "normalization", "source")
    missing = [k for k in needed if k not in meta]
    if version not in READABLE_VERSIONS or missing:
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
    if is_discriminator(meta):
        check_discriminator(path, meta)


def is_discriminator(meta: dict[str, Any]) -> bool:
    """Whether metadata describes a run's D (version 2+ with a discriminator entry)."""
    version = meta.get("format_version")
    return isinstance(version, int) and version >= DISCRIMINATOR_VERSION and (
        "discriminator" in meta
    )


def check_discriminator(path: Path, meta: dict[str, Any]) -> None:
    """Raise unless a discriminator entry is complete, with an all-integer architecture."""
    disc = meta["discriminator"]
    keys = ("task", "config", "data")
    if not isinstance(disc, dict) or any(k not in disc for k in keys):
        raise not_a_classifier(path, f"its discriminator entry lacks one of {', '.join(keys)}")
    arch = meta["arch"]
    if not all(isinstance(arch.get(k), int) for k in ARCH_KEYS):
        raise not_a_classifier(path, f"bad architecture {arch}")


class DiscriminatorClassifier(nn.Module):
    """A semi-supervised run's D as the extractor's net: x in [-1, 1] -> (features, K logits).

    D is a ClassLogitDiscriminator (nets/semi.py), possibly under spectral or weight norm
    parametrizations, which keep its `features` and `head`; a k+1 D's fake logit is dropped.
    """

    def __init__(self, D: nn.Module, arch: ClassifierArch) -> None:
        super().__init__()
        self.D, self.arch = D, arch

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (N, C, S, S) in [-1, 1] -> (penultimate features (N, F), class logits (N, K))."""
        features = self.D.features(x)
        return features, self.D.head(features)[:, : self.arch.num_classes]


def discriminator_net(
    path: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> DiscriminatorClassifier:
    """Rebuild the D a version-2 discriminator file describes and load its tensors (strict)."""
    from ganforge import tasks
    from ganforge.config import from_dict
    from ganforge.data.dataset import DataInfo

    disc, arch = meta["discriminator"], meta["arch"]
    try:
        info = DataInfo.from_meta(disc["data"])
        config = from_dict(disc["config"])
        with torch.random.fork_rng(devices=[]):  # building draws init weights: leave no trace
            D = tasks.get(disc["task"]).build_nets(config, info)[1]
    except (GanforgeError, KeyError, TypeError, ValueError) as exc:
        raise not_a_classifier(path, f"cannot rebuild its discriminator: {exc}") from None
    head = getattr(D, "head", None)
    if not (hasattr(D, "features") and isinstance(head, nn.Linear)):
        raise not_a_classifier(path, f"task '{disc['task']}' has no classifying D")
    expected = {
        "in_channels": info.shape[0] if info.kind == "image" else None,
        "input_size": info.shape[-1] if info.kind == "image" else None,
        "hidden": getattr(D, "feature_dim", None),
    }
    bad = [k for k, v in expected.items() if arch[k] != v]
    if bad or head.out_features < arch["num_classes"]:
        raise not_a_classifier(
            path, f"its architecture {arch} does not match the discriminator it describes"
        )
    try:
        D.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise not_a_classifier(path, f"weights do not match the discriminator: {exc}") from None
    # the extractor reads only ARCH_KEYS; widths and dropout describe no layer of D
    shape = ClassifierArch(**{k: arch[k] for k in ARCH_KEYS}, widths=[], dropout=0.0)
    net = DiscriminatorClassifier(D, shape)
    return net.eval()


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file."""
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118


def build_net(path: Path, meta: dict[str, Any]) -> ClassifierNet | DiscriminatorClassifier:
    """The network the metadata describes, with the file's weights (shapes checked)."""
    if is_discriminator(meta):
        try:
            tensors = read_tensors(path)
        except (SafetensorError, OSError) as exc:
            raise not_a_classifier(path, f"unreadable tensors: {exc}") from None
        return discriminator_net(path, meta, tensors)
    try:
        net = ClassifierNet(ClassifierArch(**meta["arch"]))
    except (TypeError, ValueError) as exc:
        raise not_a_classifier(path, f"bad architecture {meta['arch']}: {exc}") from None
    try:
        net.load_state_dict(read_tensors(path), strict=True)
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
