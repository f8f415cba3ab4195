"""`folder:PATH`: every image under a folder (recursive), decoded once into a memory-mapped cache.

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

The decoded images are cached in the user cache (folders/), keyed by a hash of the folder's
path, its sorted file list with a BLAKE2b hash of each file's bytes, and the resolution,
channels and limit, so a second build decodes nothing; any change to the files makes a new key.
An entry is two files: KEY.u8, the images as raw uint8 bytes (N, C, R, R), C-contiguous, and
KEY.json, its sidecar: format, shape, labels (or null) and metadata (class names, skipped
files). x is KEY.u8 memory-mapped read-only (Dataset.mapped), never loaded whole, so a folder
larger than memory trains; pages are read as batches touch them. Decoding writes each round of
BATCH images straight to a temp file (nothing holds the whole folder), fsyncs it and renames it
to KEY.u8; KEY.json is written last (atomically), so an entry killed part way is never used.
The 8 most recently used entries are kept; older formats' entries are deleted. When the cache
cannot be written the run goes on with the images in memory, and says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data.captions import folder_captions
from ganforge.data.dataset import Dataset
from ganforge.data.paths import user_cache_dir
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_text, file_digest

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_RESOLUTION = 64
CACHE_FORMAT = "ganforge-folder-v3"  # v2: keyed on file contents; v3: raw uint8 + JSON
GRAY_BANDS = {("L",), ("1",), ("I",), ("F",), ("L", "A")}
SHOW_FIRST = 5  # unreadable files named in a message
BATCH = 256  # files decoded per thread-pool round (a limit stops between rounds)
CACHE_ENTRIES = 8  # decoded folders kept in the cache, most recently used first


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
    root: Path,
    files: list[Path],
    classes: list[int] | None,
    resolution: int,
    limit: int | None,
    writer: RawWriter,
) -> tuple[list[int], list[tuple[str, str]]]:
    """Decode files in order on a thread pool into writer, one round of BATCH files at a
    time, until `limit` images have decoded (if set); (class per image, failed files)."""
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            images = []
            for i, result in enumerate(pool.map(lambda f: try_decode(f, resolution), chunk)):
                if isinstance(result, str):
                    skipped.append((chunk[i].relative_to(root).as_posix(), result))
                    continue
                images.append(result)
                labels.append(classes[start + i] if classes else -1)
            if limit is not None:
                images, labels = images[: limit - writer.count], labels[:limit]
            writer.append(images)
            if limit is not None and writer.count >= limit:
                break
    return labels, skipped


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


class RawWriter:
    """Decoded images appended round by round to a raw uint8 file (N, C, R, R), C-contiguous.

    The file is a temp name beside the cache entry, written with plain sequential writes: the
    decoded folder is never held in memory (a writable map would keep every dirty page in this
    process, and turn a full disk into SIGBUS instead of an OSError). commit() fsyncs it and
    renames it into place. With no cache folder (target None), or once a write has failed, the
    rounds are kept in memory instead, as before the cache was mapped.

    C is data.channels, else 1 while every image so far is gray; the first color image widens
    what was written to 3 channels (gray tiled), so the result equals stack() of all images.
    """

    def __init__(self, target: Path | None, resolution: int, channels: int | None) -> None:
        self.target, self.resolution, self.fixed = target, resolution, channels
        self.channels = channels or 1
        self.count = 0
        self.rounds: list[np.ndarray] = []  # the images in memory, once target is None
        self.temp: Path | None = None
        self.file: io.FileIO | None = None
        if target is not None:
            self.temp, self.file = self.open_temp()

    def open_temp(self) -> tuple[Path, io.FileIO]:
        """A new temp file beside the target, named as fileio.atomic_write names its temps
        (so fileio.remove_stale_temps finds those a killed process left)."""
        assert self.target is not None
        fd, name = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent
        )
        return Path(name), io.FileIO(fd, "r+")

    def shape(self, n: int) -> tuple[int, int, int, int]:
        return (n, self.channels, self.resolution, self.resolution)

    def append(self, images: list[torch.Tensor]) -> None:
        """Add (1, C, R, R) images after those written so far."""
        if not images:
            return
        if self.fixed is None and self.channels == 1 and any(i.shape[1] == 3 for i in images):
            self.widen()
        batch = torch.cat([match_channels(img, self.channels) for img in images]).numpy()
        batch = np.ascontiguousarray(batch)
        if self.file is not None:
            try:
                write_all(self.file, batch)
            except OSError as exc:
                self.spill(exc)
        if self.file is None:
            self.rounds.append(batch)
        self.count += len(batch)

    def read(self, file: io.FileIO, start: int, n: int) -> np.ndarray:
        """Rows start..start+n of what was written (channels as written)."""
        size, offset = math.prod(self.shape(n)), math.prod(self.shape(start))
        data = bytearray()
        while len(data) < size:
            part = os.pread(file.fileno(), size - len(data), offset + len(data))
            if not part:
                raise OSError(f"{self.temp} is shorter than what was written to it")
            data += part
        return np.frombuffer(data, np.uint8).reshape(self.shape(n))

    def widen(self) -> None:
        """1 to 3 channels for what was written so far (the gray images tiled)."""
        if self.file is not None and self.count:
            old_temp, old_file = self.temp, self.file
            try:
                temp, file = self.open_temp()
                try:
                    for start in range(0, self.count, BATCH):
                        part = self.read(old_file, start, min(BATCH, self.count - start))
                        write_all(file, np.ascontiguousarray(np.repeat(part, 3, axis=1)))
                except BaseException:
                    file.close()
                    temp.unlink(missing_ok=True)
                    raise
                old_file.close()
                old_temp.unlink(missing_ok=True)
                self.temp, self.file = temp, file
            except OSError as exc:
                self.spill(exc)  # reads the gray rows, widened below
        self.rounds = [np.repeat(part, 3, axis=1) for part in self.rounds]
        self.channels = 3

    def spill(self, exc: OSError) -> None:
        """The cache file cannot be written: warn, and go on in memory with what it holds."""
        cache_unwritable(self.target, exc)
        if self.file is not None:
            self.rounds = [
                self.read(self.file, start, min(BATCH, self.count - start))
                for start in range(0, self.count, BATCH)
            ]
        self.discard()
        self.target = None

    def discard(self) -> None:
        """Close and delete the temp file (an aborted decode leaves no entry)."""
        if self.file is not None:
            self.file.close()
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)
        self.file, self.temp = None, None

    def commit(self) -> bool:
        """Make the file the cache entry's data (fsync, rename); False where it is in memory."""
        if self.file is None or self.target is None or self.temp is None:
            return False
        try:
            os.fsync(self.file.fileno())
            os.replace(self.temp, self.target)
        except OSError as exc:
            self.spill(exc)
            return False
        self.file.close()
        self.file, self.temp = None, None
        return True

    def memory_tensor(self) -> torch.Tensor:
        """The images kept in memory (after commit() returned False)."""
        return torch.from_numpy(np.concatenate(self.rounds))


def write_all(file: io.FileIO, array: np.ndarray) -> None:
    """Write a C-contiguous array's bytes (an unbuffered write may take only part of them)."""
    view = memoryview(array).cast("B")
    while view:
        view = view[file.write(view) :]


def cache_unwritable(path: Path | None, exc: OSError) -> None:
    """Warn that the decode cache cannot be written (the run goes on without it)."""
    warnings.warn(f"Could not write the image cache {path}: {exc}", stacklevel=4)


def open_writer(folder: Path, key: str, resolution: int, channels: int | None) -> RawWriter:
    """A RawWriter into the cache entry KEY.u8, or in memory when the cache is unwritable."""
    target = folder / f"{key}.u8"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return RawWriter(target, resolution, channels)
    except OSError as exc:
        cache_unwritable(target, exc)
        return RawWriter(None, resolution, channels)


def map_images(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """The raw uint8 file as a read-only memory-mapped tensor (no copy).

    Mode 'r' (shared, read-only), not 'c' (copy-on-write): Linux charges a private writable
    map of the whole file against the commit limit, which refuses files larger than RAM +
    swap, the very case this is for. torch warns that the array is not writable: nothing
    writes to it (a write would fault), so that one warning is silenced.
    """
    array = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def prune_cache(folder: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used cache entries (each folder edit adds one),
    data files whose sidecar is gone (a write killed between the two renames) and entries of
    older cache formats."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)  # the sidecar first: a half-pruned entry is a miss
        stale.with_suffix(".u8").unlink(missing_ok=True)
    kept = {p.stem for p in entries[:keep]}
    for stale in [*folder.glob("*.u8"), *folder.glob("*.safetensors")]:
        if stale.suffix != ".u8" or stale.stem not in kept:
            stale.unlink(missing_ok=True)


def save_cache(folder: Path, key: str, writer: RawWriter, labels: list[int] | None,
               meta: dict) -> tuple[torch.Tensor, bool]:
    """Commit the decoded images as cache entry KEY (KEY.u8, then KEY.json last, so a
    half-written entry is never used); (x, whether x is mapped from the cache)."""
    shape = writer.shape(writer.count)
    if not writer.commit():
        return writer.memory_tensor(), False
    data_path = folder / f"{key}.u8"
    x = map_images(data_path, shape)  # mapped before pruning: the map keeps the file alive
    entry = {"format": CACHE_FORMAT, "shape": list(shape), "labels": labels, "meta": meta}
    try:
        atomic_write_text(folder / f"{key}.json", json.dumps(entry))
        prune_cache(folder, CACHE_ENTRIES)
    except OSError as exc:
        cache_unwritable(folder / f"{key}.json", exc)
    return x, True


def load_cache(folder: Path, key: str) -> tuple[torch.Tensor, torch.Tensor | None, dict] | None:
    """(x mapped, labels, metadata) of cache entry KEY, or None when absent or unreadable."""
    sidecar, data_path = folder / f"{key}.json", folder / f"{key}.u8"
    if not sidecar.is_file():
        return None
    try:
        entry = json.loads(sidecar.read_text(encoding="utf-8"))
        if entry.get("format") != CACHE_FORMAT:
            return None
        shape = tuple(int(n) for n in entry["shape"])
        size = data_path.stat().st_size
        if len(shape) != 4 or shape[0] < 1 or size != math.prod(shape):
            raise ValueError(f"{data_path} holds {size} bytes, not {shape}")
        labels = entry["labels"]
        if labels is not None:
            labels = torch.tensor(labels, dtype=torch.int64)
            if labels.shape != (shape[0],):
                raise ValueError(f"{len(labels)} labels for {shape[0]} images")
        x = map_images(data_path, shape)
        os.utime(sidecar)  # most recently used: pruned last
        return x, labels, entry["meta"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable image cache %s: %s", sidecar, exc)
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


def decode_folder(
    root: Path, files: list[Path], resolution: int, cfg: DataConfig, folder: Path, key: str
) -> tuple:
    """Decode a folder into cache entry KEY and report unreadable files;
    (x, labels or None, metadata, whether x is mapped from the cache)."""
    print(f"ganforge: decoding {len(files)} images under {root} (cached for next time)",
          file=sys.stderr, flush=True)
    layout = class_layout(root, files)
    writer = open_writer(folder, key, resolution, cfg.channels)
    try:
        labels, skipped = decode_all(
            root, files, layout[0] if layout else None, resolution, cfg.limit, writer
        )
        report_skipped(root, skipped, cfg.strict)
        if not writer.count:
            raise GanforgeError(
                f"None of the {len(files)} image files under '{root}' could be read; "
                + describe_skipped(root, skipped)
            )
        meta = {"class_names": layout[1] if layout else None, "skipped": skipped}
        x, mapped = save_cache(folder, key, writer, labels if layout else None, meta)
    except BaseException:
        writer.discard()  # killed or failed part way: no cache entry, the temp file removed
        raise
    y = torch.tensor(labels, dtype=torch.int64) if layout else None
    return x, y, meta, mapped


def from_cache(folder: Path, key: str, root: Path, strict: bool) -> tuple | None:
    """(x, labels, meta, True) of a cache hit, after re-reporting its skipped files; None on a
    miss."""
    hit = load_cache(folder, key)
    if hit is None:
        return None
    x, labels, meta = hit
    report_skipped(root, [(name, reason) for name, reason in meta.get("skipped", [])], strict)
    return x, labels, meta, True


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
    folder = user_cache_dir() / "folders"
    cached = from_cache(folder, key, root, cfg.strict)
    if cached is None:
        cached = decode_folder(root, files, resolution, cfg, folder, key)
    x, labels, meta, mapped = cached
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
        mapped=mapped,
    )
