"""Image-to-image nets: U-Net and encoder-decoder generators, CycleGAN's ResNet generator and
the PatchGAN discriminator (Isola et al. 2017; Zhu et al. 2017), parameterized by resolution.

- `UNet(skips=True)`: log2(R) stride-2 4x4 conv blocks down to 1x1 and as many transposed ones
  back up; each decoder block also reads the encoder block of its size (skip connections).
  Channels width * min(2^i, 8) at level i; no norm on the outermost and innermost encoder
  blocks; dropout in the decoder blocks of levels max(1, depth-4) .. depth-2 (at 256x256:
  the three innermost 512-channel blocks, as in the paper's U-Net-256).
- `UNet(skips=False)`: the same net without skips, the plain encoder-decoder.
- `ResnetGenerator`: c7s1-w, two stride-2 downsamplings, `blocks` residual blocks, two
  upsamplings, c7s1-out (reflection padding), CycleGAN's 6 (128px) or 9 (256px) blocks.
- `PatchDiscriminator`: `layers` stride-2 4x4 convs, one stride-1 conv, a 1-channel 4x4 conv:
  one logit per patch; `receptive_field` computes each patch's size from the conv layers
  (layers=3: 70x70, the paper's PatchGAN).
Norms: batch or instance (affine-free, no running statistics, as the reference); convs have a
bias only with instance norm (batch norm has its own shift). Outputs of G: tanh, in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.nets.init import dcgan_init_

MAX_MULT = 8  # channel multiplier cap: width * 8 (512 at width 64), as the reference
PATCH_FRACTION = 0.5  # patch_layers=0 picks the largest patch no wider than half the image


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm2d, or InstanceNorm2d without affine parameters or running statistics."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def level_width(width: int, level: int) -> int:
    """Channels at encoder level `level`: width * min(2^level, 8)."""
    return width * min(2**level, MAX_MULT)


def unet_depth(resolution: int) -> int:
    """Encoder levels of a U-Net down to 1x1: log2(R); R must be a power of two >= 8."""
    if resolution < 8 or resolution & (resolution - 1):
        raise GanforgeError(
            f"model.translator=unet and encoder-decoder halve the image down to 1x1, so its "
            f"side must be a power of two (at least 8); this data is {resolution}x{resolution}."
            " Set data.resolution to 32, 64, 128 or 256 (Fashion-MNIST: 32), or use "
            "model.translator=resnet (any side divisible by 4)."
        )
    return resolution.bit_length() - 1


class UNet(nn.Module):
    """U-Net generator (skips=True) or the plain encoder-decoder (skips=False)."""

    def __init__(
        self, in_channels: int, out_channels: int, resolution: int, width: int = 64,
        norm: str = "batch", dropout: float = 0.5, skips: bool = True,
    ) -> None:
        super().__init__()
        self.skips = skips
        depth = unet_depth(resolution)
        bias = norm == "instance"
        self.down = nn.ModuleList()
        for i in range(depth):
            c_in = in_channels if i == 0 else level_width(width, i - 1)
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in, level_width(width, i), 4, 2, 1, bias=bias))
            if 0 < i < depth - 1:
                layers.append(norm_layer(norm, level_width(width, i)))
            self.down.append(nn.Sequential(*layers))
        dropped = range(max(1, depth - 4), depth - 1)
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # self.up[0] is the innermost block
            c_in = level_width(width, i) * (2 if skips and i < depth - 1 else 1)
            outer = i == 0
            c_out = out_channels if outer else level_width(width, i - 1)
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias or outer)]
            if outer:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, c_out))
                if dropout > 0 and i in dropped:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        dcgan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate a batch (N, C_in, R, R) in [-1, 1] to (N, C_out, R, R)."""
        encoded = []
        for block in self.down:
            x = block(x)
            encoded.append(x)
        h = self.up[0](encoded[-1])
        for block, skip in zip(self.up[1:], reversed(encoded[:-1])):
            h = block(torch.cat([skip, h], dim=1) if self.skips else h)
        return h


class ResidualBlock(nn.Module):
    """x + (reflect pad, conv3, norm, ReLU, reflect pad, conv3, norm)(x)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        bias = norm == "instance"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's residual added to its input."""
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Johnson et al. 2016's transfer net): down 2x, residual, up 2x."""

    def __init__(
        self, in_channels: int, out_channels: int, resolution: int, width: int = 64,
        norm: str = "instance", blocks: int = 6,
    ) -> None:
        super().__init__()
        if resolution % 4:
            raise GanforgeError(
                f"model.translator=resnet halves the image twice, so its side must be "
                f"divisible by 4; this data is {resolution}x{resolution}. Set data.resolution "
                "(e.g. 32 for Fashion-MNIST)."
            )
        bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
            norm_layer(norm, width), nn.ReLU(),
        ]
        for k in (1, 2):
            c = width * 2 ** (k - 1)
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU()]
        layers += [ResidualBlock(4 * width, norm) for _ in range(blocks)]
        for k in (2, 1):
            c = width * 2**k
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                norm_layer(norm, c // 2), nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate a batch (N, C_in, R, R) in [-1, 1] to (N, C_out, R, R)."""
        return self.net(x)


def patch_layer_specs(layers: int) -> list[tuple[int, int]]:
    """(kernel, stride) of a PatchGAN's convs: `layers` stride-2 ones, then two stride-1."""
    return [(4, 2)] * layers + [(4, 1), (4, 1)]


def receptive_field(specs: list[tuple[int, int]]) -> int:
    """Side of the input patch one output unit sees, from the (kernel, stride) of each layer:
    r = 1, then r = (r - 1) * stride + kernel from the last layer back to the first."""
    r = 1
    for kernel, stride in reversed(specs):
        r = (r - 1) * stride + kernel
    return r


def fits(layers: int, resolution: int) -> bool:
    """Whether a PatchGAN of `layers` strided layers gives at least one patch at R."""
    return resolution // 2**layers - 2 >= 1


def auto_patch_layers(resolution: int) -> int:
    """The most strided layers whose patch is at most half the image (3, 70x70, at 256;
    1, 16x16, at 32), at least 1."""
    best = 1
    for layers in range(1, 9):
        small = receptive_field(patch_layer_specs(layers)) <= PATCH_FRACTION * resolution
        if small and fits(layers, resolution):
            best = layers
    return best


class PatchDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch, (N, 1, h, w)."""

    def __init__(
        self, in_channels: int, resolution: int, width: int = 64, layers: int = 3,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if not fits(layers, resolution):
            raise GanforgeError(
                f"model.patch_layers={layers} leaves no patch of a {resolution}x{resolution} "
                f"image; use at most {max(k for k in range(1, 9) if fits(k, resolution))} (or 0 "
                "to choose automatically)."
            )
        bias = norm == "instance"
        convs: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for n in range(1, layers + 1):
            stride = 2 if n < layers else 1
            c_out = level_width(width, n)
            convs += [
                nn.Conv2d(c, c_out, 4, stride, 1, bias=bias), norm_layer(norm, c_out),
                nn.LeakyReLU(0.2),
            ]
            c = c_out
        convs.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*convs)
        self.layers = layers
        dcgan_init_(self)

    @property
    def receptive_field(self) -> int:
        """The patch side one output logit sees, computed from the net's own conv layers."""
        specs = [
            (m.kernel_size[0], m.stride[0]) for m in self.net.modules() if isinstance(m, nn.Conv2d)
        ]
        return receptive_field(specs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits (N, 1, h, w) for images (N, C, R, R)."""
        return self.net(x)
