"""Inception Score exp(E_x KL(p(y|x) || p(y))) over splits, from class probabilities.

Why our own and not torchmetrics' InceptionScore: it shuffles the samples with the global RNG
before splitting (not reproducible) and reports the unbiased std, while the reference
(Salimans et al. 2016) splits in order and reports np.std (population std).
"""

from __future__ import annotations

import math

import torch

from ganforge.errors import GanforgeError


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS (mean, std over `splits` consecutive parts) of class probabilities (N, K)."""
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K); got shape {tuple(probs.shape)}")
    p = probs.detach().to(torch.float64)
    n = p.shape[0]
    if n < splits:
        raise GanforgeError(f"IS with {splits} splits needs at least {splits} samples; got {n}.")
    if (p < 0).any() or not torch.allclose(p.sum(dim=1), torch.ones(n, dtype=p.dtype), atol=1e-4):
        raise ValueError("probs rows must be probability vectors; pass softmax(logits)")
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(dim=0, keepdim=True)
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)).sum(dim=1)
        scores.append(math.exp(float(kl.mean())))
    values = torch.tensor(scores, dtype=torch.float64)
    return float(values.mean()), float(values.std(correction=0))


def inception_score_from_logits(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS (mean, std) from class logits (N, K), softmax taken in float64."""
    return inception_score(torch.softmax(logits.detach().to(torch.float64), dim=1), splits)
