"""Gradient penalties and regularizers of the discriminator, as pure functions.

Each returns the unweighted penalty, a scalar that backpropagates into D's parameters; the
caller multiplies it by its weight (the loss's gp_weight, gamma / 2 for R1, ...). Adding a
penalty (DRAGAN, R2, ...) is one function built on `input_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def input_gradient(scores: Tensor, inputs: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """d(sum of scores)/d(inputs), one gradient per sample, with the graph kept for training.

    scale (fp16 loss scaling): the gradient is taken of scale * scores and divided by scale
    again, so small gradients survive half precision; 1 leaves the computation untouched.
    """
    if isinstance(scale, float) and scale == 1.0:
        (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
        return grad
    (grad,) = torch.autograd.grad(scores.float().sum() * scale, inputs, create_graph=True)
    return grad.float() / scale


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    scale: Tensor | float = 1.0,
) -> Tensor:
    """WGAN-GP two-sided penalty E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017).

    x_hat = eps * real + (1 - eps) * fake with one eps ~ U[0, 1] per sample, drawn as
    `torch.rand((N, 1, ..., 1), generator=generator)` on the generator's device (global RNG when
    None). real and fake are detached, so the penalty trains D only. The norm runs over all
    non-batch dimensions. `discriminator` is any callable mapping x to (N,) scores; `scale` as in
    input_gradient. A D that
    mixes samples (batchnorm in train mode) breaks the per-sample gradient: use d_norm "layer".
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    device = generator.device if generator is not None else real.device
    eps = torch.rand(shape, generator=generator, device=device, dtype=real.dtype)
    eps = eps.to(real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    grad = input_gradient(discriminator(x_hat), x_hat, scale)
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return (norm - 1).pow(2).mean()


def dragan_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    generator: torch.Generator | None = None,
    spread: float = 0.5,
    scale: Tensor | float = 1.0,
) -> Tensor:
    """DRAGAN penalty E[(||grad D(x_hat)||_2 - 1)^2] around the real data (Kodali et al. 2017).

    As in the authors' code: x_p = x + spread * std(x) * u with u ~ U[0, 1) per entry and
    std over the whole batch, then x_hat = x + a * (x_p - x) with one a ~ U[0, 1) per sample.
    Randomness from `generator` (global RNG when None); real is detached, so it trains D only.
    """
    device = generator.device if generator is not None else real.device
    real = real.detach()
    u = torch.rand(real.shape, generator=generator, device=device, dtype=real.dtype)
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    a = torch.rand(shape, generator=generator, device=device, dtype=real.dtype)
    perturbed = real + spread * real.std() * u.to(real.device)
    x_hat = (real + a.to(real.device) * (perturbed - real)).requires_grad_(True)
    grad = input_gradient(discriminator(x_hat), x_hat, scale)
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return (norm - 1).pow(2).mean()


def r1_penalty(real_scores: Tensor, real: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """R1 penalty E[||grad_x D(x)||^2] on real data (Mescheder et al. 2018).

    `real` must require grad and `real_scores` = D(real). Multiply by gamma / 2.
    """
    if not real.requires_grad:
        raise ValueError("r1_penalty: call real.requires_grad_(True) before computing D(real).")
    grad = input_gradient(real_scores, real, scale)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def ca_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over batch and code entries.

    The regularizer of conditioning augmentation (StackGAN, Zhang et al. 2017, eq. 6): it keeps
    G's text Gaussian close to the standard normal, so that the text manifold stays smooth.
    Averaged per entry as the authors' code does (so its weight does not scale with c_dim).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
