"""Layers shared by the progressive and style-based nets (Karras et al. 2018, 2019, 2020).

- Equalized learning rate: weights are stored ~ N(0, 1) / lr_mul and scaled at every forward
  call by lr_mul / sqrt(fan_in), so that every layer's effective weights have He-like scale
  and Adam's per-parameter step moves every layer at the same relative speed (Karras et al.
  2018, sec. 4.1). lr_mul < 1 slows a layer down (StyleGAN's mapping network uses 0.01).
- Activations are LeakyReLU(0.2) times sqrt(2) (StyleGAN2's "lrelu" gain), which keeps unit
  variance through the layers with the 1 / sqrt(fan_in) scale above (PGGAN folds the same
  sqrt(2) into the weight scale instead: the same function).
- Pixel normalization of G's features (Karras et al. 2018, sec. 4.2).
- D's last block at 4x4: minibatch std as one extra feature map, conv 3x3, dense, dense score.

Everything is parameterized by resolution: the channel plan is `level_channels`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.nets.stabilize import MinibatchStd

LRELU_SLOPE, LRELU_GAIN = 0.2, math.sqrt(2.0)
PIXEL_NORM_EPS = 1e-8
MAX_WIDTH_FACTOR = 8  # channels grow towards the base up to 8 x width, as DCGAN's plan
RESOLUTION_RANGE = (16, 256)


def check_resolution(resolution: int, name: str, start: int = 4) -> int:
    """log2(resolution / start) levels above the start; a GanforgeError unless R is a power
    of two in RESOLUTION_RANGE (the resolutions these nets are built for)."""
    low, high = RESOLUTION_RANGE
    if resolution < 1 or resolution & (resolution - 1) or not low <= resolution <= high:
        raise GanforgeError(
            f"model.arch={name} builds square images whose side is a power of two from {low} "
            f"to {high}; this data is {resolution}x{resolution}. Set data.resolution to one of "
            f"{', '.join(str(2 ** k) for k in range(4, 9))} (images are resized on load; "
            "Fashion-MNIST's 28x28 becomes 32x32 with data.resolution=32)."
        )
    return (resolution // start).bit_length() - 1


def square_image(data_shape: tuple[int, ...], name: str) -> tuple[int, int]:
    """(channels, resolution) of a (C, R, R) data shape that model.arch=name can make."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise GanforgeError(
            f"model.arch={name} needs square images of shape (C, R, R); got data shape "
            f"{tuple(data_shape)}. Set data.resolution, or use model.arch=mlp for vectors."
        )
    check_resolution(data_shape[1], name)
    return data_shape[0], data_shape[1]


def level_channels(levels: int, final: int, width: int) -> list[int]:
    """Feature channels of levels 0 (4x4) to `levels` (final x final): width at the final
    resolution, doubling at each level towards the base, capped at 8 x width."""
    return [min(width * (final // (4 * 2**k)), MAX_WIDTH_FACTOR * width)
            for k in range(levels + 1)]


class EqualizedLinear(nn.Module):
    """y = x W'^T + b' with W' = W * lr_mul / sqrt(in) and b' = b * lr_mul, where W is
    stored ~ N(0, 1 / lr_mul^2)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    @property
    def in_features(self) -> int:
        """Input width (what a score head over these features reads)."""
        return self.weight.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        """(N, in) -> (N, out)."""
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """A stride-1 'same' convolution with weights scaled by 1 / sqrt(in * k * k) at run time."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        """(N, c_in, H, W) -> (N, c_out, H, W)."""
        pad = self.weight.shape[-1] // 2
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=pad)

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight.shape
        return f"{c_in}, {c_out}, kernel={k}, bias={self.bias is not None}"


class ScaledLeakyReLU(nn.Module):
    """LeakyReLU(0.2) * sqrt(2): keeps unit second moment after 1/sqrt(fan_in)-scaled layers."""

    def forward(self, x: Tensor) -> Tensor:
        """Elementwise activation."""
        return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


class PixelNorm(nn.Module):
    """x / sqrt(mean over channels of x^2 + 1e-8): each pixel's feature vector at unit length."""

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, ...) -> same shape, normalized along dim 1."""
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS)


def conv_act(c_in: int, c_out: int, kernel: int = 3) -> list[nn.Module]:
    """[EqualizedConv2d, ScaledLeakyReLU]: the basic layer of both nets."""
    return [EqualizedConv2d(c_in, c_out, kernel), ScaledLeakyReLU()]


class Epilogue(nn.Module):
    """D's 4x4 block: [minibatch std map] -> conv 3x3 -> flatten -> dense -> features (N, C).

    The minibatch std (nets.stabilize.MinibatchStd over each sample's whole C x 4 x 4 map) is
    appended as one constant feature map, as in PGGAN and StyleGAN; group 0 leaves it out.
    """

    def __init__(self, channels: int, mbstd_group: int) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group > 0 else None
        extra = 1 if self.mbstd is not None else 0
        self.conv = nn.Sequential(*conv_act(channels + extra, channels))
        self.dense = nn.Sequential(EqualizedLinear(channels * 16, channels), ScaledLeakyReLU())

    def forward(self, h: Tensor) -> Tensor:
        """(N, C, 4, 4) -> (N, C) features."""
        if self.mbstd is not None:
            std = self.mbstd.statistic(h.flatten(1))  # (N, 1)
            h = torch.cat([h, std.view(-1, 1, 1, 1).expand(-1, 1, *h.shape[2:])], dim=1)
        return self.dense(self.conv(h).flatten(1))
