"""A semi-supervised run's D as a classifier: label image files (`ganforge classify`) and
write D as a classifier file for `--features classifier:PATH` (`ganforge export-classifier`).

classify: INPUT is one image file or a folder of them (not recursive; .png .jpg .jpeg .webp
.bmp, any case, hidden names skipped, sorted by name). Each image is decoded as the folder data
source decodes it (gray stays one channel, RGBA and palette images become RGB) and must have
the run's (channels, height, width); with resize=True other images are converted the way the
data sources convert them (gray tiled to RGB, RGB to luma; antialiased bilinear resize of the
shorter side, then a center crop). The CSV has one row per image: its name relative to INPUT,
the predicted class (argmax of D's K class logits), its index and the K probabilities
p(class | x, x real), the softmax of those logits.

export-classifier: a classifier file of format version 2 (metrics/classifier.py) holding D's
state dict and what rebuilds D (the run's task, config and data description).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganforge import __version__
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_text
from ganforge.inputs import check_out, fit_images, list_images, read_image, shape_text
from ganforge.tasks.semi_supervised import DClassifier
from ganforge.training.generator import LoadedRun, load_run

DECIMALS = 6  # probabilities in the CSV


@dataclass
class Classified:
    """What `classify_images` wrote: the rows' predictions and how many images it converted."""

    out: Path
    files: list[str]
    predicted: torch.Tensor  # (N,) class indices
    probabilities: torch.Tensor  # (N, K)
    class_names: list[str]
    step: int
    converted: int = 0
    target_shape: tuple[int, ...] = field(default_factory=tuple)
    warnings: list[str] = field(default_factory=list)  # one line each, for the CLI to print

    def counts(self) -> dict[str, int]:
        """Images per predicted class, every class listed (in class order)."""
        tally = Counter(self.predicted.tolist())
        return {name: tally.get(k, 0) for k, name in enumerate(self.class_names)}


# ---------------------------------------------------------------------------------------------
# the run


def load_classifier_run(
    target: str | Path, verb: str, device: torch.device | str = "cpu"
) -> tuple[LoadedRun, DClassifier]:
    """A semi-supervised run of image data and its D as a DClassifier; clear errors otherwise
    (the task itself refuses D's that look across the batch: packing, minibatch features)."""
    loaded = load_run(target, device)
    classifier = getattr(loaded.sampler, "classifier", None)
    if classifier is None:
        task = loaded.meta.get("task", loaded.config.task.name)
        raise GanforgeError(
            f"'{target}' is a run of task '{task}', whose D does not classify. `ganforge {verb}` "
            "needs a semi-supervised run: train one with --set task.name=semi-supervised "
            "(e.g. `ganforge train configs/mnist_ssgan.yaml`)."
        )
    info = classifier.info
    if info.kind != "image":
        raise GanforgeError(
            f"`ganforge {verb}` works on images, but '{target}' was trained on vector data "
            f"('{info.name}', {tuple(info.shape)}). Score vectors with `ganforge eval {target} "
            "--against SOURCE --metrics accuracy`, or call the run's "
            "sampler.classifier.probabilities(vectors) from Python."
        )
    return loaded, classifier


# ---------------------------------------------------------------------------------------------
# classify


def write_csv(out: Path, names: list[str], class_names: list[str], predicted: torch.Tensor,
              probabilities: torch.Tensor) -> None:
    """The CSV: file, class, class_index, p_<class> per class; one row per image."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "class", "class_index", *(f"p_{name}" for name in class_names)])
    for name, k, probs in zip(names, predicted.tolist(), probabilities.tolist(), strict=True):
        writer.writerow([name, class_names[k], k, *(f"{p:.{DECIMALS}f}" for p in probs)])
    atomic_write_text(out, buffer.getvalue())


def classify_images(
    target: str | Path, source: str | Path, out: str | Path, *, overwrite: bool = False,
    resize: bool = False, device: torch.device | str = "cpu",
) -> Classified:
    """`ganforge classify`: classify INPUT's images with a semi-supervised run's D; write a CSV."""
    out = check_out(out, overwrite)
    files, names = list_images(source)
    loaded, classifier = load_classifier_run(target, "classify", device)
    shape = tuple(classifier.info.shape)
    images = [read_image(path, name) for path, name in zip(files, names, strict=True)]
    x, converted = fit_images(images, names, shape, resize)
    probabilities = classifier.probabilities(x)
    predicted = probabilities.argmax(1)
    write_csv(out, names, classifier.class_names, predicted, probabilities)
    result = Classified(out, names, predicted, probabilities, classifier.class_names,
                        loaded.step, converted, shape)
    if converted:
        result.warnings.append(
            f"converted {converted} of {len(names)} images to the run's {shape_text(shape)} "
            f"(channels matched, shorter side resized to {shape[1]}, center crop)"
        )
    return result


# ---------------------------------------------------------------------------------------------
# export-classifier


def classifier_meta(loaded: LoadedRun, classifier: DClassifier) -> dict[str, Any]:
    """The classifier-file metadata (format version 2) of a semi-supervised run's D."""
    from ganforge.metrics.classifier import FORMAT_VERSION

    channels, height, _ = classifier.info.shape
    return {
        "format_version": FORMAT_VERSION,
        "arch": {
            "in_channels": int(channels), "num_classes": classifier.num_classes,
            "input_size": int(height), "hidden": int(classifier.D.feature_dim),
        },
        "class_names": classifier.class_names,
        "normalization": {"mean": [0.5] * channels, "std": [0.5] * channels},
        "source": classifier.info.name,
        "test_accuracy": None,
        "discriminator": {
            "task": loaded.meta.get("task", loaded.config.task.name),
            "config": loaded.config.to_dict(),
            "data": loaded.meta["data"],
            "step": loaded.step,
        },
        "ganforge_version": __version__,
    }


def export_classifier(
    target: str | Path, out: str | Path, *, overwrite: bool = False
) -> tuple[Path, dict[str, Any], str]:
    """`ganforge export-classifier`: write D as a classifier file; (path, metadata, SHA-256)."""
    from ganforge.metrics.classifier import discriminator_net, write_classifier_file

    out = check_out(out, overwrite)
    loaded, classifier = load_classifier_run(target, "export-classifier")
    _, height, width = classifier.info.shape
    if height != width:
        raise GanforgeError(
            f"A classifier file reads square images, but '{target}' was trained on "
            f"{height}x{width} images; classify them with `ganforge classify` instead."
        )
    meta = classifier_meta(loaded, classifier)
    tensors = {k: v.detach().cpu() for k, v in classifier.D.state_dict().items()}
    discriminator_net(out, meta, tensors)  # what loading will rebuild: check before writing
    return out, meta, write_classifier_file(tensors, meta, out)
