"""Small building blocks the architectures share: normalization and output activation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError

D_NORMS = ("batch", "layer", "none")
OUT_ACTS = ("tanh", "none")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a GanforgeError naming the key and its choices when value is not one of them."""
    if value not in choices:
        raise GanforgeError(
            f"Config key '{key}' is {value!r} here; valid choices: {', '.join(choices)}."
        )


def norm_1d(kind: str, features: int) -> nn.Module:
    """Normalization of (N, F) activations: BatchNorm1d, LayerNorm over F, or nothing."""
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


def norm_2d(kind: str, channels: int) -> nn.Module:
    """Normalization of (N, C, H, W) maps: BatchNorm2d, layer norm over (C, H, W), or nothing.

    "layer" is GroupNorm with one group: per-sample statistics over C, H, W with a per-channel
    affine, independent of the image size (unlike nn.LayerNorm([C, H, W])).
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def out_activation(kind: str) -> nn.Module:
    """G's output activation: tanh for data in [-1, 1], identity for unbounded data."""
    return nn.Tanh() if kind == "tanh" else nn.Identity()


def linear_head(features: int, outputs: int, init_std: float | None) -> nn.Linear:
    """A Linear(features, outputs) score head, initialized like the D it goes on: N(0, std)
    weights and zero bias for init_std (DCGAN init), PyTorch's default for None."""
    head = nn.Linear(features, outputs)
    if init_std is not None:
        with torch.no_grad():
            nn.init.normal_(head.weight, 0.0, init_std)
            nn.init.zeros_(head.bias)
    return head


class GaussianNoise(nn.Module):
    """x + N(0, std^2) in training mode, x unchanged in eval mode (a D regularizer).

    The noise comes from torch's global generator, which checkpoints save, so resume stays exact.
    """

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        """x plus fresh noise while training."""
        if not self.training or self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"std={self.std}"


def add_noise(layers: list[nn.Module], input_noise: float, hidden_noise: float) -> list[nn.Module]:
    """layers with GaussianNoise(input_noise) first and GaussianNoise(hidden_noise) after every
    LeakyReLU (a std of 0 adds nothing, so a net without noise keeps its parameter names)."""
    out: list[nn.Module] = [GaussianNoise(input_noise)] if input_noise > 0 else []
    for layer in layers:
        out.append(layer)
        if hidden_noise > 0 and isinstance(layer, nn.LeakyReLU):
            out.append(GaussianNoise(hidden_noise))
    return out


class ScoredDiscriminator(nn.Module):
    """A D whose score is a linear `head` over `features(x)` = body(x) (the nets/ contract).

    Subclasses build `self.body` and `self.head`; `pool` reduces the body's output to (N, F).
    """

    def pool(self, h: Tensor) -> Tensor:
        """The body's output as (N, F) features (already flat unless a subclass pools)."""
        return h

    def features(self, x: Tensor) -> Tensor:
        """(N, *input shape) -> (N, F) penultimate features, what the head reads."""
        return self.pool(self.body(x))

    @property
    def feature_dim(self) -> int:
        """F, the width of features(x) that the linear head reads."""
        return self.head.in_features

    def forward(self, x: Tensor) -> Tensor:
        """(N, *input shape) -> (N,) raw scores (logits)."""
        return self.head(self.features(x)).squeeze(1)
