"""Images a user hands a trained run (`ganforge classify`, `ganforge translate`): an image file
or a folder of them, read as the folder data source reads them, fitted to the run's shape.

A folder is read flat (not recursive; .png .jpg .jpeg .webp .bmp, any case, hidden names
skipped, sorted by name). Gray stays one channel; RGBA and palette images become RGB. Images
of another shape are refused unless the caller asks to resize them (channels matched, shorter
side resized with antialiasing, center crop), as the data sources convert them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.folder import IMAGE_SUFFIXES, pixels
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError

SHOW_FIRST = 3  # mismatched files named in an error


def check_out(out: str | Path, overwrite: bool) -> Path:
    """The output path, refused when it exists (unless overwrite) or is a folder."""
    out = Path(out)
    if out.is_dir():
        raise GanforgeError(f"--out '{out}' is a folder; give a file path.")
    if out.exists() and not overwrite:
        raise GanforgeError(f"'{out}' exists. Pick another --out or pass --overwrite.")
    return out


def shape_text(shape: tuple[int, ...]) -> str:
    """(C, H, W) -> 'CxHxW'."""
    return "x".join(str(s) for s in shape)


def list_images(source: str | Path) -> tuple[list[Path], list[str]]:
    """(files, names relative to source): one file, or a folder's image files sorted by name."""
    source = Path(source)
    if not source.exists():
        raise GanforgeError(
            f"INPUT '{source}' does not exist; give an image file or a folder of images."
        )
    if source.is_file():
        return [source], [source.name]
    files = sorted(
        p for p in source.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_SUFFIXES)
    )
    if not files:
        has_folders = any(p.is_dir() for p in source.iterdir())
        nested = " (subfolders are not searched)" if has_folders else ""
        raise GanforgeError(
            f"No images ({', '.join(IMAGE_SUFFIXES)}) in the folder '{source}'{nested}; give a "
            "folder that holds image files, or one image file."
        )
    return files, [p.name for p in files]


def read_image(path: Path, name: str) -> torch.Tensor:
    """One image file as uint8 (C, H, W), C = 1 (gray) or 3, at its own size."""
    try:
        with Image.open(path) as image:
            image.load()
            array = pixels(image)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        raise GanforgeError(
            f"Cannot read '{name}' as an image ({type(exc).__name__}: {exc}); remove or fix the "
            "file."
        ) from None
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def fit_images(
    images: list[torch.Tensor], names: list[str], shape: tuple[int, ...], resize: bool
) -> tuple[torch.Tensor, int]:
    """The images as one uint8 (N, C, H, W) of the run's shape, and how many were converted."""
    channels, height, width = shape
    wrong = [i for i, img in enumerate(images) if tuple(img.shape) != tuple(shape)]
    if wrong and not resize:
        shown = ", ".join(f"'{names[i]}' ({shape_text(tuple(images[i].shape))})"
                          for i in wrong[:SHOW_FIRST])
        more = f" and {len(wrong) - SHOW_FIRST} more" if len(wrong) > SHOW_FIRST else ""
        raise GanforgeError(
            f"{len(wrong)} of {len(images)} images differ from the run's "
            f"{shape_text(shape)} (channels x height x width): {shown}{more}. Pass --resize to "
            "convert them (channels matched, shorter side resized, center crop), or resize "
            "them yourself."
        )
    if wrong and height != width:
        raise GanforgeError(
            f"--resize makes square images, but this run's images are {height}x{width}; "
            f"resize '{names[wrong[0]]}' and the rest to {shape_text(shape)} yourself."
        )
    convert = set(wrong)
    fitted = [
        resize_square(match_channels(img.unsqueeze(0), channels), height)
        if i in convert else img.unsqueeze(0)
        for i, img in enumerate(images)
    ]
    return torch.cat(fitted), len(wrong)
