"""Two-domain data for image-to-image translation: x is domain A, x_b domain B.

Sources, in the layouts pytorch-CycleGAN-and-pix2pix made standard:
- aligned:PATH: each image holds A and B side by side (A left), width = 2 x height; PATH/train
  and PATH/test are the splits when present, else PATH's images are one set.
- paired:PATH_A,PATH_B: two folders whose files match by name (a.png in both is one pair).
- unpaired:PATH: PATH/trainA and PATH/trainB (testA, testB for data.split=test), any sizes.
- fashion-edges: Fashion-MNIST with A = an edge map of each image, B = the image (the spirit
  of edges2shoes); fashion-edges-unpaired: the same two domains, loaded unpaired, so training
  never sees which edge map belongs to which garment; both keep the class labels, and the test
  split of the unpaired one is still paired (the truth an unpaired method is scored against).

The edge detector is deterministic and documented: the Sobel gradient magnitude of the image
in [0, 1], divided by 4 (so a step from 0 to 1 gives 1), thresholded at EDGE_THRESHOLD; edge
pixels are black (0) on white (255), like edges2shoes' line drawings.
data.direction=BtoA swaps the domains (x becomes B).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.data.folder import DEFAULT_RESOLUTION, check_root, decode_image, pixels, stack
from ganforge.data.idx import FASHION_MNIST, load_idx
from ganforge.data.paths import source_path
from ganforge.data.transforms import resize_square
from ganforge.errors import GanforgeError

EDGE_THRESHOLD = 0.25
SHOW_FIRST = 5  # file names listed in a mismatch message
PAIRED_BUILTINS = {"fashion-edges": True, "fashion-edges-unpaired": False}


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> uint8 (N, 1, H, W) edge maps: black lines on white."""
    gray = x.float().mean(dim=1, keepdim=True) / 255.0
    p = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    # Sobel as two separable passes: smooth [1, 2, 1] one way, difference [-1, 0, 1] the other
    smooth_rows = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # (N, 1, H, W + 2)
    smooth_cols = p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]  # (N, 1, H + 2, W)
    gx = smooth_rows[..., 2:] - smooth_rows[..., :-2]
    gy = smooth_cols[:, :, 2:] - smooth_cols[:, :, :-2]
    edges = (gx.square() + gy.square()).sqrt() / 4.0 >= EDGE_THRESHOLD
    return torch.where(edges, 0, 255).to(torch.uint8)


def load_fashion_edges(name: str, cfg: DataConfig) -> Dataset:
    """fashion-edges(-unpaired): A = edge_map(image), B = the image, with class labels."""
    images = load_idx(FASHION_MNIST, cfg)
    x, labels = images.x[: cfg.limit], images.labels[: cfg.limit]  # limit first: less to edge
    paired = PAIRED_BUILTINS[name] or cfg.split == "test"  # test: the truth, for scoring
    return Dataset(
        x=edge_map(x), labels=labels, name=f"{name}:{cfg.split}", kind="image",
        num_classes=images.num_classes, class_names=images.class_names,
        x_b=x, paired=paired,
    )


def split_root(root: Path, split: str) -> Path:
    """PATH/train or PATH/test when PATH has such subfolders, else PATH itself."""
    sub = root / split
    return sub if sub.is_dir() else root


def read_aligned(path: Path, resolution: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One A|B image -> (A, B), each (1, C, R, R) uint8; the width must be twice the height."""
    with Image.open(path) as image:
        array = pixels(image)
    height, width = array.shape[:2]
    if width != 2 * height:
        raise GanforgeError(
            f"aligned image '{path}' is {width}x{height}: an aligned A|B image holds two "
            f"square halves side by side, so its width must be twice its height ({2 * height})."
            " Use paired:PATH_A,PATH_B for two folders, or unpaired:PATH for unpaired data."
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0)
    a, b = tensor[..., :height], tensor[..., height:]
    side = resolution or height
    return resize_square(a, side), resize_square(b, side)


def load_aligned(text: str, cfg: DataConfig) -> Dataset:
    """aligned:PATH, the pix2pix layout: A|B images, split by PATH/train, PATH/test."""
    root = source_path("aligned", text)
    files = check_root(split_root(root, cfg.split), cfg.source)
    files = files[: cfg.limit] if cfg.limit else files
    pairs = [read_aligned(f, cfg.resolution) for f in files]
    sides = {a.shape[-1] for a, _ in pairs}
    if len(sides) > 1:
        raise GanforgeError(
            f"aligned images under '{root}' have different sizes ({sorted(sides)} pixels high). "
            "Set data.resolution=N to resize every half to N x N."
        )
    return Dataset(
        x=stack([a for a, _ in pairs], cfg.channels), labels=None, name=cfg.source,
        kind="image", x_b=stack([b for _, b in pairs], cfg.channels),
    )


def load_paired(text: str, cfg: DataConfig) -> Dataset:
    """paired:PATH_A,PATH_B: two folders whose files match by name, relative path included."""
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 2:
        raise GanforgeError(
            f"data.source '{cfg.source}': paired: needs two folders separated by a comma, "
            "e.g. paired:~/data/sketches,~/data/photos."
        )
    roots = [source_path("paired", p) for p in parts]
    files = [check_root(r, cfg.source) for r in roots]
    names = [{f.relative_to(r).as_posix(): f for f in fs} for r, fs in zip(roots, files)]
    only_a = sorted(set(names[0]) - set(names[1]))
    only_b = sorted(set(names[1]) - set(names[0]))
    if only_a or only_b:
        shown = [f"'{n}' only in {roots[0]}" for n in only_a[:SHOW_FIRST]]
        shown += [f"'{n}' only in {roots[1]}" for n in only_b[:SHOW_FIRST]]
        raise GanforgeError(
            f"paired folders must hold the same file names; {len(only_a) + len(only_b)} do not "
            f"match: {'; '.join(shown)}. Rename or remove them (a.png in both folders is one "
            "pair), or use unpaired:PATH for unpaired data."
        )
    common = sorted(names[0])[: cfg.limit] if cfg.limit else sorted(names[0])
    side = cfg.resolution or DEFAULT_RESOLUTION
    a = stack([decode_image(names[0][n], side) for n in common], cfg.channels)
    b = stack([decode_image(names[1][n], side) for n in common], cfg.channels)
    return Dataset(x=a, labels=None, name=cfg.source, kind="image", x_b=b)


def load_unpaired(text: str, cfg: DataConfig) -> Dataset:
    """unpaired:PATH, the CycleGAN layout: PATH/trainA, PATH/trainB (testA, testB)."""
    root = source_path("unpaired", text)
    folders = [root / f"{cfg.split}{domain}" for domain in "AB"]
    missing = [f.name for f in folders if not f.is_dir()]
    if missing:
        raise GanforgeError(
            f"data.source '{cfg.source}': '{root}' has no {' or '.join(missing)}/ folder. "
            f"The unpaired layout is {root}/trainA/ and {root}/trainB/ (testA/, testB/ for "
            "data.split=test), one folder of images per domain."
        )
    side = cfg.resolution or DEFAULT_RESOLUTION
    domains = []
    for folder in folders:
        files = check_root(folder, cfg.source)
        files = files[: cfg.limit] if cfg.limit else files
        domains.append(stack([decode_image(f, side) for f in files], cfg.channels))
    return Dataset(
        x=domains[0], labels=None, name=cfg.source, kind="image", x_b=domains[1], paired=False
    )


def swap_domains(data: Dataset) -> Dataset:
    """The dataset with A and B exchanged (data.direction=BtoA); labels stay with the rows."""
    if data.x_b is None:
        return data
    return dataclasses.replace(data, x=data.x_b, x_b=data.x)
