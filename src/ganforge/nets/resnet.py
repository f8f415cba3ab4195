"""ResNet G and D of SNGAN (Miyato et al. 2018, appendix B), one implementation for every size.

Resolution R is 28 (base 7x7, two x2 levels) or a power of two from 16 to 256 (base 4x4,
log2(R) - 2 levels), the plan DCGAN uses. Every block keeps one channel count: g_width in G,
d_width in D (SNGAN's CIFAR-10 nets use 256 and 128).

- G: Linear(z -> base * base * ch) -> one up ResBlock per level (BN, ReLU, nearest x2, conv3x3,
  BN, ReLU, conv3x3; shortcut: nearest x2, conv1x1) -> BN -> ReLU -> conv3x3 -> out_act.
- D: an "optimized" first block (conv3x3, ReLU, conv3x3, avgpool2; shortcut: avgpool2,
  conv1x1), down ResBlocks (ReLU, conv3x3, ReLU, conv3x3, avgpool2; shortcut: conv1x1,
  avgpool2) until the base size, one ResBlock without downsampling, ReLU, global sum pooling
  -> features (N, ch) -> head Linear(ch, 1).

D has no normalization layers, so model.d_norm is ignored: SNGAN normalizes D with spectral
norm (set model.spectral_norm=d). Layers keep PyTorch's default initialization (the authors'
code uses Xavier-uniform; either trains), so init_std is None and layers added around these
nets use the defaults too.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.nets.dcgan import image_shape, plan
from ganforge.nets.layers import ScoredDiscriminator, out_activation


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3x3 convolution that keeps the spatial size."""
    return nn.Conv2d(c_in, c_out, 3, 1, 1)


def _pool(down: bool) -> list[nn.Module]:
    """[AvgPool2d(2)] for a downsampling block, else []."""
    return [nn.AvgPool2d(2)] if down else []


class UpBlock(nn.Module):
    """G's residual block: x2 nearest upsampling, two 3x3 convs with BN and ReLU before each."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Upsample(scale_factor=2.0, mode="nearest"),
            conv3x3(c_in, c_out), nn.BatchNorm2d(c_out), nn.ReLU(), conv3x3(c_out, c_out),
        )
        self.shortcut = nn.Sequential(
            nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c_in, c_out, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, c_in, H, W) -> (N, c_out, 2H, 2W)."""
        return self.residual(x) + self.shortcut(x)


class DownBlock(nn.Module):
    """D's residual block: two 3x3 convs, then /2 average pooling when `down`.

    `first` is SNGAN's optimized first block, which reads the image: no ReLU before its first
    conv, and its shortcut pools before the 1x1 conv (cheaper, same function). A block that
    neither downsamples nor changes channels has the identity as shortcut.
    """

    def __init__(self, c_in: int, c_out: int, down: bool = True, first: bool = False) -> None:
        super().__init__()
        pre: list[nn.Module] = [] if first else [nn.ReLU()]
        self.residual = nn.Sequential(
            *pre, conv3x3(c_in, c_out), nn.ReLU(), conv3x3(c_out, c_out), *_pool(down),
        )
        shortcut: list[nn.Module] = []
        if down or c_in != c_out:
            conv = nn.Conv2d(c_in, c_out, 1)
            shortcut = [*_pool(down), conv] if first else [conv, *_pool(down)]
        self.shortcut = nn.Sequential(*shortcut)  # empty Sequential = identity

    def forward(self, x: Tensor) -> Tensor:
        """(N, c_in, H, W) -> (N, c_out, H/2, W/2), or (N, c_out, H, W) without `down`."""
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """z -> Linear to ch x base x base -> one up ResBlock per level -> BN, ReLU, conv3x3 -> out."""

    init_std: float | None = None  # PyTorch default init; layers added around it use defaults

    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, out_act: str):
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.base, ups = plan(resolution, "ResNet")
        self.project = nn.Linear(z_dim, self.base * self.base * width)
        self.blocks = nn.Sequential(*(UpBlock(width, width) for _ in range(ups)))
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), conv3x3(width, channels), out_activation(out_act),
        )

    def forward(self, z: Tensor) -> Tensor:
        """(N, z_dim) noise -> (N, C, R, R) images."""
        h = self.project(z).view(z.shape[0], self.width, self.base, self.base)
        return self.out(self.blocks(h))


class ResNetDiscriminator(ScoredDiscriminator):
    """Image -> optimized block, down blocks to base size, one plain block -> ReLU, sum -> score.

    No normalization layers (use spectral norm, as SNGAN does).
    """

    init_std: float | None = None  # PyTorch default init; layers added around it use defaults

    def __init__(self, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        _, downs = plan(resolution, "ResNet")
        blocks = [DownBlock(channels, width, first=True)]
        blocks += [DownBlock(width, width) for _ in range(downs - 1)]
        blocks += [DownBlock(width, width, down=False), nn.ReLU()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 1)

    def pool(self, h: Tensor) -> Tensor:
        """Global sum pooling: (N, F, H, W) -> (N, F), F = width."""
        return h.sum(dim=(2, 3))


def build(
    z_dim: int, data_shape: tuple[int, ...], g_width: int, d_width: int, out_act: str,
) -> tuple[ResNetGenerator, ResNetDiscriminator]:
    """The ResNet pair for square images of a supported size."""
    channels, resolution = image_shape(data_shape, "ResNet")
    generator = ResNetGenerator(z_dim, channels, resolution, g_width, out_act)
    return generator, ResNetDiscriminator(channels, resolution, d_width)
