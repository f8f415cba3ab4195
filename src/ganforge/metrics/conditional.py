"""Metrics of class-conditional generators as pure functions of predictions and features.

- conditional accuracy: does a classifier see the class that was asked for? Per class, the
  fraction of samples requested as class k whose classifier argmax is k; the reported mean is
  the mean of those per-class values over the classes that have samples (so a rare class counts
  as much as a common one). With balanced labels (n/K per class) it equals the plain fraction
  of correct samples.
- intra-class FID (Miyato & Koyama 2018, cGANs with projection discriminator): the FID of each
  class's fake features against the same class's real features, averaged over classes. Unlike
  the FID of the whole set it sees a generator that draws good images of the wrong class.

The end of the module holds what the evaluation driver needs around them: the label checks with
their messages, and both metrics computed by name.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.fid import feature_stats, fid_from_stats

MIN_PER_CLASS = 2  # a covariance needs two samples
NEEDS_LABELS = ("cacc", "ifid")  # the metric names (evaluate) that need requested labels


def check_labels(labels: torch.Tensor, count: int, num_classes: int, what: str) -> None:
    """Raise a GanforgeError unless labels are `count` integer classes in [0, num_classes)."""
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.ndim != 1:
        raise GanforgeError(
            f"{what} must be integer classes of shape (N,); got {labels.dtype} "
            f"{tuple(labels.shape)}."
        )
    if labels.shape[0] != count:
        raise GanforgeError(f"{what}: got {labels.shape[0]} labels for {count} samples.")
    if count and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise GanforgeError(
            f"{what} must lie in [0, {num_classes}); got classes {int(labels.min())} to "
            f"{int(labels.max())}. Use a classifier / reference with the generator's classes."
        )


def conditional_accuracy(
    predicted: torch.Tensor, requested: torch.Tensor, num_classes: int
) -> dict[str, Any]:
    """Accuracy of predicted classes (N,) against the requested classes (N,).

    Returns {"cacc": mean of the per-class accuracies over classes that have samples,
    "cacc_per_class": list of K accuracies, NaN for a class with no samples}.
    """
    check_labels(requested, requested.shape[0], num_classes, "requested labels")
    check_labels(predicted, requested.shape[0], num_classes, "predicted classes")
    predicted, requested = predicted.long(), requested.long()
    correct = (predicted == requested).double()
    totals = torch.bincount(requested, minlength=num_classes).double()
    hits = torch.bincount(requested, weights=correct, minlength=num_classes)
    per_class = torch.where(totals > 0, hits / totals.clamp_min(1), float("nan"))
    present = per_class[totals > 0]
    mean = float(present.mean()) if len(present) else float("nan")
    return {"cacc": mean, "cacc_per_class": per_class.tolist()}


def intra_fid(
    real_feats: torch.Tensor,
    real_labels: torch.Tensor,
    fake_feats: torch.Tensor,
    fake_labels: torch.Tensor,
    num_classes: int,
) -> dict[str, Any]:
    """Per-class FID of fake vs real features of the same class, and its mean over classes.

    Every class needs at least two samples on each side (a covariance per class); otherwise a
    GanforgeError names the class. Returns {"ifid": mean, "ifid_per_class": list of K FIDs}.
    """
    check_labels(real_labels, real_feats.shape[0], num_classes, "real labels")
    check_labels(fake_labels, fake_feats.shape[0], num_classes, "fake labels")
    real_labels, fake_labels = real_labels.long(), fake_labels.long()
    real_counts = torch.bincount(real_labels, minlength=num_classes).tolist()
    fake_counts = torch.bincount(fake_labels, minlength=num_classes).tolist()
    for k in range(num_classes):
        if min(real_counts[k], fake_counts[k]) < MIN_PER_CLASS:
            raise GanforgeError(
                f"Intra-class FID needs at least {MIN_PER_CLASS} samples of every class on "
                f"each side; class {k} has {real_counts[k]} real and {fake_counts[k]} fake. "
                "Raise --n (it is split across the classes)."
            )
    per_class = [
        fid_from_stats(
            *feature_stats(real_feats[real_labels == k]),
            *feature_stats(fake_feats[fake_labels == k]),
        )
        for k in range(num_classes)
    ]
    mean = math.fsum(per_class) / num_classes if num_classes else float("nan")
    return {"ifid": mean, "ifid_per_class": per_class}


# ---------------------------------------------------------------------------------------------
# for the evaluation driver (metrics.evaluate): label checks and both metrics by name


def require_fake_labels(metrics: list[str], labels: torch.Tensor | None) -> None:
    """Raise a GanforgeError when a conditional metric is asked for unlabelled samples."""
    asked = [m for m in metrics if m in NEEDS_LABELS]
    if asked and labels is None:
        raise GanforgeError(
            f"Metric(s) {', '.join(asked)} need samples with labels (the class each was "
            "generated for), but the target gave unlabelled samples. Evaluate a "
            "class-conditional run (trained with task.name=conditional), or give a sampler "
            "that returns (samples, labels)."
        )


def require_real_labels(
    metrics: list[str], labels: torch.Tensor | None, name: str, note: str | None = None
) -> None:
    """Raise a GanforgeError when intra-class FID is asked against an unlabelled reference."""
    if "ifid" in metrics and labels is None:
        raise GanforgeError(
            f"Metric 'ifid' (intra-class FID) needs class labels in the reference {name}, "
            "but it has none"
            + (f" ({note})" if note else "")
            + ". Evaluate against a labelled source: fashion-mnist, mnist, or folder:PATH "
            "with one subfolder per class."
        )


def conditional_metrics(
    metrics: list[str],
    real_feats: torch.Tensor | None,
    fake_feats: torch.Tensor,
    fake_logits: torch.Tensor | None,
    real_labels: torch.Tensor | None,
    fake_labels: torch.Tensor | None,
    num_classes: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, parameters) of the asked conditional metrics: "cacc" from the classifier's
    logits (K = their width) and "ifid" with `num_classes` (default: max real label + 1)."""
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    if "cacc" in metrics and fake_logits is not None and fake_labels is not None:
        classes = fake_logits.shape[1]
        values.update(conditional_accuracy(fake_logits.argmax(1), fake_labels, classes))
        params["cacc"] = {"classes": classes, "mean": "over classes with samples"}
    if "ifid" in metrics and real_feats is not None:
        if real_labels is None or fake_labels is None:
            raise GanforgeError("Intra-class FID needs real and fake labels.")
        classes = num_classes or int(real_labels.max()) + 1
        values.update(intra_fid(real_feats, real_labels, fake_feats, fake_labels, classes))
        params["ifid"] = {
            "classes": classes,
            "min_real_per_class": int(torch.bincount(real_labels, minlength=classes).min()),
            "min_fake_per_class": int(torch.bincount(fake_labels, minlength=classes).min()),
        }
    return values, params
