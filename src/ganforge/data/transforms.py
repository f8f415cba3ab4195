"""The shape changes every image source shares: square resize + center crop, channel count.

All work on uint8 tensors (N, C, H, W) and return uint8, in chunks so a 60k-image dataset never
needs more than a few hundred MB of float temporaries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK = 4096  # images per float temporary

# ITU-R 601-2 luma weights (per mille), the ones Pillow's convert("L") uses.
LUMA_WEIGHTS = (299, 587, 114)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the shorter side is `size` (antialiased bilinear), then center-crop square."""
    _, _, h, w = x.shape
    if h == size and w == size:
        return x
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    parts = []
    for part in x.split(CHUNK):
        if (new_h, new_w) != (h, w):
            part = F.interpolate(
                part.float(), size=(new_h, new_w), mode="bilinear", antialias=True,
                align_corners=False,
            )
            part = part.round_().clamp_(0, 255).to(torch.uint8)
        parts.append(part[:, :, top : top + size, left : left + size])
    return torch.cat(parts).contiguous()


def to_luminance(x: torch.Tensor) -> torch.Tensor:
    """RGB uint8 (N, 3, H, W) to gray (N, 1, H, W) with Pillow's luma weights, rounded."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.int32).view(1, 3, 1, 1)
    parts = [
        ((part.to(torch.int32) * weights).sum(1, keepdim=True) + 500).div_(
            1000, rounding_mode="floor"
        ).to(torch.uint8)
        for part in x.split(CHUNK)
    ]
    return torch.cat(parts)


def match_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Images (N, C, H, W) with C in 1/3 to `channels`: gray is tiled, RGB becomes luminance."""
    have = x.shape[1]
    if channels is None or have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        return to_luminance(x)
    raise ValueError(f"cannot convert {have} channels to {channels}")  # a bug in ganforge
