"""Mode-collapse metrics: 2D Gaussian mixtures (PacGAN protocol) and class modes through a
classifier, including the Stacked MNIST form (three classified channels, 1,000 modes).
"""

from __future__ import annotations

import math

import torch

from ganforge.errors import GanforgeError


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) in nats of the histogram p = counts / sum(counts) over len(counts) bins.

    Empty bins contribute 0 (0 log 0 = 0); NaN when the histogram is empty (undefined).
    """
    counts = counts.to(torch.float64)
    total = counts.sum()
    if total <= 0:
        return math.nan
    p = counts / total
    return float(torch.special.xlogy(p, p * counts.numel()).sum())


def mode_metrics_2d(
    samples: torch.Tensor, centers: torch.Tensor, sigma: float, threshold: float = 3.0
) -> dict[str, float]:
    """PacGAN/VEEGAN mode metrics of 2D samples (N, 2) against mixture centers (K, 2).

    Each sample goes to its nearest center (Euclidean); it is high quality when that distance
    is below threshold * sigma (strict <, as PacGAN's code). Returns
      modes_covered: modes with at least one high-quality sample;
      modes_total:   K;
      hq_percent:    100 * share of samples that are high quality;
      modes_kl:      the "reverse KL" KL(p || uniform), p the histogram of the high-quality
                     samples over the K modes (NaN when no sample is high quality);
      mode_histogram: that histogram, high-quality samples per mode (a list of K ints).
    """
    if samples.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise GanforgeError(
            f"2D mode metrics need samples of shape (N, {centers.shape[1]}); "
            f"got {tuple(samples.shape)}."
        )
    if samples.shape[0] < 1:
        raise GanforgeError("mode metrics need at least one sample.")
    distances = torch.cdist(samples.to(torch.float64), centers.to(torch.float64))
    nearest_distance, nearest = distances.min(dim=1)
    high_quality = nearest_distance < threshold * sigma
    counts = torch.bincount(nearest[high_quality], minlength=centers.shape[0])
    return {
        "modes_covered": int((counts > 0).sum()),
        "modes_total": int(centers.shape[0]),
        "hq_percent": 100.0 * float(high_quality.to(torch.float64).mean()),
        "modes_kl": kl_to_uniform(counts),
        "mode_histogram": counts.tolist(),
    }


def class_mode_metrics(predictions: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Modes covered, KL(histogram || uniform) and the histogram of predicted classes (N,)."""
    predictions = predictions.reshape(-1).long()
    if predictions.numel() < 1:
        raise GanforgeError("mode metrics need at least one sample.")
    if predictions.min() < 0 or predictions.max() >= num_classes:
        raise ValueError(f"class predictions must lie in [0, {num_classes})")
    counts = torch.bincount(predictions, minlength=num_classes)
    return {
        "modes_covered": int((counts > 0).sum()),
        "modes_total": int(num_classes),
        "modes_kl": kl_to_uniform(counts),
        "mode_histogram": counts.tolist(),
    }


def stacked_mode_metrics(channel_predictions: torch.Tensor, num_classes: int = 10) -> dict:
    """Stacked MNIST modes: per-channel classes (N, C) -> one of num_classes**C modes.

    With 3 channels of digits the mode of a sample is 100 * d0 + 10 * d1 + d2 (1,000 modes);
    returns class_mode_metrics over those modes.
    """
    if channel_predictions.ndim != 2:
        raise ValueError("channel_predictions must be (N, C)")
    if channel_predictions.min() < 0 or channel_predictions.max() >= num_classes:
        raise ValueError(f"channel predictions must lie in [0, {num_classes})")
    channels = channel_predictions.shape[1]
    weights = num_classes ** torch.arange(channels - 1, -1, -1)
    modes = (channel_predictions.long() * weights).sum(dim=1)
    return class_mode_metrics(modes, num_classes**channels)
