"""`folder:PATH`: every image under a folder (recursive), decoded once, cached as safetensors.

Files: .png .jpg .jpeg .webp .bmp, any case, in sorted relative-path order; names starting
with '.' (and everything under such folders) are skipped. Each image is resized so its shorter
side is data.resolution (64 when null) and center-cropped square. Channels: data.channels, else
1 when every image is grayscale, else 3; RGBA and palette images are converted to RGB (alpha
dropped, as Pillow's convert does). Labels: when every image sits in a direct subfolder and
there are at least two, the sorted subfolder names are the classes; otherwise no labels.
Unreadable files are skipped with a warning naming them (data.strict: an error instead).
data.split is ignored: a folder is one split. Captions (metadata.jsonl / metadata.csv at the
root, or IMAGE.txt beside each image) are read by data/captions.py; when a folder has them,
only its captioned images are loaded (the others are named in a warning, or an error with
data.strict), and each example keeps its captions in the order of x.

The decoded tensor is saved in the user cache, keyed by a hash of the folder's path, its sorted
file list with a BLAKE2b hash of each file's bytes, and the resolution, channels and limit, so a
second build decodes nothing; any change to the files makes a new key. The 8 most recently
used entries are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ganforge.config import DataConfig
from ganforge.data.captions import folder_captions
from ganforge.data.dataset import Dataset
from ganforge.data.paths import user_cache_dir
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write, file_digest

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_RESOLUTION = 64
CACHE_FORMAT = "ganforge-folder-v2"  # v2: keyed on file contents
GRAY_BANDS = {("L",), ("1",), ("I",), ("F",), ("L", "A")}
SHOW_FIRST = 5  # unreadable files named in a message
BATCH = 256  # files decoded per thread-pool round (a limit stops between rounds)
CACHE_ENTRIES = 8  # decoded folders kept in the cache, most recently used first


@dataclass
class Decoded:
    """Decoded, resized images with their class indices and the files that failed."""

    images: list[torch.Tensor]  # each (1, C, R, R) uint8, C = 1 or 3
    labels: list[int]
    skipped: list[tuple[str, str]]  # (relative path, reason)


def scan(root: Path) -> list[Path]:
    """Image files under root, recursively, sorted by relative path; hidden names skipped."""
    found = []
    for directory, subdirs, files in os.walk(root, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found += [
            Path(directory, f) for f in files
            if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)
        ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def class_layout(root: Path, files: list[Path]) -> tuple[list[int], list[str]] | None:
    """(class index per file, class names) when every file sits in a direct subfolder."""
    parts = [f.relative_to(root).parts for f in files]
    if any(len(p) != 2 for p in parts):
        return None
    names = sorted({p[0] for p in parts})
    if len(names) < 2:
        return None
    index = {name: i for i, name in enumerate(names)}
    return [index[p[0]] for p in parts], names


def why_unlabelled(root: Path, files: list[Path]) -> str:
    """Why a folder gives no class labels, and how to lay it out so that it does."""
    parts = [f.relative_to(root).parts for f in files]
    elsewhere = [Path(*p).as_posix() for p in parts if len(p) != 2]
    layout = f"{root}/CLASS_NAME/IMAGE.png, one subfolder per class"
    if elsewhere:
        return (
            f"{len(elsewhere)} of its {len(files)} images do not sit in a direct subfolder "
            f"(e.g. '{elsewhere[0]}'); class labels need the layout {layout}"
        )
    return (
        f"all its images sit in the single subfolder '{parts[0][0]}', so there is one class; "
        f"a class-conditional GAN needs at least two: {layout}"
    )


def cache_key(root: Path, files: list[Path], resolution: int, cfg: DataConfig) -> str:
    """Hash of everything the decoded tensor depends on: paths, file contents, settings.

    Contents, not size and mtime: a same-size file copied with its mtime kept (cp -p, rsync -t,
    tar) must not return stale pixels. BLAKE2b reads at disk speed, far faster than decoding.
    """
    listing = [[f.relative_to(root).as_posix(), file_digest(f, "blake2b")] for f in files]
    blob = json.dumps(
        [CACHE_FORMAT, str(root), listing, resolution, cfg.channels, cfg.limit],
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def pixels(image: Image.Image) -> np.ndarray:
    """A PIL image as an HWC uint8 array, with 1 (gray) or 3 (RGB) channels."""
    if image.getbands() in GRAY_BANDS:
        if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit gray: scale to 8 bits
            array = np.asarray(image, dtype=np.float64)
            top = 255.0 if array.max() <= 255 else 65535.0
            return np.rint(np.clip(array, 0, top) * (255.0 / top)).astype(np.uint8)[..., None]
        return np.array(image.convert("L"))[..., None]
    return np.array(image.convert("RGB"))


def decode_image(path: Path, resolution: int) -> torch.Tensor:
    """One file as a (1, C, R, R) uint8 tensor: decoded, resized (shorter side), cropped."""
    with Image.open(path) as image:
        image.draft(image.mode, (resolution, resolution))  # JPEG: decode at a reduced scale
        image.load()
        array = pixels(image)
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0)
    return resize_square(tensor, resolution)


def try_decode(path: Path, resolution: int) -> torch.Tensor | str:
    """decode_image, or the reason it failed (any error: the message names it, not hides it)."""
    try:
        return decode_image(path, resolution)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        return f"{type(exc).__name__}: {exc}"


def decode_all(
    root: Path, files: list[Path], classes: list[int] | None, resolution: int, limit: int | None
) -> Decoded:
    """Decode files in order on a thread pool, until `limit` images have decoded (if set)."""
    out = Decoded([], [], [])
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            for i, result in enumerate(pool.map(lambda f: try_decode(f, resolution), chunk)):
                rel = chunk[i].relative_to(root).as_posix()
                if isinstance(result, str):
                    out.skipped.append((rel, result))
                    continue
                out.images.append(result)
                out.labels.append(classes[start + i] if classes else -1)
            if limit is not None and len(out.images) >= limit:
                out.images, out.labels = out.images[:limit], out.labels[:limit]
                break
    return out


def describe_skipped(root: Path, skipped: list[tuple[str, str]]) -> str:
    """'N unreadable file(s) under ROOT: a.png (reason), ...' naming the first few."""
    shown = "; ".join(f"{name} ({reason})" for name, reason in skipped[:SHOW_FIRST])
    more = f"; and {len(skipped) - SHOW_FIRST} more" if len(skipped) > SHOW_FIRST else ""
    return f"{len(skipped)} unreadable image file(s) under '{root}': {shown}{more}"


def report_skipped(root: Path, skipped: list[tuple[str, str]], strict: bool) -> None:
    """Warn about unreadable files, or raise with data.strict."""
    if not skipped:
        return
    text = describe_skipped(root, skipped)
    if strict:
        raise GanforgeError(
            f"{text}. data.strict is true, so ganforge stops; remove or fix these files, "
            "or set data.strict=false to skip them."
        )
    warnings.warn(f"{text}. Skipped (set data.strict=true to stop instead).", stacklevel=3)


def stack(images: list[torch.Tensor], channels: int | None) -> torch.Tensor:
    """The images as one (N, C, R, R) tensor; C = channels, else 1 if all gray, else 3."""
    if channels is None:
        channels = 1 if all(img.shape[1] == 1 for img in images) else 3
    return torch.cat([match_channels(img, channels) for img in images])


def prune_cache(folder: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used cache entries (each folder edit adds one)."""
    entries = sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)


def save_cache(path: Path, x: torch.Tensor, labels: torch.Tensor | None, meta: dict) -> None:
    """Write the decoded tensor (and labels) to the cache atomically; warn if it cannot."""
    tensors = {"x": x} if labels is None else {"x": x, "labels": labels}
    metadata = {"format": CACHE_FORMAT, "meta": json.dumps(meta)}
    try:
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
        prune_cache(path.parent, CACHE_ENTRIES)
    except OSError as exc:
        warnings.warn(f"Could not write the image cache {path}: {exc}", stacklevel=3)


def load_cache(path: Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The cached tensors and metadata, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != CACHE_FORMAT or "x" not in tensors:
            return None
        os.utime(path)  # most recently used: pruned last
        return tensors, json.loads(metadata["meta"])
    except (OSError, SafetensorError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable image cache %s: %s", path, exc)
        return None


def check_root(root: Path, source: str) -> list[Path]:
    """The image files of an existing, non-empty folder; clear errors otherwise."""
    if not root.exists():
        raise GanforgeError(f"data.source '{source}': folder '{root}' does not exist.")
    if not root.is_dir():
        hint = " For arrays use npz:PATH or npy:PATH." if root.suffix in (".npz", ".npy") else ""
        raise GanforgeError(f"data.source '{source}': '{root}' is a file, not a folder.{hint}")
    files = scan(root)
    if not files:
        raise GanforgeError(
            f"data.source '{source}': no images ({', '.join(IMAGE_SUFFIXES)}) under '{root}'. "
            "Point folder: at the folder that holds them (subfolders are searched too)."
        )
    return files


def decode_folder(root: Path, files: list[Path], resolution: int, cfg: DataConfig) -> tuple:
    """Decode a folder into (x, labels or None, metadata) and report unreadable files."""
    print(f"ganforge: decoding {len(files)} images under {root} (cached for next time)",
          file=sys.stderr, flush=True)
    layout = class_layout(root, files)
    decoded = decode_all(root, files, layout[0] if layout else None, resolution, cfg.limit)
    report_skipped(root, decoded.skipped, cfg.strict)
    if not decoded.images:
        raise GanforgeError(
            f"None of the {len(files)} image files under '{root}' could be read; "
            + describe_skipped(root, decoded.skipped)
        )
    x = stack(decoded.images, cfg.channels)
    labels = torch.tensor(decoded.labels, dtype=torch.int64) if layout else None
    meta = {"class_names": layout[1] if layout else None, "skipped": decoded.skipped}
    return x, labels, meta


def from_cache(path: Path, root: Path, strict: bool) -> tuple | None:
    """(x, labels, meta) of a cache hit, after re-reporting its skipped files; None on a miss."""
    hit = load_cache(path)
    if hit is None:
        return None
    tensors, meta = hit
    report_skipped(root, [(name, reason) for name, reason in meta.get("skipped", [])], strict)
    return tensors["x"], tensors.get("labels"), meta


def decoded_captions(
    root: Path, files: list[Path], meta: dict, count: int, table: dict[str, list[str]]
) -> list[list[str]]:
    """The captions of the `count` decoded images: the files in order, less the skipped ones."""
    skipped = {name for name, _ in meta.get("skipped", [])}
    names = [f.relative_to(root).as_posix() for f in files]
    return [table[name] for name in names if name not in skipped][:count]


def load_folder(root: Path, cfg: DataConfig) -> Dataset:
    """A folder of images as a uint8 dataset, from the decode cache when it is current; with
    captions when the folder has caption files (then only its captioned images)."""
    files = check_root(root, cfg.source)
    table = folder_captions(root, files, cfg.strict)
    if table is not None:
        files = [f for f in files if f.relative_to(root).as_posix() in table]
    resolution = cfg.resolution or DEFAULT_RESOLUTION
    key = cache_key(root, files, resolution, cfg)
    cache_path = user_cache_dir() / "folders" / f"{key}.safetensors"
    cached = from_cache(cache_path, root, cfg.strict)
    if cached is None:
        cached = decode_folder(root, files, resolution, cfg)
        save_cache(cache_path, *cached)
    x, labels, meta = cached
    names = meta.get("class_names")
    captions = None if table is None else decoded_captions(root, files, meta, len(x), table)
    return Dataset(
        x=x,
        labels=labels,
        name=cfg.source,
        kind="image",
        num_classes=len(names) if names else None,
        class_names=names,
        label_note=None if names else why_unlabelled(root, files),
        captions=captions,
    )
