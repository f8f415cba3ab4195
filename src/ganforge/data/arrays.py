"""`npz:PATH` and `npy:PATH`: examples stored as numpy arrays (loaded without pickle).

Images: (N, H, W) or (N, H, W, C) with C = 1 or 3; uint8 (or any integer type) are pixels in
[0, 255], floats must lie in [0, 1] (what `ganforge sample` writes). Vectors: (N, D), kept as
float32 in their own scale. An npz holds the examples under `x`, `images` or as its only array,
and optional integer labels under `y` or `labels`. data.split is ignored: one file, one split.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError

EXAMPLE_KEYS = ("x", "images")
LABEL_KEYS = ("y", "labels")
FLOAT_SLACK = 1e-6  # float rounding tolerated beyond [0, 1] before it counts as out of range


def read_npy(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The array of a .npy file, no labels."""
    return np.load(path, allow_pickle=False), None


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples and optional labels of a .npz file, chosen by key name."""
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        x_key = next((k for k in EXAMPLE_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
        if x_key is None:
            raise GanforgeError(
                f"'{path}' holds arrays {keys}; ganforge cannot tell which are the examples. "
                "Save them under the key 'x' (and labels, if any, under 'y'): "
                "np.savez(path, x=examples, y=labels)."
            )
        y_key = next((k for k in LABEL_KEYS if k in keys), None)
        return archive[x_key], (archive[y_key] if y_key else None)


def read_array_file(kind: str, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples and labels of an npy/npz file, with errors that name the file."""
    if not path.is_file():
        raise GanforgeError(f"data.source '{kind}:{path}': no such file. Check the path.")
    try:
        return read_npz(path) if kind == "npz" else read_npy(path)
    except GanforgeError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise GanforgeError(
            f"Cannot read '{path}' as a {kind} file: {exc}. ganforge loads plain numeric arrays "
            "only (no pickled objects); save with np.save / np.savez from numeric arrays."
        ) from None


def image_pixels(x: np.ndarray, path: Path) -> np.ndarray:
    """Image values as uint8 pixels; integers must lie in [0, 255], floats in [0, 1]."""
    if x.dtype == np.uint8:
        return x
    if x.size == 0:
        return x.astype(np.uint8)
    lo, hi = float(x.min()), float(x.max())
    if np.issubdtype(x.dtype, np.integer) and 0 <= lo and hi <= 255:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating) and -FLOAT_SLACK <= lo and hi <= 1 + FLOAT_SLACK:
        return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    wanted = "[0, 1]" if np.issubdtype(x.dtype, np.floating) else "[0, 255]"
    raise GanforgeError(
        f"'{path}' holds {x.dtype} images with values in [{lo:g}, {hi:g}]; ganforge expects "
        f"{wanted} (uint8 pixels in [0, 255], or floats in [0, 1]). Rescale before saving, "
        "e.g. (x + 1) / 2 for images in [-1, 1]."
    )


def to_images(x: np.ndarray, path: Path) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) numbers as uint8 (N, C, H, W) with C = 1 or 3."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        hint = (
            " It looks like NCHW; save x.transpose(0, 2, 3, 1) instead."
            if x.ndim == 4 and x.shape[1] in (1, 3) else ""
        )
        raise GanforgeError(
            f"'{path}' holds an array of shape {x.shape}; images must be (N, H, W) or "
            f"(N, H, W, C) with C = 1 or 3, vectors (N, D).{hint}"
        )
    return torch.from_numpy(np.ascontiguousarray(image_pixels(x, path))).permute(0, 3, 1, 2)


def to_vectors(x: np.ndarray, path: Path) -> torch.Tensor:
    """(N, D) numbers as float32, all finite."""
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise GanforgeError(f"'{path}' holds {x.dtype} values; vectors must be numbers.")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise GanforgeError(f"'{path}' holds NaN or infinite values; remove those rows.")
    return torch.from_numpy(x)


def to_labels(y: np.ndarray, n: int, path: Path) -> tuple[torch.Tensor, int]:
    """Labels (N,) of non-negative integers, and the number of classes (max + 1)."""
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise GanforgeError(
            f"'{path}' labels must be {n} non-negative integers (shape ({n},)); got "
            f"{y.dtype} of shape {y.shape}."
        )
    return torch.from_numpy(y.astype(np.int64)), int(y.max()) + 1


def load_array(kind: str, path: Path, source: str) -> Dataset:
    """An npy/npz file as an image dataset (ndim >= 3) or a vector dataset (ndim == 2)."""
    x, y = read_array_file(kind, path)
    if x.ndim < 2 or len(x) == 0:
        raise GanforgeError(
            f"'{path}' holds an array of shape {x.shape}; it needs at least one example: "
            "images (N, H, W[, C]) or vectors (N, D)."
        )
    is_image = x.ndim >= 3
    data = to_images(x, path) if is_image else to_vectors(x, path)
    labels, num_classes = to_labels(y, len(x), path) if y is not None else (None, None)
    note = None
    if labels is None:
        note = (
            f"'{path}' holds no labels: save them beside the examples in an npz, "
            "np.savez(path, x=examples, y=labels), and use npz:PATH"
        )
    return Dataset(
        x=data,
        labels=labels,
        name=source,
        kind="image" if is_image else "vector",
        num_classes=num_classes,
        label_note=note,
    )
