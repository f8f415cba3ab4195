"""Weight initialization of Radford et al. (2016): N(0, 0.02) weights, norm scales N(1, 0.02)."""

from __future__ import annotations

import torch
from torch import nn

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


@torch.no_grad()
def dcgan_init_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialize every conv/linear and norm layer of module in place, as in DCGAN; returns it.

    Conv, transposed conv and linear weights ~ N(0, std), biases 0; normalization scales
    ~ N(1, std), shifts 0 (Radford et al. 2016, sec. 4). Draws from the global torch RNG.
    """
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED):
            nn.init.normal_(layer.weight, 0.0, std)
        elif isinstance(layer, _NORMS) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, std)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module
