"""A style-based generator and its residual discriminator (Karras et al. 2019, 2020), in plain
PyTorch: no custom CUDA ops, one implementation for every resolution from 16 to 256.

G (StyleGAN2's skip generator, config E):
- mapping: z -> pixel norm -> model.mapping_layers dense layers (learning rate x 0.01) -> w;
- synthesis: a learned 4x4 constant, then per level an x2 layer and a plain layer, each a
  modulated 3x3 convolution with weight demodulation, per-pixel noise times a learned strength,
  a bias and LeakyReLU; each level's toRGB (modulated 1x1, no demodulation) is added to the
  image so far, upsampled bilinearly. Layer i reads style ws[:, i]; toRGB reads its level's
  last style.
- style mixing regularization while training: with probability model.style_mixing, the
  styles from a random crossover layer on come from a second latent (same class labels).
- w_avg: the running mean of w while training (decay 0.995), the centre of the truncation
  trick: w' = w_avg + psi (w - w_avg), applied when `truncation` < 1 (set_truncation).
- noise: fresh N(0, 1) maps while training (torch's global generator, saved in checkpoints);
  in eval mode each layer's own fixed map, so G(z) is a function of z alone (sample grids,
  `ganforge sample --seed` and evaluation are reproducible).
Feature maps are upsampled by nearest x2 before the 3x3 convolution instead of StyleGAN2's
transposed convolution with a blur filter: the same role, in plain ops.

D (StyleGAN2's residual D): fromRGB 1x1, then per level two 3x3 convs and /2 average pooling
with a pooled 1x1 shortcut, summed and scaled by 1 / sqrt(2); the 4x4 epilogue with minibatch
std (model.mbstd_group); a dense score. Every layer of both nets has an equalized learning rate.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.nets.equalized import (
    Epilogue,
    EqualizedConv2d,
    EqualizedLinear,
    PixelNorm,
    ScaledLeakyReLU,
    check_resolution,
    conv_act,
    level_channels,
)
from ganforge.nets.layers import ScoredDiscriminator, out_activation

BASE = 4
MAPPING_LR_MUL = 0.01
W_AVG_BETA = 0.995
DEMOD_EPS = 1e-8


class MappingNetwork(nn.Module):
    """z -> pixel norm -> `layers` x (dense, LeakyReLU) -> w, at 0.01 x the learning rate."""

    def __init__(self, z_dim: int, w_dim: int, layers: int) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        body: list[nn.Module] = [PixelNorm()]
        for d_in, d_out in itertools.pairwise(dims):
            body += [EqualizedLinear(d_in, d_out, lr_mul=MAPPING_LR_MUL), ScaledLeakyReLU()]
        self.net = nn.Sequential(*body)

    def forward(self, z: Tensor) -> Tensor:
        """(N, z_dim) -> (N, w_dim)."""
        return self.net(z)


def demodulation(weight: Tensor, styles: Tensor) -> Tensor:
    """(N, c_out) factors 1 / sqrt(sum over c_in, k, k of (weight[o, i] * styles[n, i])^2 + 1e-8),
    as styles^2 @ (sum over k, k of weight^2)^T: no (N, c_out, c_in, k, k) tensor is made."""
    energy = styles.square() @ weight.square().sum(dim=(2, 3)).t()
    return torch.rsqrt(energy + DEMOD_EPS)


class ModulatedConv2d(nn.Module):
    """conv(x, W * s) * d: a convolution whose input channels are scaled by the style
    s = A(w) (bias 1) and, with `demodulate`, whose output is rescaled to unit variance.

    Computed as StyleGAN2's non-fused path: scale x by s, convolve with the shared weight,
    scale by d, which equals the per-sample modulated weight without a grouped convolution.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, w_dim: int,
                 demodulate: bool = True, upsample: bool = False) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.weight_gain = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.demodulate, self.upsample = demodulate, upsample

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """(N, c_in, H, W), (N, w_dim) -> (N, c_out, H, W), or 2H x 2W with `upsample`."""
        styles = self.affine(w)
        weight = self.weight * self.weight_gain
        x = x * styles[:, :, None, None]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            x = x * demodulation(weight, styles)[:, :, None, None]
        return x


class NoiseInput(nn.Module):
    """x + strength * noise: fresh per-pixel noise in training, a fixed map in eval mode."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) plus one noise map per sample, shared by the channels."""
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.fixed
        return x + self.strength * noise


class StyleLayer(nn.Module):
    """Modulated 3x3 conv (optionally x2) -> noise -> bias -> LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int,
                 upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim, upsample=upsample)
        self.noise = NoiseInput(resolution)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.act = ScaledLeakyReLU()

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """(N, c_in, H, W), (N, w_dim) -> (N, c_out, H', W')."""
        return self.act(self.noise(self.conv(x, w)) + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation, plus a bias."""

    def __init__(self, c_in: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """(N, c_in, H, W), (N, w_dim) -> (N, channels, H, W)."""
        return self.conv(x, w) + self.bias[None, :, None, None]


class StyleGenerator(nn.Module):
    """z -> mapping -> w -> synthesis from a 4x4 constant (see the module docstring)."""

    init_std: float | None = None  # layers added around it keep PyTorch's defaults

    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, out_act: str,
                 w_dim: int = 256, mapping_layers: int = 4, mixing: float = 0.9) -> None:
        super().__init__()
        levels = check_resolution(resolution, "style", BASE)
        self.z_dim, self.w_dim, self.mixing = z_dim, w_dim, mixing
        self.label_dims = 0  # trailing z columns that are class labels (set by build_nets)
        self.truncation = 1.0  # psi of the truncation trick; 1 is off (set_truncation)
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        chs = level_channels(levels, resolution, width)
        self.const = nn.Parameter(torch.randn(chs[0], BASE, BASE))
        layers = [StyleLayer(chs[0], chs[0], w_dim, BASE)]
        for k in range(1, levels + 1):
            size = BASE * 2 ** k
            layers += [StyleLayer(chs[k - 1], chs[k], w_dim, size, upsample=True),
                       StyleLayer(chs[k], chs[k], w_dim, size)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList(ToRGB(c, channels, w_dim) for c in chs)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.out = out_activation(out_act)

    @property
    def num_ws(self) -> int:
        """How many styles synthesis reads: one per modulated 3x3 layer."""
        return len(self.layers)

    def second_latent(self, z: Tensor) -> Tensor:
        """Fresh noise for style mixing, keeping z's trailing label columns."""
        noise = torch.randn(z.shape[0], z.shape[1] - self.label_dims, device=z.device,
                            dtype=z.dtype)
        return torch.cat([noise, z[:, z.shape[1] - self.label_dims:]], dim=1)

    def styles(self, z: Tensor) -> Tensor:
        """(N, z_dim) -> (N, num_ws, w_dim): w per layer, mixed and tracked while training,
        truncated towards w_avg when truncation < 1."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1.0 - W_AVG_BETA)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing > 0 and float(torch.rand(())) < self.mixing:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            ws[:, cutoff:] = self.mapping(self.second_latent(z)).unsqueeze(1)
        if self.truncation != 1.0:
            ws = torch.lerp(self.w_avg.expand_as(ws), ws, self.truncation)
        return ws

    def synthesize(self, ws: Tensor) -> Tensor:
        """(N, num_ws, w_dim) styles -> (N, C, R, R) images."""
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0])
        image = self.to_rgb[0](x, ws[:, 0])
        for k in range(1, len(self.to_rgb)):
            x = self.layers[2 * k - 1](x, ws[:, 2 * k - 1])
            x = self.layers[2 * k](x, ws[:, 2 * k])
            image = F.interpolate(image, scale_factor=2.0, mode="bilinear", align_corners=False)
            image = image + self.to_rgb[k](x, ws[:, 2 * k])
        return self.out(image)

    def forward(self, z: Tensor) -> Tensor:
        """(N, z_dim) noise -> (N, C, R, R) images."""
        return self.synthesize(self.styles(z))


class ResidualBlock(nn.Module):
    """D's level: (conv 3x3, conv 3x3, pool /2) + (pool /2, 1x1), scaled by 1 / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(*conv_act(c_in, c_in), *conv_act(c_in, c_out),
                                      nn.AvgPool2d(2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), EqualizedConv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        """(N, c_in, H, W) -> (N, c_out, H/2, W/2)."""
        return (self.residual(x) + self.shortcut(x)) * (1.0 / math.sqrt(2.0))


class ResidualDiscriminator(ScoredDiscriminator):
    """Image -> fromRGB -> residual /2 blocks to 4x4 -> epilogue (minibatch std) -> score."""

    init_std: float | None = None

    def __init__(self, channels: int, resolution: int, width: int, mbstd_group: int) -> None:
        super().__init__()
        levels = check_resolution(resolution, "style", BASE)
        chs = level_channels(levels, resolution, width)
        blocks = [ResidualBlock(chs[k], chs[k - 1]) for k in range(levels, 0, -1)]
        self.body = nn.Sequential(*conv_act(channels, chs[-1], kernel=1), *blocks,
                                  Epilogue(chs[0], mbstd_group))
        self.head = EqualizedLinear(chs[0], 1)


def check_truncation(psi: float) -> None:
    """A GanforgeError unless psi is in [0, 1]."""
    if not 0.0 <= psi <= 1.0:  # also false for NaN
        raise GanforgeError(
            f"--truncation must be in [0, 1] (1: off, 0: every sample is the same typical "
            f"image; 0.7 is the usual choice); got {psi}."
        )


def set_truncation(module: nn.Module, psi: float) -> None:
    """Sample every style-based generator inside module with truncation psi in [0, 1]."""
    check_truncation(psi)
    generators = [m for m in module.modules() if isinstance(m, StyleGenerator)]
    if not generators:
        raise GanforgeError(
            "--truncation needs a style-based generator (model.arch=style); this run's "
            f"generator is {type(module).__name__}. Sample it without --truncation."
        )
    for generator in generators:
        generator.truncation = float(psi)
