"""The 2D Gaussian mixtures of the PacGAN mode-collapse benchmark (Lin et al. 2018).

ring8: 8 Gaussians on the unit circle at angles 2*pi*k/8 (k = 0..7), sigma 0.01.
grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, sigma 0.05.
The dataset is a fixed sample (100,000 points) drawn from a constant seed, one seed per split,
so every run and every machine sees the same points; labels are the mode indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.data.dataset import Dataset

DEFAULT_SIZE = 100_000
SPLIT_SEEDS = {"train": 20180101, "test": 20180102}


@dataclass(frozen=True, eq=False)
class Mixture:
    """Equal-weight isotropic Gaussians: centers (K, 2) float64 and one sigma."""

    name: str
    centers: torch.Tensor
    sigma: float
    description: str

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n points (float32, (n, 2)) and their mode indices (int64, (n,))."""
        k = self.centers.shape[0]
        labels = torch.randint(k, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.centers[labels] + self.sigma * noise).float(), labels


def ring_centers(k: int, radius: float = 1.0) -> torch.Tensor:
    """k points evenly spaced on a circle, at angles 2*pi*i/k (no duplicated mode at 2*pi)."""
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_centers(values: tuple[float, ...]) -> torch.Tensor:
    """All points of values x values, row by row (x outer, y inner)."""
    axis = torch.tensor(values, dtype=torch.float64)
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


MIXTURES: dict[str, Mixture] = {
    "ring8": Mixture(
        "ring8", ring_centers(8), 0.01, "PacGAN ring: 8 Gaussians on the unit circle, sigma 0.01"
    ),
    "grid25": Mixture(
        "grid25",
        grid_centers((-4.0, -2.0, 0.0, 2.0, 4.0)),
        0.05,
        "PacGAN grid: 25 Gaussians at {-4,-2,0,2,4}^2, sigma 0.05",
    ),
}


def load_mixture(mixture: Mixture, split: str, n: int = DEFAULT_SIZE) -> Dataset:
    """The fixed sample of a mixture for a split, as a vector dataset labelled by mode."""
    generator = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    x, labels = mixture.sample(n, generator)
    return Dataset(
        x=x,
        labels=labels,
        name=f"{mixture.name}:{split}",
        kind="vector",
        num_classes=int(mixture.centers.shape[0]),
        class_names=[f"mode {i}" for i in range(mixture.centers.shape[0])],
    )
