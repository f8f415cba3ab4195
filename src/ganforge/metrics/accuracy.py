"""Classification accuracy of a classifier on labelled real data (the semi-supervised GAN's
product is its D as a classifier, measured like any classifier)."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def classification_scores(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """accuracy (argmax == label, over all N) and errors (the count of wrong ones)."""
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.shape[0]:
        raise GanforgeError(
            f"accuracy needs (N, K) probabilities for N labels; got {tuple(probabilities.shape)} "
            f"for {labels.shape[0]} labels."
        )
    if labels.shape[0] == 0:
        raise GanforgeError("accuracy needs at least one labelled example; the split is empty.")
    wrong = int((probabilities.argmax(dim=1) != labels.to(probabilities.device)).sum())
    return {"accuracy": 1.0 - wrong / labels.shape[0], "errors": float(wrong)}
