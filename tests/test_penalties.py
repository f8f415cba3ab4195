"""Gradient penalties: WGAN-GP's per-sample interpolation and R1, against closed forms."""

import pytest
import torch
from torch import nn

from ganforge.penalties import dragan_penalty, gradient_penalty, r1_penalty


def batch(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_linear_critic_penalty_is_exact_whatever_eps():
    w = torch.tensor([1.0, 2.0, 2.0, 0.0], dtype=torch.float64)  # ||w|| = 3
    critic = lambda x: x.flatten(1) @ w  # gradient w everywhere
    real, fake = batch((5, 1, 2, 2), 0), batch((5, 1, 2, 2), 1)
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        penalty = gradient_penalty(critic, real, fake, generator=gen)
        assert penalty.item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-12)


def test_eps_is_drawn_per_sample():
    # D(x) = 0.5 ||x||^2 has gradient x_hat itself, so the penalty depends on every eps.
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)
    real, fake = batch((4, 3, 5, 5), 2), batch((4, 3, 5, 5), 3)
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand((4, 1, 1, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x_hat = eps * real + (1 - eps) * fake
    norms = x_hat.flatten(1).pow(2).sum(1).sqrt()
    assert penalty.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-12)


def test_vector_data_and_float32():
    critic = lambda x: 0.5 * x.pow(2).sum(1)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    eps = torch.rand((6, 1), generator=torch.Generator().manual_seed(0))
    expected = ((((eps * real + (1 - eps) * fake).norm(dim=1)) - 1) ** 2).mean()
    assert penalty.dtype == torch.float32
    torch.testing.assert_close(penalty, expected)


def test_unit_gradient_critic_has_zero_penalty():
    critic = lambda x: x.flatten(1).norm(dim=1)  # |grad| = 1 away from 0
    real, fake = batch((8, 3, 4, 4), 4), batch((8, 3, 4, 4), 5)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-12)


def test_penalty_trains_the_critic_and_not_the_generator():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False), nn.Flatten(0))
    g_param = torch.ones((), requires_grad=True)
    real = torch.randn(4, 3, 2, 2)
    fake = g_param * torch.randn(4, 3, 2, 2)  # carries G's graph, as in a training step
    gradient_penalty(critic, real, fake).backward()
    w = critic[1].weight.detach()
    # penalty = (||w|| - 1)^2 for a linear critic, so its gradient is 2 (||w|| - 1) w / ||w||.
    expected = 2 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(critic[1].weight.grad, expected)
    assert g_param.grad is None


def test_r1_closed_form_on_quadratic_critic():
    a = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    real = batch((5, 3), 6).requires_grad_(True)
    scores = (a * real.pow(2)).sum(1)  # grad_x = 2 a x
    penalty = r1_penalty(scores, real)
    expected = (4 * a.detach().pow(2) * real.detach().pow(2)).sum(1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    penalty.backward()  # trains D: d/da = mean over samples of 8 a x^2
    torch.testing.assert_close(a.grad, (8 * a.detach() * real.detach().pow(2)).mean(0))


def test_r1_on_images_sums_over_all_pixels():
    real = batch((2, 1, 3, 3), 8).requires_grad_(True)
    penalty = r1_penalty(3.0 * real.sum((1, 2, 3)), real)  # grad = 3 everywhere, 9 pixels
    assert penalty.item() == pytest.approx(81.0)


def test_r1_needs_real_with_grad():
    real = torch.randn(2, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(real.sum(1), real)


def test_dragan_matches_hand_computation():
    # D(x) = 0.5 ||x||^2 has gradient x_hat: the penalty is a function of the drawn perturbation.
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)
    real = batch((4, 3), 8)
    penalty = dragan_penalty(critic, real, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    u = torch.rand((4, 3), generator=gen, dtype=torch.float64)
    a = torch.rand((4, 1), generator=gen, dtype=torch.float64)
    x_hat = real + a * (0.5 * real.std() * u)
    expected = ((x_hat.norm(dim=1) - 1) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)


def test_dragan_on_a_linear_critic_is_exact_and_trains_d():
    weight = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))  # ||w|| = 5
    penalty = dragan_penalty(lambda x: x @ weight, batch((6, 2), 9))
    assert penalty.item() == pytest.approx(16.0, rel=1e-12)
    penalty.backward()
    torch.testing.assert_close(weight.grad, 2 * (5 - 1) * weight.detach() / 5)
