"""DiffAugment: the same differentiable augmentation of D's real and fake inputs.

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training": with little
data D memorizes the real images; augmenting only the reals teaches G the augmentations, so
both reals and fakes are augmented, in D's step and in G's step, by operations that are
differentiable with respect to the images so that G's gradient passes through them.

Three policies, in the paper's order and with its ranges (one draw per image):
- `color`: brightness adds b, then saturation scales each pixel's deviation from its channel
  mean by s, then contrast scales each image's deviation from its mean by c, with
  b ~ U[-1, 1), s ~ U[0, 2), c ~ U[0.5, 1.5). The paper draws b ~ U[-0.5, 0.5) for images in
  [0, 1]; ours are in [-1, 1], twice as wide, so the same shift is 2 * U[-0.5, 0.5) = U[-1, 1).
  Saturation and contrast scale deviations from a mean, which rescaling the range leaves alone.
- `translation`: an integer shift of up to round(size / 8) pixels along each axis (uniform over
  [-s, s], inclusive), filling uncovered pixels with 0 (mid-grey in [-1, 1]).
- `cutout`: one square of round(size / 2) pixels per side, centred uniformly on the image and
  clipped at its borders, set to 0.

The random parameters are drawn apart from the images (`draw`, from a CPU generator, so a run is
reproducible on any device) and applied by `apply`; applying the same parameters to the real and
the fake batch of a step augments both identically. `augment` does both at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganforge.errors import unknown_name

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8  # largest shift, as a share of the image size (paper: 0.125)
CUTOUT_RATIO = 1 / 2  # side of the cut-out square, as a share of the image size (paper: 0.5)

Params = dict[str, Tensor]


def _share(size: int, ratio: float) -> int:
    """`ratio * size` rounded half up to whole pixels, as the paper's code rounds it."""
    return int(size * ratio + 0.5)


def draw(
    policy: list[str], n: int, height: int, width: int, channels: int, generator: torch.Generator
) -> Params:
    """All random parameters for n images of the given shape, on the CPU, from `generator`.

    Policies are drawn in POLICIES order whatever their order in `policy`, so the same seed
    gives the same parameters. The entry "shape" records (n, channels, height, width); `apply`
    checks images against it. An empty policy draws nothing and returns {}.
    """
    for name in policy:
        if name not in POLICIES:
            raise unknown_name(
                "DiffAugment policy", name, list(POLICIES), "Fix stabilize.diffaugment."
            )
    if not policy:
        return {}
    params: Params = {"shape": torch.tensor([n, channels, height, width])}

    def uniform(low: float, high: float) -> Tensor:
        """n values ~ U[low, high), shaped to broadcast over (n, C, H, W)."""
        return low + (high - low) * torch.rand(n, 1, 1, 1, generator=generator)

    if "color" in policy:
        params["brightness"] = uniform(-1.0, 1.0)  # paper's U[-0.5, 0.5) on [0, 1], doubled
        params["saturation"] = uniform(0.0, 2.0)
        params["contrast"] = uniform(0.5, 1.5)
    if "translation" in policy:
        shifts = []
        for size in (height, width):
            s = _share(size, TRANSLATION_RATIO)
            shifts.append(torch.randint(-s, s + 1, (n,), generator=generator))
        params["translation"] = torch.stack(shifts, dim=1)  # (n, 2): (rows, cols) shifts
    if "cutout" in policy:
        centres = []
        for size in (height, width):
            side = _share(size, CUTOUT_RATIO)
            # the paper's centre range: [0, size] for an even side, [0, size) for an odd one
            centres.append(torch.randint(0, size + 1 - side % 2, (n,), generator=generator))
        params["cutout"] = torch.stack(centres, dim=1)  # (n, 2): (row, col) square centres
    return params


def _color(x: Tensor, params: Params) -> Tensor:
    """Brightness, then saturation, then contrast, each around the mean of its input."""
    b, s, c = (params[k].to(x.device, x.dtype) for k in ("brightness", "saturation", "contrast"))
    x = x + b
    mean = x.mean(dim=1, keepdim=True)  # per pixel, over channels
    x = (x - mean) * s + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # per image
    return (x - mean) * c + mean


def _translation(x: Tensor, shifts: Tensor) -> Tensor:
    """Shift image i by shifts[i] = (dy, dx): out[h, w] = x[h - dy, w - dx], 0 outside."""
    n, _, height, width = x.shape
    shifts = shifts.to(x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1) - shifts[:, 0].view(n, 1, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width) - shifts[:, 1].view(n, 1, 1)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # (n, H, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # gather from clamped indices, then zero what came from outside: differentiable in x
    picked = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, height - 1), cols.clamp(0, width - 1)]
    return torch.where(inside.unsqueeze(1), picked.permute(0, 3, 1, 2), 0.0)


def _cutout(x: Tensor, centres: Tensor) -> Tensor:
    """Zero, in image i, the square of half the image size centred at centres[i]."""
    n, _, height, width = x.shape
    centres = centres.to(x.device)
    hits = []
    for axis, size in ((0, height), (1, width)):
        side = _share(size, CUTOUT_RATIO)
        start = centres[:, axis] - side // 2  # may be negative: the square is clipped
        pos = torch.arange(size, device=x.device).view(1, size)
        hits.append((pos >= start.view(n, 1)) & (pos < (start + side).view(n, 1)))  # (n, size)
    keep = ~(hits[0].view(n, height, 1) & hits[1].view(n, 1, width))  # (n, H, W)
    return torch.where(keep.unsqueeze(1), x, 0.0)


def apply(x: Tensor, params: Params) -> Tensor:
    """x (N, C, H, W) augmented by `params` from `draw`; differentiable in x, x left unchanged.

    Returns x itself when params hold no augmentation (empty policy).
    """
    if "shape" in params and tuple(x.shape) != tuple(params["shape"].tolist()):
        raise ValueError(
            f"DiffAugment parameters drawn for shape {tuple(params['shape'].tolist())} "
            f"applied to images of shape {tuple(x.shape)}"
        )
    if "brightness" in params:
        x = _color(x, params)
    if "translation" in params:
        x = _translation(x, params["translation"])
    if "cutout" in params:
        x = _cutout(x, params["cutout"])
    return x


def augment(x: Tensor, policy: list[str], generator: torch.Generator) -> Tensor:
    """x augmented with freshly drawn parameters: apply(x, draw(policy, ...))."""
    if not policy:
        return x
    n, channels, height, width = x.shape
    return apply(x, draw(policy, n, height, width, channels, generator))
