"""Fake and real samples as the metric drivers take them: seeded selection of rows, samplers
that return samples or (samples, labels), and shape checks with messages that say the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ganforge.errors import GanforgeError

Sampler = Callable[[int, int], Any]  # fake(n, seed) -> samples, or (samples, labels)
Labelled = tuple[torch.Tensor, torch.Tensor]


def select_indices(available: int, n: int, seed: int, what: str) -> tuple[torch.Tensor, str]:
    """(sorted row indices, description): all rows when n == available, else n rows drawn
    without replacement with `seed`. Index images and their labels with the same indices."""
    if n > available:
        raise GanforgeError(
            f"{what} has only {available} samples; ask for at most --n {available}."
        )
    if n == available:
        return torch.arange(available), f"all {available}"
    idx = torch.randperm(available, generator=torch.Generator().manual_seed(seed))[:n]
    return idx.sort().values, f"random {n} of {available} (seed {seed})"


def select(x: torch.Tensor, n: int, seed: int, what: str) -> tuple[torch.Tensor, str]:
    """All of x when n == len(x), else n rows drawn without replacement with `seed`."""
    idx, description = select_indices(x.shape[0], n, seed, what)
    return (x if n == x.shape[0] else x[idx]), description


def _as_tensor(samples: Any, what: str = "fake samples") -> torch.Tensor:
    """A numpy array or tensor as a detached CPU tensor; a clear error for anything else."""
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(samples)
    if not isinstance(samples, torch.Tensor):
        raise GanforgeError(f"{what} must be a tensor; got {type(samples).__name__}.")
    return samples.detach().cpu()


def draw_fake(
    fake: Sampler | torch.Tensor | Labelled, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(n fake samples, their requested labels or None) from a sampler fake(n, seed) that
    returns samples or (samples, labels), or from such a tensor / tuple (first n rows)."""
    drawn = fake(n, seed) if callable(fake) else fake
    labels = None
    if isinstance(drawn, tuple):
        if len(drawn) != 2:
            raise GanforgeError(
                f"A sampler returns samples or (samples, labels); got a tuple of {len(drawn)}."
            )
        drawn, labels = drawn
        labels = _as_tensor(labels, "fake labels")
    samples = _as_tensor(drawn)
    if samples.shape[0] < n:
        raise GanforgeError(
            f"The target gave only {samples.shape[0]} samples but --n is {n}; "
            f"lower --n to {samples.shape[0]} or provide more samples."
        )
    if labels is not None:
        if labels.shape[:1] != samples.shape[:1]:
            raise GanforgeError(
                f"The sampler gave {samples.shape[0]} samples but labels of shape "
                f"{tuple(labels.shape)}; give one class per sample."
            )
        labels = labels[:n]
    return samples[:n], labels


def check_shapes(fake: torch.Tensor, real_shape: tuple[int, ...], kind: str, name: str) -> None:
    """Fake samples must be in the data's own form and shape: a clear error otherwise."""
    shape = tuple(fake.shape[1:])
    if kind == "image":
        if fake.dtype != torch.uint8:
            raise GanforgeError(
                f"Fake images must be uint8 (N, C, H, W) pixels; got {fake.dtype}. Convert "
                "model output in [-1, 1] with ganforge.images.to_uint8."
            )
        if fake.ndim != 4 or shape != tuple(real_shape):
            raise GanforgeError(
                f"Fake images have shape (C, H, W) = {shape} but the real images of {name} "
                f"have {tuple(real_shape)}; evaluate against data of the same channels and "
                "resolution (set data.resolution / data.channels to match)."
            )
    elif fake.ndim != 2 or shape != tuple(real_shape):
        raise GanforgeError(
            f"Fake samples have shape {tuple(fake.shape)} but {name} holds vectors of shape "
            f"{tuple(real_shape)}; give (N, {real_shape[0]}) points."
        )
