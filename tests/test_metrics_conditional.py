"""Conditional accuracy and intra-class FID (metrics/conditional.py) on hand-made inputs."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.conditional import conditional_accuracy, intra_fid
from ganforge.metrics.fid import fid


def test_conditional_accuracy_exact_values_per_class():
    requested = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = torch.tensor([0, 0, 0, 1, 0, 0, 2, 2, 2, 2])
    result = conditional_accuracy(predicted, requested, num_classes=4)
    per_class = result["cacc_per_class"]
    assert per_class[:3] == [0.75, 0.0, 1.0]
    assert math.isnan(per_class[3])  # no samples asked for class 3
    assert result["cacc"] == pytest.approx((0.75 + 0.0 + 1.0) / 3)  # mean over present classes


def test_conditional_accuracy_balanced_equals_fraction_correct():
    requested = torch.arange(12) % 3
    predicted = requested.clone()
    predicted[[0, 4, 5]] = torch.tensor([1, 0, 1])  # one wrong in each class
    result = conditional_accuracy(predicted, requested, 3)
    assert result["cacc"] == pytest.approx(9 / 12)
    assert result["cacc_per_class"] == [0.75, 0.75, 0.75]


def test_conditional_accuracy_rejects_bad_labels():
    with pytest.raises(GanforgeError, match=r"lie in \[0, 2\)"):
        conditional_accuracy(torch.tensor([0, 1]), torch.tensor([0, 2]), 2)
    with pytest.raises(GanforgeError, match="integer classes"):
        conditional_accuracy(torch.tensor([0, 1]), torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(GanforgeError, match="3 labels for 2"):
        conditional_accuracy(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 2)


def gaussian_classes(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated Gaussian classes in 4-d: class k centred at 5k (+ shift)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    scales = torch.tensor([1.0, 0.5, 2.0])[labels, None]
    feats = torch.randn(n, 4, generator=gen, dtype=torch.float64) * scales
    return feats + 5.0 * labels[:, None] + shift, labels


def test_intra_fid_is_the_mean_of_per_class_fids():
    real, real_y = gaussian_classes(300, seed=0)
    fake, fake_y = gaussian_classes(240, seed=1, shift=0.3)
    result = intra_fid(real, real_y, fake, fake_y, num_classes=3)
    by_hand = [fid(real[real_y == k], fake[fake_y == k]) for k in range(3)]
    assert result["ifid_per_class"] == pytest.approx(by_hand, rel=1e-12)
    assert result["ifid"] == pytest.approx(sum(by_hand) / 3, rel=1e-12)
    assert all(v > 0.1 for v in by_hand)  # the shift shows in every class


def test_intra_fid_of_identical_sets_is_zero():
    real, labels = gaussian_classes(90, seed=2)
    result = intra_fid(real, labels, real.clone(), labels.clone(), 3)
    assert abs(result["ifid"]) < 1e-9
    assert all(abs(v) < 1e-9 for v in result["ifid_per_class"])


def test_swapped_labels_raise_intra_fid_but_not_whole_set_fid():
    real, real_y = gaussian_classes(600, seed=3)
    fake, fake_y = gaussian_classes(600, seed=4)
    swapped = fake_y.clone()
    swapped[fake_y == 0], swapped[fake_y == 1] = 1, 0  # classes 0 and 1 trade labels
    right = intra_fid(real, real_y, fake, fake_y, 3)["ifid"]
    wrong = intra_fid(real, real_y, fake, swapped, 3)["ifid"]
    assert fid(real, fake) < 0.5  # the whole set does not see labels at all
    assert right < 0.5 and wrong > 10.0  # classes 5 apart: a squared distance of 25 each
    assert wrong > 20 * right


def test_intra_fid_names_a_class_with_too_few_samples():
    real, real_y = gaussian_classes(30, seed=5)
    fake, fake_y = gaussian_classes(30, seed=6)
    fake_y[fake_y == 2] = 1
    fake_y[2] = 2  # one fake sample of class 2
    with pytest.raises(GanforgeError, match=r"class 2 has 10 real and 1 fake.*--n"):
        intra_fid(real, real_y, fake, fake_y, 3)
    with pytest.raises(GanforgeError, match="class 3 has 0 real"):
        intra_fid(real, real_y, fake, gaussian_classes(30, seed=6)[1], 4)
