"""Latent walks: spherical interpolation between noise vectors (`ganforge sample --interpolate`).

slerp (Shoemake 1985; for GAN latents White 2016, "Sampling Generative Networks") moves along
the great circle between two latents, so the intermediate codes keep the norm a Gaussian latent
typically has; a straight line through the middle of a high-dimensional Gaussian passes points
of atypically small norm, which G has rarely seen.
"""

from __future__ import annotations

import math

import torch

PARALLEL = 1e-6  # below this sin(angle), the two latents are parallel: interpolate linearly


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points at fractions t (T,) of the way from a to b (each (D,)) along the great circle,
    with the norm interpolated linearly between |a| and |b|: (T, D)."""
    na, nb = a.norm(), b.norm()
    cos = torch.clamp(torch.dot(a / na, b / nb), -1.0, 1.0)
    angle = torch.arccos(cos)
    t = t.to(a.dtype)[:, None]
    if math.sin(float(angle)) < PARALLEL:
        return (1 - t) * a + t * b
    sin = torch.sin(angle)
    unit = (torch.sin((1 - t) * angle) * a / na + torch.sin(t * angle) * b / nb) / sin
    return unit * ((1 - t) * na + t * nb)


def walks(starts: torch.Tensor, ends: torch.Tensor, steps: int) -> torch.Tensor:
    """For each row i, `steps` latents from starts[i] to ends[i] (both included):
    (rows * steps, D), row by row."""
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    t = torch.linspace(0.0, 1.0, steps, dtype=starts.dtype)
    return torch.cat([slerp(a, b, t) for a, b in zip(starts, ends, strict=True)])
