"""Mode metrics on hand-made samples whose answers are known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.modes import (
    class_mode_metrics,
    kl_to_uniform,
    mode_metrics_2d,
    stacked_mode_metrics,
)

RING_SIGMA = 0.01
GRID_SIGMA = 0.05


def ring8() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def grid25() -> torch.Tensor:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
    return torch.cartesian_prod(axis, axis)


def test_samples_at_seven_of_eight_ring_modes():
    samples = ring8()[:7].repeat_interleave(10, dim=0)
    result = mode_metrics_2d(samples, ring8(), RING_SIGMA)
    assert result["modes_covered"] == 7 and result["modes_total"] == 8
    assert result["hq_percent"] == 100.0
    assert result["modes_kl"] == pytest.approx(math.log(8 / 7), rel=1e-12)


def test_far_away_points_are_not_high_quality():
    samples = torch.full((2500, 2), 10.0)
    result = mode_metrics_2d(samples, ring8(), RING_SIGMA)
    assert result["modes_covered"] == 0 and result["hq_percent"] == 0.0
    assert math.isnan(result["modes_kl"])


def test_half_at_modes_half_at_center_of_ring():
    samples = torch.cat([ring8().repeat(5, 1), torch.zeros(40, 2, dtype=torch.float64)])
    result = mode_metrics_2d(samples, ring8(), RING_SIGMA)
    assert result == {"modes_covered": 8, "modes_total": 8, "hq_percent": 50.0, "modes_kl": 0.0,
                      "mode_histogram": [5] * 8}


def test_three_sigma_boundary():
    centers = ring8()
    inside = centers[:1] + torch.tensor([[2.9 * RING_SIGMA, 0.0]], dtype=torch.float64)
    outside = centers[1:2] + torch.tensor([[0.0, 3.1 * RING_SIGMA]], dtype=torch.float64)
    result = mode_metrics_2d(torch.cat([inside, outside]), centers, RING_SIGMA)
    assert result["modes_covered"] == 1 and result["hq_percent"] == 50.0


def test_grid25_all_modes_equally():
    samples = grid25().repeat(100, 1) + 0.01  # 0.2 sigma off every center
    result = mode_metrics_2d(samples, grid25(), GRID_SIGMA)
    assert result["modes_covered"] == 25 and result["hq_percent"] == 100.0
    assert result["modes_kl"] == pytest.approx(0.0, abs=1e-12)


def test_single_mode_kl_is_log_k():
    samples = grid25()[3:4].repeat(50, 1)
    assert mode_metrics_2d(samples, grid25(), GRID_SIGMA)["modes_kl"] == pytest.approx(math.log(25))


def test_kl_to_uniform():
    assert kl_to_uniform(torch.tensor([1, 1, 0, 0])) == pytest.approx(math.log(2))
    assert kl_to_uniform(torch.tensor([3, 3, 3])) == pytest.approx(0.0)
    assert math.isnan(kl_to_uniform(torch.zeros(3)))


def test_class_modes():
    result = class_mode_metrics(torch.tensor([0, 0, 1, 1]), num_classes=4)
    assert result == {"modes_covered": 2, "modes_total": 4, "modes_kl": pytest.approx(math.log(2)),
                      "mode_histogram": [2, 2, 0, 0]}
    with pytest.raises(ValueError):
        class_mode_metrics(torch.tensor([4]), num_classes=4)


def test_stacked_mnist_all_thousand_modes():
    digits = torch.arange(10)
    preds = torch.cartesian_prod(digits, digits, digits)  # every (d0, d1, d2) once
    result = stacked_mode_metrics(preds)
    assert result["modes_covered"] == 1000 and result["modes_total"] == 1000
    assert result["modes_kl"] == pytest.approx(0.0, abs=1e-12)


def test_stacked_mnist_collapsed_and_distinct_channel_order():
    collapsed = stacked_mode_metrics(torch.tensor([[1, 2, 3]] * 26))
    assert collapsed["modes_covered"] == 1
    assert collapsed["modes_kl"] == pytest.approx(math.log(1000))
    assert stacked_mode_metrics(torch.tensor([[1, 2, 3], [3, 2, 1]]))["modes_covered"] == 2


def test_mode_metrics_shape_errors():
    with pytest.raises(GanforgeError, match=r"\(N, 2\)"):
        mode_metrics_2d(torch.zeros(5, 3), ring8(), RING_SIGMA)
