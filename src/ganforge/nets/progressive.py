"""Progressive growing of G and D (Karras et al. 2018), one implementation for every resolution.

Both nets are built whole, for the final resolution R (a power of two from 16 to 256), and
use only their first levels while growing: level 0 works at 4x4, level k at 4 * 2^k. The
schedule (`growth_stage`) is a pure function of the images shown so far, so exact resume
needs nothing beyond the step count; the current (level, alpha) also lives in a `stage`
buffer, so a checkpoint's nets know where they were.

- Phases of model.phase_images images each: level 0 stable, then for each new level a fade-in
  (alpha rising linearly from 0 to 1) followed by a stable phase; the last level stays.
- G: pixel-normalized z -> dense to 4x4 -> conv 3x3; per level: nearest x2, two conv 3x3;
  every conv followed by LeakyReLU and pixel norm; a 1x1 toRGB per level. While level k
  fades in, the image is lerp(up2(toRGB_{k-1}(h_{k-1})), toRGB_k(h_k), alpha).
- D mirrors it: a 1x1 fromRGB per level, per level two conv 3x3 and /2 average pooling, the
  4x4 epilogue with minibatch std (model.mbstd_group), a dense score. While level k fades in,
  its block's output is lerp(fromRGB_{k-1}(pool2(x_k)), block_k(fromRGB_k(x_k)), alpha).
- Every layer has an equalized learning rate (nets/equalized.py).

The nets keep the loop's shapes fixed: G's image at the current resolution r is upsampled
(nearest) to R, and D average-pools its R x R input to r, which undoes that upsampling
exactly, so D sees G's r x r image and real images downsampled to r. `current_resolution`
tells the loop what the sample grids should show, and `growing` whether evaluation (at R
only) should wait.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

BASE = 4  # every grown net starts at 4x4


def growth_stage(images: int, phase_images: int, levels: int) -> tuple[int, float]:
    """(level, alpha) after `images` images: phase p = images // phase_images; phase 0 is
    level 0; odd phase 2k - 1 fades level k in (alpha = fraction of the phase done); even
    phase 2k holds level k at alpha 1; from phase 2 * levels on, the last level stays."""
    phase = images // phase_images
    if phase >= 2 * levels:
        return levels, 1.0
    level = (phase + 1) // 2
    if phase % 2 == 1:
        return level, (images % phase_images) / phase_images
    return level, 1.0


def growth_images(phase_images: int, levels: int) -> int:
    """Images after which a net of `levels` levels has grown fully (last fade-in done)."""
    return 2 * levels * phase_images


class Growing(nn.Module):
    """What a grown net shares: its level count, final resolution and `stage` buffer.

    The buffer carries the stage into checkpoints; forward passes read a Python copy of it
    (kept in step by set_stage and state-dict loading), so no pass waits on the device.
    """

    def __init__(self, resolution: int, name: str) -> None:
        super().__init__()
        self.levels = check_resolution(resolution, name, BASE)
        self.resolution = resolution
        self.register_buffer("stage", torch.tensor([float(self.levels), 1.0]))
        self._stage = (self.levels, 1.0)

    def set_stage(self, level: int, alpha: float) -> None:
        """Work at `level` (0 is 4x4) with the newest level faded in by alpha in [0, 1]."""
        if not 0 <= level <= self.levels or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"stage ({level}, {alpha}) outside 0..{self.levels}, [0, 1]")
        stage = torch.tensor([float(level), float(alpha)])  # float32, as the buffer holds it
        self.stage.copy_(stage)
        self._stage = (int(level), float(stage[1]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Load as nn.Module does, then refresh the Python copy of the stage."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        level, alpha = self.stage.tolist()
        self._stage = (int(level), float(alpha))

    def current(self) -> tuple[int, float]:
        """(level, alpha) now."""
        return self._stage

    @property
    def current_resolution(self) -> int:
        """Side of the images this net makes or judges now."""
        return BASE * 2 ** self.current()[0]


def growing_parts(module: nn.Module) -> list[Growing]:
    """Every grown net inside module (wrappers such as the conditional ones included)."""
    return [m for m in module.modules() if isinstance(m, Growing)]


def set_growth(parts: Iterable[Growing], images: int, phase_images: int) -> None:
    """Put every grown net in `parts` at its stage after `images` images."""
    for part in parts:
        part.set_stage(*growth_stage(images, phase_images, part.levels))


def current_resolution(module: nn.Module) -> int | None:
    """The resolution a grown generator works at now; None for nets that do not grow."""
    parts = growing_parts(module)
    return min(p.current_resolution for p in parts) if parts else None


def growing(module: nn.Module) -> bool:
    """True while any grown net inside module is below its last level or mid-fade."""
    return any(p.current() != (p.levels, 1.0) for p in growing_parts(module))


def _upsample(x: Tensor, factor: int) -> Tensor:
    """Nearest-neighbour upsampling by an integer factor (1: unchanged)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=float(factor), mode="nearest")


def _pool(x: Tensor, factor: int) -> Tensor:
    """Average pooling by an integer factor (1: unchanged)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


class ProgressiveGenerator(Growing):
    """z -> 4x4 base -> one x2 block per level -> toRGB of the current level (see module doc)."""

    def __init__(self, z_dim: int, channels: int, resolution: int, width: int,
                 out_act: str) -> None:
        super().__init__(resolution, "progressive")
        self.z_dim = z_dim
        chs = level_channels(self.levels, resolution, width)
        self.c0 = chs[0]
        self.dense = nn.Sequential(PixelNorm(), EqualizedLinear(z_dim, chs[0] * BASE * BASE))
        self.base = nn.Sequential(ScaledLeakyReLU(), PixelNorm(), *conv_act(chs[0], chs[0]),
                                  PixelNorm())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                          *conv_act(c_in, c_out), PixelNorm(), *conv_act(c_out, c_out),
                          PixelNorm())
            for c_in, c_out in itertools.pairwise(chs)
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1) for c in chs)
        self.out = out_activation(out_act)

    def forward(self, z: Tensor) -> Tensor:
        """(N, z_dim) -> (N, C, R, R): the current level's image, upsampled to R."""
        level, alpha = self.current()
        h = self.base(self.dense(z).view(z.shape[0], self.c0, BASE, BASE))
        before = h
        for block in self.blocks[:level]:
            before, h = h, block(h)
        image = self.to_rgb[level](h)
        if level > 0 and alpha < 1.0:
            previous = _upsample(self.to_rgb[level - 1](before), 2)
            image = torch.lerp(previous, image, alpha)
        return self.out(_upsample(image, self.resolution // self.current_resolution))


class ProgressiveDiscriminator(Growing, ScoredDiscriminator):
    """Image -> fromRGB at the current level -> /2 blocks down to 4x4 -> epilogue -> score."""

    def __init__(self, channels: int, resolution: int, width: int, mbstd_group: int) -> None:
        super().__init__(resolution, "progressive")
        chs = level_channels(self.levels, resolution, width)
        self.from_rgb = nn.ModuleList(
            nn.Sequential(*conv_act(channels, c, kernel=1)) for c in chs
        )
        # blocks[k - 1] takes level k (chs[k] channels) down to level k - 1
        self.blocks = nn.ModuleList(
            nn.Sequential(*conv_act(c_hi, c_hi), *conv_act(c_hi, c_lo), nn.AvgPool2d(2))
            for c_lo, c_hi in itertools.pairwise(chs)
        )
        self.epilogue = Epilogue(chs[0], mbstd_group)
        self.head = EqualizedLinear(chs[0], 1)

    def features(self, x: Tensor) -> Tensor:
        """(N, C, R, R) -> (N, F) features, judged at the current resolution."""
        level, alpha = self.current()
        x = _pool(x, self.resolution // self.current_resolution)
        h = self.from_rgb[level](x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1.0:
                h = torch.lerp(self.from_rgb[level - 1](_pool(x, 2)), h, alpha)
            for block in reversed(self.blocks[: level - 1]):
                h = block(h)
        return self.epilogue(h)
