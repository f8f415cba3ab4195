"""A D that classifies: K (or K + 1) logits over any architecture's features, and weight norm.

The semi-supervised GAN (tasks/semi_supervised.py) reads its real/fake score from these logits
instead of a separate head (Salimans et al. 2016, sec. 5; Odena 2016 with the extra class).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from ganforge.nets.layers import linear_head

WEIGHT_NORMS = ("none", "d", "both")
WEIGHT_NORM_INITS = ("default", "data")  # model.weight_norm_init: PyTorch's or data_init_
DIRECTION_STD = 0.05  # std of the directions v after data_init_ (Salimans et al.'s N(0, 0.05))


class ClassLogitDiscriminator(nn.Module):
    """base D's features -> Linear -> `outputs` logits; base's own 1-unit head is removed.

    `features(x)` is the base's (for feature matching), `forward(x)` gives (N, outputs) logits.
    The new head is initialized like the base (init_std: N(0, std), zero bias) when it has one.
    """

    def __init__(self, base: nn.Module, outputs: int) -> None:
        super().__init__()
        self.feature_dim: int = base.feature_dim
        del base.head
        self.base, self.outputs = base, outputs
        self.init_std: float | None = getattr(base, "init_std", None)
        self.head = linear_head(self.feature_dim, outputs, self.init_std)

    def features(self, x: Tensor) -> Tensor:
        """(N, *data_shape) -> (N, feature_dim), the base D's penultimate features."""
        return self.base.features(x)

    def forward(self, x: Tensor) -> Tensor:
        """(N, *data_shape) -> (N, outputs) raw logits."""
        return self.head(self.features(x))


def weight_norm_(module: nn.Module) -> nn.Module:
    """Weight normalization w = g v / ||v|| (Salimans & Kingma 2016) on every Linear and conv
    layer of module, in place; returns module."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            weight_norm(layer, "weight", dim=0 if not isinstance(layer, nn.ConvTranspose2d) else 1)
    return module


def weight_normed(layer: nn.Module) -> bool:
    """Whether layer's weight is reparameterized by weight_norm_ (g and direction v)."""
    return parametrize.is_parametrized(layer, "weight") and any(
        type(p).__name__ == "_WeightNorm" for p in layer.parametrizations.weight
    )


@torch.no_grad()
def data_init_(module: nn.Module, forward: Callable[[], object]) -> int:
    """Data-dependent initialization of module's weight-normed layers (Salimans & Kingma 2016,
    sec. 3), in place; returns how many layers it set.

    forward() runs module once on real data, in eval mode (no noise, dropout or running-
    statistics updates). Each weight-normed layer, in the order the data reaches it, divides
    its scale g by the standard deviation of its outputs per unit and shifts its bias so that
    those outputs have mean 0 and variance 1, then passes the normalized outputs on. PyTorch's
    default init instead starts a deep net with outputs that shrink layer by layer, so a fixed
    noise std (the semi-supervised D's 0.5) can drown the signal. The directions v are
    rescaled (not redrawn) to the std of Salimans et al.'s N(0, 0.05) draws: g v / ||v||
    ignores their scale, but Adam's steps on v are relative to it.
    """
    done: set[nn.Module] = set()

    def normalize(layer: nn.Module, inputs: object, output: Tensor) -> Tensor | None:
        if layer in done:
            return None
        done.add(layer)
        dims = [d for d in range(output.dim()) if d != 1]  # every axis but the unit's
        mean, std = output.mean(dims), output.std(dims).clamp_min(1e-6)
        weight = layer.parametrizations.weight
        scale, direction = weight.original0, weight.original1  # g and v of weight_norm
        direction.mul_(DIRECTION_STD / direction.std().clamp_min(1e-12))
        scale.div_(std.view(scale.shape))
        shape = [1, -1] + [1] * (output.dim() - 2)
        if layer.bias is None:  # no shift to learn: only the scale is set
            return output / std.view(shape)
        layer.bias.sub_(mean).div_(std)
        return (output - mean.view(shape)) / std.view(shape)

    hooks = [m.register_forward_hook(normalize) for m in module.modules() if weight_normed(m)]
    was_training = module.training
    module.eval()
    try:
        forward()
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    return len(done)
