"""k-NN manifold metrics: precision/recall (Kynkaanniemi et al. 2019) and density/coverage
(Naeem et al. 2020), with distances computed in row blocks so 10k x 10k fits in bounded memory.

Why our own: torchmetrics has neither metric. Radii follow both reference implementations: the
k-th nearest neighbour of a sample within its own set, the sample itself not counted.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ganforge.errors import GanforgeError

BLOCK_ELEMENTS = 1 << 24  # float64 distance entries per block (128 MiB)


def _blocks(n_rows: int, n_cols: int, block_rows: int | None) -> Iterator[slice]:
    """Row slices of at most block_rows (default: BLOCK_ELEMENTS / n_cols) rows."""
    rows = block_rows or max(1, BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, rows):
        yield slice(start, min(start + rows, n_rows))


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (N, M) between rows of a (N, D) and b (M, D), float64."""
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    d2 = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return d2.clamp_(min=0)


def knn_radii2(features: torch.Tensor, k: int, block_rows: int | None = None) -> torch.Tensor:
    """Squared distance of each row to its k-th nearest other row (self excluded)."""
    features = features.to(torch.float64)
    n = features.shape[0]
    if n <= k:
        raise GanforgeError(f"k-NN radii with k={k} need more than {k} samples; got {n}.")
    radii = torch.empty(n, dtype=torch.float64)
    for rows in _blocks(n, n, block_rows):
        d2 = squared_distances(features[rows], features)
        idx = torch.arange(rows.start, rows.stop)
        d2[idx - rows.start, idx] = 0.0  # self-distance is exactly 0, whatever the round-off
        radii[rows] = d2.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _fraction_inside(
    points: torch.Tensor, centers: torch.Tensor, radii2: torch.Tensor, block_rows: int | None
) -> float:
    """Fraction of points inside at least one ball (center_j, radius_j), boundary included."""
    inside = 0
    for rows in _blocks(points.shape[0], centers.shape[0], block_rows):
        d2 = squared_distances(points[rows], centers)
        inside += int((d2 <= radii2[None, :]).any(dim=1).sum())
    return inside / points.shape[0]


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, block_rows: int | None = None
) -> tuple[float, float]:
    """Improved precision and recall: share of fake in the real manifold and vice versa.

    A manifold is the union of balls around its samples with radius the distance to the k-th
    nearest neighbour in the same set; a point on a ball's boundary counts as inside (<=, as
    in the reference code).
    """
    real, fake = real.to(torch.float64), fake.to(torch.float64)
    real_r2 = knn_radii2(real, k, block_rows)
    fake_r2 = knn_radii2(fake, k, block_rows)
    precision = _fraction_inside(fake, real, real_r2, block_rows)
    recall = _fraction_inside(real, fake, fake_r2, block_rows)
    return precision, recall


def density_coverage(
    real: torch.Tensor, fake: torch.Tensor, k: int = 5, block_rows: int | None = None
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with real k-NN balls (strict <, as in prdc).

    density = (1 / kM) sum_j #{i : fake_j in B(real_i)}; coverage = share of real balls that
    hold at least one fake sample.
    """
    if fake.shape[0] < 1:
        raise GanforgeError("density/coverage need at least one fake sample.")
    real, fake = real.to(torch.float64), fake.to(torch.float64)
    real_r2 = knn_radii2(real, k, block_rows)
    hits = 0
    for rows in _blocks(fake.shape[0], real.shape[0], block_rows):
        hits += int((squared_distances(fake[rows], real) < real_r2[None, :]).sum())
    covered = 0
    for rows in _blocks(real.shape[0], fake.shape[0], block_rows):
        nearest = squared_distances(real[rows], fake).min(dim=1).values
        covered += int((nearest < real_r2[rows]).sum())
    return hits / (k * fake.shape[0]), covered / real.shape[0]
