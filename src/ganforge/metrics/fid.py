"""Fréchet distance between Gaussians fitted to two feature sets (FID), in float64.

Why our own and not torchmetrics' FrechetInceptionDistance: that metric is a stateful module that
runs its own extractor on images, while we need a pure function on cached reference statistics.
Its math (trace of sqrt(S1 S2) via eigenvalues) is the standard definition; tests cross-check
our value against it and against scipy.linalg.sqrtm.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError

# Largest tolerated "imaginary part" of sqrt(S1 S2), as in the reference implementation
# (TTUR / pytorch-fid raise when the imaginary component of sqrtm exceeds 1e-3).
IMAGINARY_TOLERANCE = 1e-3


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (float64) of features (N, D); N >= 2."""
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D); got shape {tuple(features.shape)}")
    n = features.shape[0]
    if n < 2:
        raise GanforgeError(
            f"FID needs at least 2 samples per side to estimate a covariance; got {n}. "
            "Raise --n (the standard protocol uses 10,000)."
        )
    x = features.detach().to(torch.float64)
    mu = x.mean(dim=0)
    centered = x - mu
    sigma = centered.T @ centered / (n - 1)
    return mu, sigma


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix via eigh (round-off negatives -> 0)."""
    sym = (matrix + matrix.T) / 2
    eigvals, eigvecs = torch.linalg.eigh(sym)
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """tr(sqrt(S1 S2)) computed stably as tr(sqrt(R S2 R)) with R = sqrt(S1).

    S1 S2 is similar to R S2 R, which is symmetric PSD: its eigenvalues are real and
    non-negative, so no complex sqrtm (and no eps-offset retry) is needed even when S1 or S2 is
    singular (fewer samples than dimensions). Round-off negatives play the role of the
    reference's imaginary part: tolerated up to IMAGINARY_TOLERANCE, else an error.
    """
    s1 = sigma1.to(torch.float64)
    s2 = sigma2.to(torch.float64)
    root = _psd_sqrt(s1)
    middle = root @ s2 @ root
    eigvals = torch.linalg.eigvalsh((middle + middle.T) / 2)
    imaginary = eigvals.clamp(max=0).abs().sqrt().max()
    if imaginary > IMAGINARY_TOLERANCE:
        raise ValueError(
            f"sqrt(S1 S2) has an imaginary component {float(imaginary):.3g}: "
            "a covariance matrix is not positive semi-definite"
        )
    return eigvals.clamp(min=0).sqrt().sum()


def fid_from_stats(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet distance ||mu1-mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) of two Gaussians."""
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    sigma1, sigma2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: mu {tuple(mu1.shape)} vs {tuple(mu2.shape)}, "
            f"sigma {tuple(sigma1.shape)} vs {tuple(sigma2.shape)}"
        )
    diff = mu1 - mu2
    covariance_term = sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + covariance_term)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets (N, D) and (M, D)."""
    return fid_from_stats(*feature_stats(real), *feature_stats(fake))
