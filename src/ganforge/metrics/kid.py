"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over subsets.

Why our own and not torchmetrics' KernelInceptionDistance: its kernel and estimator match the
definition (Binkowski et al. 2018; tests cross-check `poly_mmd`), but it draws subsets from the
global RNG (not reproducible per call), refuses fewer samples than the subset size instead of
capping it (the reference implementations cap at min(n_real, n_fake)), and runs its own
extractor on images while we work on cached features.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x . y / d + 1)^3 for all pairs of rows: (N, D), (M, D) -> (N, M)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 estimate of two equal-size samples (m, D) under the cubic kernel.

    Within-set sums leave out the diagonal (divided by m(m-1)); the cross term keeps all m^2
    pairs, which is unbiased because x and y are independent samples.
    """
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    m = x.shape[0]
    if y.shape[0] != m:
        raise ValueError(f"mmd2_unbiased expects equal sizes; got {m} and {y.shape[0]}")
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
        m * (m - 1)
    )
    return float(within - 2 * k_xy.sum() / (m * m))


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, std over subsets) of feature sets (N, D) and (M, D).

    Each subset draws min(subset_size, N, M) rows without replacement from each side with a
    generator seeded by `seed`, so the result is reproducible; std is the population standard
    deviation of the per-subset estimates (as torchmetrics reports it).
    """
    n_real, n_fake = real.shape[0], fake.shape[0]
    m = min(subset_size, n_real, n_fake)
    if m < 2:
        raise GanforgeError(
            f"KID needs at least 2 samples per side; got {n_real} real and {n_fake} fake."
        )
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(num_subsets):
        real_idx = torch.randperm(n_real, generator=generator)[:m]
        fake_idx = torch.randperm(n_fake, generator=generator)[:m]
        values.append(mmd2_unbiased(real[real_idx], fake[fake_idx]))
    scores = torch.tensor(values, dtype=torch.float64)
    return float(scores.mean()), float(scores.std(correction=0))
