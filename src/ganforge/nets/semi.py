"""A D that classifies: K (or K + 1) logits over any architecture's features, and weight norm.

The semi-supervised GAN (tasks/semi_supervised.py) reads its real/fake score from these logits
instead of a separate head (Salimans et al. 2016, sec. 5; Odena 2016 with the extra class).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ganforge.nets.layers import linear_head

WEIGHT_NORMS = ("none", "d", "both")


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
