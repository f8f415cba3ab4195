"""Conversions between model scale ([-1, 1] float) and uint8 pixels, and image grids as PNG.

Inside ganforge images are NCHW floats in [-1, 1]; at the edges (files, metric input) uint8.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.fileio import atomic_write


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model-scale images in [-1, 1] to uint8 pixels (values outside are clamped)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to model-scale float32 images in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (N, C, H, W) into one HWC uint8 array (C = 1 or 3), padded in black."""
    if images.dtype != torch.uint8:
        raise TypeError("make_grid expects uint8 images; convert with to_uint8 first")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.uint8)
    pixels = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write an HWC uint8 array (1 or 3 channels) as a PNG, atomically."""
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def save_image(array: np.ndarray, path: str | Path) -> Path:
    """Write an HWC uint8 array (1 or 3 channels) atomically, in the format its suffix names
    (.png, .jpg, .webp, .bmp ...)."""
    path = Path(path)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save model-scale or uint8 images (N, C, H, W) as one PNG grid."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    return save_png(make_grid(images, nrow=nrow), path)


def caption_strip(captions: list[str], row_height: int, pad: int = 2) -> np.ndarray:
    """White-on-black text, one caption per grid row, as an HW uint8 array for beside a grid."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default()
    width = max(int(font.getlength(text)) for text in captions) + 8 if captions else 8
    strip = Image.new("L", (width, len(captions) * (row_height + pad) + pad))
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(captions):
        draw.text((4, pad + i * (row_height + pad) + row_height // 2), text, fill=255,
                  font=font, anchor="lm")
    return np.asarray(strip)


def save_captioned_grid(
    images: torch.Tensor, path: str | Path, nrow: int | None, captions: list[str]
) -> Path:
    """A grid with one row per caption and each caption printed left of its row."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    grid = make_grid(images, nrow=nrow)
    strip = caption_strip(captions, images.shape[-2])[: grid.shape[0]]
    strip = np.pad(strip, ((0, grid.shape[0] - strip.shape[0]), (0, 0)))
    strip = np.repeat(strip[..., None], grid.shape[-1], axis=-1)
    return save_png(np.concatenate([strip, grid], axis=1), path)
