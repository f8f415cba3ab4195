"""fashion-mnist-captions: Fashion-MNIST with captions that state each image's class, its
brightness and its size, measured on the image itself, so a text-to-image GAN's samples can be
scored against their prompts (class by a classifier, attributes by `measure`).

Measuring (`measure`, also used to score generated images): luminance (the mean over
channels), area-resized to MEASURE_SIDE x MEASURE_SIDE (a fixed resolution: 28, 32 or 64 pixel
inputs give nearly the same answer); garment pixels are those above GARMENT_LEVEL (garments
are light on black; the resize averages pixel noise away); brightness = the garment pixels'
mean, cut at BRIGHTNESS_CUTS into dark / medium / light; size = the share of the frame they
cover, cut at SIZE_CUT into small / large. An all-black image is dark and small.

Captions: k per image (default 4), each from a different training template, with synonyms for
the class, the brightness and the size, all chosen by hashing (image index, caption index), so
an image's captions never depend on data.limit or on the other images. Some templates and one
synonym of every class and attribute value are HELD OUT: no training caption uses them (the
held-out synonyms are words that no training caption contains); `eval_prompts` uses them to
test generalization to new phrasings or new words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.data.idx import FASHION_MNIST, load_idx
from ganforge.errors import GanforgeError

NAME = "fashion-mnist-captions"
DESCRIPTION = (
    "Fashion-MNIST with 4 captions per image stating its class, brightness and size "
    "(text-to-image)"
)
CLASS_NAMES = FASHION_MNIST.class_names
BRIGHTNESS = ("dark", "medium", "light")
SIZES = ("small", "large")
CAPTIONS_PER_IMAGE = 4

MEASURE_SIDE = 14  # 28 / 2: Fashion-MNIST's own images are area-averaged 2 x 2
GARMENT_LEVEL = 38.0  # 0.15 x 255
BRIGHTNESS_CUTS = (125.0, 160.0)  # mean garment intensity: < 125 dark, < 160 medium, else light
SIZE_CUT = 0.5  # share of the frame covered: < 0.5 small, else large
# Measured on the 60,000 training images: brightness dark 34.3%, medium 32.7%, light 33.0%;
# size small 48.8%, large 51.2%. Per class, the share of (dark small, dark large, medium small,
# medium large, light small, light large), in percent:
#   T-shirt/top  10 26  3 22  3 36    Sandal       80  2 15  2  1  1
#   Trouser      24  1 46  2 24  2    Shirt        10 35  1 23  1 30
#   Pullover      5 31  0 23  0 41    Sneaker      43  0 49  0  7  0
#   Dress        22  5 22  7 31 12    Bag           7 14 11 28  4 36
#   Coat          5 14  2 22  4 54    Ankle boot    8  3 31 17 18 24
# Agreement of 28-pixel images with the same images resized to 32 (64): brightness 97.5%
# (98.1%), size 99.6% (99.6%), both 97.0% (97.7%) on the first 10,000 training images.

# per class: (training synonyms, held-out synonyms); a held-out word is in no training caption
GARMENTS = (
    (("t-shirt", "tee", "top"), ("singlet",)),
    (("trousers", "pants", "slacks"), ("jeans",)),
    (("pullover", "sweater", "jumper"), ("sweatshirt",)),
    (("dress", "gown", "frock"), ("sundress",)),
    (("coat", "jacket", "raincoat"), ("parka",)),
    (("sandal", "slipper", "strappy sandal"), ("flip-flop",)),
    (("shirt", "button-up shirt", "collared shirt"), ("blouse",)),
    (("sneaker", "running shoe", "sports shoe"), ("trainer",)),
    (("bag", "handbag", "purse"), ("tote",)),
    (("ankle boot", "boot", "bootie"), ("chelsea-boot",)),
)
SHADES = (
    (("dark", "black", "deep-coloured"), ("charcoal",)),
    (("grey", "mid-toned", "medium-grey"), ("gray",)),
    (("light", "white", "pale"), ("bright",)),
)
EXTENTS = ((("small", "little"), ("tiny",)), (("large", "big"), ("huge",)))
# {g} the garment, {b} its brightness, {s} its size; every template states all three
TEMPLATES = (
    "a {s} {b} {g}",
    "a {b} {g} that fills a {s} part of the frame",
    "photo of a {b} {g}, {s}",
    "a {g} in a {b} shade, {s} in the picture",
    "{s} {b} {g}",
    "an image of a {s} {g}, {b} overall",
    "a {b}, {s} {g}",
    "picture of a {g}: {b} and {s}",
    "this {g} is {b} and looks {s}",
    "a {s} {g} with a {b} tone",
)
HELD_OUT_TEMPLATES = (
    "there is a {b} {g} here and it appears {s}",
    "{g} ({b}, {s})",
    "the {s} {g} shown is {b}",
    "centred in the frame, a {b} {g} that is rather {s}",
)
HELD_OUT_MODES = ("templates", "synonyms")


@dataclass
class Prompts:
    """Evaluation prompts with the class and attributes each one asks for."""

    texts: list[str]
    labels: torch.Tensor  # (n,) int64 class index
    brightness: torch.Tensor  # (n,) int64 index into BRIGHTNESS
    size: torch.Tensor  # (n,) int64 index into SIZES


def measure(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, C, H, W), C 1 or 3 -> (brightness index (N,), size index (N,)) int64."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"measure needs images (N, 1 or 3, H, W), got {tuple(x.shape)}")
    brightness, size = [], []
    for part in x.split(4096):
        gray = part.float().mean(dim=1, keepdim=True)
        gray = F.interpolate(
            gray, size=(MEASURE_SIDE, MEASURE_SIDE), mode="bilinear", antialias=True,
            align_corners=False,
        )[:, 0]
        garment = gray > GARMENT_LEVEL
        count = garment.sum(dim=(1, 2))
        mean = (gray * garment).sum(dim=(1, 2)) / count.clamp(min=1)
        cuts = torch.tensor(BRIGHTNESS_CUTS)
        brightness.append(torch.bucketize(mean, cuts, right=True))
        size.append((count / (MEASURE_SIDE * MEASURE_SIDE) >= SIZE_CUT).long())
    return torch.cat(brightness).long(), torch.cat(size).long()


def mix(*keys: np.ndarray | int) -> np.ndarray:
    """A 64-bit hash of integer keys, elementwise (splitmix64 finalizer over a running mix)."""
    with np.errstate(over="ignore"):
        h = np.uint64(0x9E3779B97F4A7C15) * np.ones_like(np.asarray(keys[0]), dtype=np.uint64)
        for key in keys:
            h = (h ^ np.asarray(key).astype(np.uint64)) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
    return h


@functools.cache  # a few thousand distinct captions, rendered once each
def render(template: str, garment: str, shade: str, extent: str) -> str:
    """One caption: the template filled, with 'a' before a vowel turned into 'an'."""
    text = template.format(g=garment, b=shade, s=extent)
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def captions_for(
    labels: torch.Tensor, brightness: torch.Tensor, size: torch.Tensor, k: int = 4
) -> list[list[str]]:
    """k training captions per image (distinct templates), a function of the image's index,
    class and attributes only."""
    if not 1 <= k <= len(TEMPLATES):
        raise ValueError(f"k must be in 1..{len(TEMPLATES)} (one template per caption), got {k}")
    n = len(labels)
    index = np.arange(n, dtype=np.uint64)
    first = mix(index, 0) % np.uint64(len(TEMPLATES))
    out = []
    picks = [[mix(index, j + 1, slot) for slot in range(3)] for j in range(k)]
    for i, (y, b, s) in enumerate(zip(labels.tolist(), brightness.tolist(), size.tolist())):
        texts = []
        for j in range(k):
            g_pick, b_pick, s_pick = (int(p[i]) for p in picks[j])
            garments, shades, extents = GARMENTS[y][0], SHADES[b][0], EXTENTS[s][0]
            template = TEMPLATES[(int(first[i]) + j) % len(TEMPLATES)]
            texts.append(render(
                template, garments[g_pick % len(garments)], shades[b_pick % len(shades)],
                extents[s_pick % len(extents)],
            ))
        out.append(texts)
    return out


def balanced_combos(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3) rows (class, brightness, size): n // 60 of each of the 60 combinations, the
    remainder to a random set of them, in a random order."""
    grid = torch.cartesian_prod(
        torch.arange(len(CLASS_NAMES)), torch.arange(len(BRIGHTNESS)), torch.arange(len(SIZES))
    )
    extra = grid[torch.randperm(len(grid), generator=generator)[: n % len(grid)]]
    rows = torch.cat([grid.repeat(n // len(grid), 1), extra])
    return rows[torch.randperm(len(rows), generator=generator)]


def eval_prompts(
    n: int, seed: int, held_out: str, combos: torch.Tensor | None = None
) -> Prompts:
    """n prompts balanced over class x brightness x size, shuffled by seed (or, given
    combos (n, 3) of class, brightness, size indices, one prompt for each). held_out
    "templates": held-out templates, training synonyms; "synonyms": training templates, with
    held-out synonyms for the class, the brightness and the size (every one a new word)."""
    if held_out not in HELD_OUT_MODES:
        raise GanforgeError(
            f"Unknown held-out prompt set '{held_out}'; choose one of {', '.join(HELD_OUT_MODES)}."
        )
    generator = torch.Generator().manual_seed(seed)
    combos = balanced_combos(n, generator) if combos is None else combos.long()
    side = 1 if held_out == "synonyms" else 0
    templates = HELD_OUT_TEMPLATES if held_out == "templates" else TEMPLATES
    picks = torch.randint(0, 1 << 30, (n, 4), generator=generator).tolist()
    texts = []
    for (y, b, s), pick in zip(combos.tolist(), picks):
        garments, shades, extents = GARMENTS[y][side], SHADES[b][side], EXTENTS[s][side]
        texts.append(render(
            templates[pick[0] % len(templates)], garments[pick[1] % len(garments)],
            shades[pick[2] % len(shades)], extents[pick[3] % len(extents)],
        ))
    return Prompts(texts, combos[:, 0].clone(), combos[:, 1].clone(), combos[:, 2].clone())


def load_fashion_captions(cfg: DataConfig) -> Dataset:
    """Fashion-MNIST's split (data.limit applied first) with CAPTIONS_PER_IMAGE captions each."""
    images = load_idx(FASHION_MNIST, cfg)
    x, labels = images.x[: cfg.limit], images.labels[: cfg.limit]
    brightness, size = measure(x)
    return Dataset(
        x=x, labels=labels, name=f"{NAME}:{cfg.split}", kind="image",
        num_classes=images.num_classes, class_names=images.class_names,
        captions=captions_for(labels, brightness, size, CAPTIONS_PER_IMAGE),
    )
