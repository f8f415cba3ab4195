"""Pure metric functions against closed forms, reference formulas and torchmetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.fid import feature_stats, fid, fid_from_stats, trace_sqrt_product
from ganforge.metrics.inception_score import inception_score, inception_score_from_logits
from ganforge.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from ganforge.metrics.manifold import density_coverage, knn_radii2, precision_recall

D = torch.float64


def _random_psd(d: int, seed: int, rank: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, rank or d, generator=g, dtype=D)
    return a @ a.T / d


# ---------------------------------------------------------------------------------------------
# FID


def test_fid_identity_covariances_is_squared_mean_distance():
    d = 64
    mu = torch.linspace(-1, 2, d, dtype=D)
    eye = torch.eye(d, dtype=D)
    value = fid_from_stats(torch.zeros(d, dtype=D), eye, mu, eye)
    assert value == pytest.approx(float(mu @ mu), rel=1e-6)


def test_fid_diagonal_covariances_closed_form():
    d = 32
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(d, generator=g, dtype=D), torch.randn(d, generator=g, dtype=D)
    s1 = torch.rand(d, generator=g, dtype=D) * 3 + 0.1  # standard deviations
    s2 = torch.rand(d, generator=g, dtype=D) * 3 + 0.1
    expected = float(((s1 - s2) ** 2).sum() + ((mu1 - mu2) ** 2).sum())
    value = fid_from_stats(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert value == pytest.approx(expected, rel=1e-6)


def test_fid_general_covariances_match_scipy_sqrtm_and_torchmetrics():
    from torchmetrics.image.fid import _compute_fid

    d = 48
    s1, s2 = _random_psd(d, 2), _random_psd(d, 3)
    mu1, mu2 = torch.zeros(d, dtype=D), torch.full((d,), 0.3, dtype=D)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())
    reference = float((mu1 - mu2) @ (mu1 - mu2)) + float(
        np.trace(s1.numpy()) + np.trace(s2.numpy()) - 2 * np.trace(covmean).real
    )
    value = fid_from_stats(mu1, s1, mu2, s2)
    assert value == pytest.approx(reference, rel=1e-6)
    assert value == pytest.approx(float(_compute_fid(mu1, s1, mu2, s2)), rel=1e-6)


def test_fid_singular_covariances_stay_finite_and_agree_with_eigvals():
    d = 40
    s1, s2 = _random_psd(d, 4, rank=10), _random_psd(d, 5, rank=12)
    expected = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    assert float(trace_sqrt_product(s1, s2)) == pytest.approx(float(expected), abs=1e-6)
    assert math.isfinite(fid_from_stats(torch.zeros(d, dtype=D), s1, torch.ones(d, dtype=D), s2))


def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 64, generator=torch.Generator().manual_seed(0))
    assert abs(fid(x, x)) < 1e-6


def test_feature_stats_match_numpy():
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(0), dtype=D)
    mu, sigma = feature_stats(x)
    assert torch.allclose(mu, x.mean(0))
    assert np.allclose(sigma.numpy(), np.cov(x.numpy(), rowvar=False))


def test_fid_rejects_non_psd_covariance():
    d = 4
    bad = -torch.eye(d, dtype=D)
    with pytest.raises(ValueError, match="imaginary"):
        fid_from_stats(torch.zeros(d, dtype=D), torch.eye(d, dtype=D), torch.zeros(d), bad)


def test_fid_too_few_samples_is_a_clear_error():
    with pytest.raises(GanforgeError, match="at least 2 samples"):
        fid(torch.randn(1, 4), torch.randn(10, 4))


# ---------------------------------------------------------------------------------------------
# KID


def _poly_mmd2_gaussian_shift(d: int, mu: torch.Tensor) -> float:
    """Closed form MMD^2 of N(0, I) vs N(mu, I) under k = (x.y/d + 1)^3."""
    m2 = float(mu @ mu)
    e_pp = 1 + 3 / d
    e_pq = 1 + 3 * (m2 + d) / d**2
    e_qq = (
        1
        + 3 * m2 / d
        + 3 * (m2**2 + 2 * m2 + d) / d**2
        + (m2**3 + 6 * m2**2 + 3 * d * m2 + 6 * m2) / d**3
    )
    return e_pp + e_qq - 2 * e_pq


def _replicates(mu: torch.Tensor, reps: int = 300, m: int = 60) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    d = mu.numel()
    values = [
        mmd2_unbiased(
            torch.randn(m, d, generator=g, dtype=D), torch.randn(m, d, generator=g, dtype=D) + mu
        )
        for _ in range(reps)
    ]
    return torch.tensor(values, dtype=D)


def test_kid_estimator_is_unbiased_for_equal_distributions():
    values = _replicates(torch.zeros(4, dtype=D))
    stderr = values.std() / math.sqrt(values.numel())
    assert abs(float(values.mean())) < 4 * float(stderr)


def test_kid_estimator_matches_closed_form_for_mean_shift():
    mu = torch.full((4,), 0.5, dtype=D)
    values = _replicates(mu)
    stderr = float(values.std()) / math.sqrt(values.numel())
    assert abs(float(values.mean()) - _poly_mmd2_gaussian_shift(4, mu)) < 4 * stderr


def test_kid_of_two_samples_of_one_distribution_is_about_zero():
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    mean, std = kid(x, y, num_subsets=20, subset_size=100, seed=0)
    assert abs(mean) < 3 * std + 1e-3
    shifted, _ = kid(x, y + 1.0, num_subsets=20, subset_size=100, seed=0)
    assert shifted > 10 * abs(mean)


def test_kid_matches_torchmetrics_poly_mmd_and_is_reproducible():
    from torchmetrics.image.kid import poly_mmd

    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(50, 10, generator=g, dtype=D), torch.randn(50, 10, generator=g, dtype=D)
    assert mmd2_unbiased(x, y) == pytest.approx(float(poly_mmd(x, y)), rel=1e-10)
    assert kid(x, y, 5, 20, seed=3) == kid(x, y, 5, 20, seed=3)
    assert polynomial_kernel(x, y).shape == (50, 50)


def test_kid_caps_subset_size_and_rejects_one_sample():
    g = torch.Generator().manual_seed(9)
    x, y = torch.randn(30, 4, generator=g, dtype=D), torch.randn(30, 4, generator=g, dtype=D)
    # capped at min(1000, 30, 30) = 30: every subset is a permutation of all rows, and the
    # estimate does not depend on row order, so each subset gives the full-set MMD^2 exactly
    mean, std = kid(x, y + 0.1, num_subsets=3, subset_size=1000)
    assert mean == pytest.approx(mmd2_unbiased(x, y + 0.1), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)
    # capped at the smaller side: the same numbers as asking for that size explicitly
    assert kid(x, y[:20], 5, 1000, seed=2) == kid(x, y[:20], 5, 20, seed=2)
    assert kid(x[:20], y, 5, 1000, seed=2) == kid(x[:20], y, 5, 20, seed=2)
    below = kid(x, y + 0.1, num_subsets=3, subset_size=10)  # a cap below n draws real subsets
    assert below[1] > 0 and below[0] != pytest.approx(mean, rel=1e-6)
    with pytest.raises(GanforgeError, match="at least 2"):
        kid(x[:1], x)


# ---------------------------------------------------------------------------------------------
# IS


def test_is_of_uniform_predictions_is_one():
    mean, std = inception_score(torch.full((100, 10), 0.1))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_is_of_equally_distributed_one_hot_is_k():
    k = 10
    labels = torch.arange(1000) % k
    mean, std = inception_score(torch.nn.functional.one_hot(labels, k).double())
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_is_from_logits_and_argument_checks():
    logits = torch.randn(50, 5, generator=torch.Generator().manual_seed(0))
    assert inception_score_from_logits(logits) == inception_score(logits.double().softmax(1))
    with pytest.raises(ValueError, match="softmax"):
        inception_score(logits)
    with pytest.raises(GanforgeError, match="at least 10"):
        inception_score(torch.full((5, 2), 0.5))


# ---------------------------------------------------------------------------------------------
# precision / recall, density / coverage


def _brute_pr(real, fake, k):
    def radii(x):
        return torch.cdist(x, x).sort(dim=1).values[:, k]

    rr, rf = radii(real), radii(fake)
    precision = (torch.cdist(fake, real) <= rr[None]).any(1).double().mean()
    recall = (torch.cdist(real, fake) <= rf[None]).any(1).double().mean()
    return float(precision), float(recall)


def test_precision_recall_of_identical_sets_is_one():
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x.clone(), k=3) == (1.0, 1.0)


def test_density_coverage_of_identical_sets():
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    density, coverage = density_coverage(x, x.clone(), k=5)
    assert coverage == 1.0
    assert density == pytest.approx(1.0, abs=0.02)


def test_precision_recall_hand_made_1d():
    real = torch.arange(10, dtype=D)[:, None]  # k=1 radii are all 1
    fake = torch.tensor([[0.5], [100.0]], dtype=D)  # radii 99.5 each
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    density, coverage = density_coverage(real, fake, k=1)
    assert coverage == pytest.approx(0.2)  # 0.5 lies strictly inside the balls of 0 and 1
    assert density == pytest.approx(1.0)  # (2 balls) / (k=1 * M=2)


def test_far_away_samples_have_zero_precision_and_coverage():
    real = torch.randn(50, 3, generator=torch.Generator().manual_seed(2))
    fake = real + 1000
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_manifold_metrics_match_brute_force_and_ignore_block_size():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(120, 6, generator=g, dtype=D), torch.randn(90, 6, generator=g) + 0.3
    fake = fake.double()
    expected = _brute_pr(real, fake, 3)
    assert precision_recall(real, fake, k=3) == pytest.approx(expected)
    assert precision_recall(real, fake, k=3, block_rows=7) == pytest.approx(expected)
    assert density_coverage(real, fake, block_rows=11) == pytest.approx(
        density_coverage(real, fake)
    )


def test_knn_radii_exclude_self_and_need_more_than_k_samples():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=D)
    assert knn_radii2(x, 1).tolist() == [1.0, 1.0, 4.0]
    with pytest.raises(GanforgeError, match="more than 3"):
        precision_recall(x, x, k=3)
