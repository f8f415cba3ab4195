"""data.source -> Dataset: the table of sources, the shared finishing steps, `ganforge datasets`.

Built-in names (fashion-mnist, mnist, stacked-mnist, fashion-edges(-unpaired),
fashion-mnist-captions, ring8, grid25) and path forms (folder:PATH, npz:PATH, npy:PATH, aligned:,
paired:, unpaired:). Every source's examples then pass the same steps, in this order:
data.limit keeps the first N (in the source's fixed order), data.channels tiles gray to RGB or
turns RGB into luminance, data.resolution resizes (shorter side) and center-crops square.
Channels and resolution apply to images only; vector sources ignore them. Sources with captions
(fashion-mnist-captions, folders with caption files) then get a vocabulary built from all their
(limited) captions and the `text` field: ids (N, K, data.max_words), see data/captions.py.
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ganforge.config import DataConfig
from ganforge.data.arrays import load_array
from ganforge.data.captions import caption_tokens, longest
from ganforge.data.dataset import Dataset
from ganforge.data.fashion_captions import CAPTIONS_PER_IMAGE, load_fashion_captions
from ganforge.data.fashion_captions import DESCRIPTION as CAPTIONS_DESCRIPTION
from ganforge.data.fashion_captions import NAME as FASHION_CAPTIONS
from ganforge.data.folder import load_folder
from ganforge.data.idx import IDX_SOURCES, load_idx, where
from ganforge.data.mixtures import MIXTURES, load_mixture
from ganforge.data.pairs import (
    PAIRED_BUILTINS,
    load_aligned,
    load_fashion_edges,
    load_paired,
    load_unpaired,
    swap_domains,
)
from ganforge.data.paths import source_path
from ganforge.data.stacked import STACKED_SOURCES, load_stacked, stacked_where
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError
from ganforge.text.vocab import Vocabulary


@dataclass(frozen=True)
class SourceInfo:
    """One line of `ganforge datasets`: a source, whether it is ready, and where or how."""

    name: str
    description: str
    available: bool
    where: str
    labels: str  # whether it gives class labels (needed by task.name=conditional)


# what each path form says about class labels, for `ganforge datasets`
PATH_LABELS = {
    "folder": (
        "labels: one subfolder per class (at least two); captions: metadata.jsonl / "
        "metadata.csv (file_name, text) or IMAGE.txt beside each image"
    ),
    "npz": "labels: a y (or labels) array of class indices",
    "npy": "labels: none (use npz for labelled data)",
    "aligned": "pairs (image-to-image): A|B side by side; PATH/train, PATH/test as splits",
    "paired": "pairs (image-to-image): files matched by name in two folders",
    "unpaired": "two domains (image-to-image): trainA/, trainB/ (testA/, testB/)",
}
EDGES_DESCRIPTION = {
    "fashion-edges": "Fashion-MNIST pairs: A = Sobel edge map, B = the image (pix2pix)",
    "fashion-edges-unpaired": (
        "the same two domains with the pairing hidden in training (CycleGAN); test is paired"
    ),
}

PATH_FORMS: dict[str, tuple[str, Callable[[str, DataConfig], Dataset]]] = {
    "folder": (
        (
            "any folder of png/jpg/webp/bmp images (recursive; one subfolder per class gives "
            "labels); resized and center-cropped to data.resolution (default 64), cached"
        ),
        lambda text, cfg: load_folder(source_path("folder", text), cfg),
    ),
    "npz": (
        (
            "numpy archive: x/images (N,H,W[,C]) uint8 or float in [0,1], or vectors (N,D); "
            "optional y/labels"
        ),
        lambda text, cfg: load_array("npz", source_path("npz", text), cfg.source),
    ),
    "npy": (
        "numpy array: images (N,H,W[,C]) uint8 or float in [0,1], or vectors (N,D)",
        lambda text, cfg: load_array("npy", source_path("npy", text), cfg.source),
    ),
    "aligned": (
        "pix2pix layout: images holding A and B side by side (width = 2 x height)",
        load_aligned,
    ),
    "paired": ("two folders PATH_A,PATH_B whose files match by name", load_paired),
    "unpaired": ("CycleGAN layout: PATH/trainA, PATH/trainB (testA, testB)", load_unpaired),
}


def builtin_names() -> list[str]:
    """Names of the built-in sources, files first (and those built from them), then the
    generated mixtures."""
    return (
        list(IDX_SOURCES) + list(STACKED_SOURCES) + list(PAIRED_BUILTINS) + [FASHION_CAPTIONS]
        + list(MIXTURES)
    )


def unknown_source(source: str) -> GanforgeError:
    """The error for a data.source that names nothing: the valid ones and the nearest."""
    valid = builtin_names() + [f"{form}:PATH" for form in PATH_FORMS]
    close = difflib.get_close_matches(source, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return GanforgeError(
        f"Unknown data.source '{source}'.{hint} Valid sources: {', '.join(valid)} "
        "(run `ganforge datasets` to see which are ready)."
    )


def has_splits(source: str) -> bool:
    """Whether data.split means something for a source: named sets do; a folder or an array
    file is one set of files, read whole whatever data.split says."""
    form, sep, rest = source.strip().partition(":")
    if form == "unpaired":  # trainA/, trainB/ and testA/, testB/
        return True
    if form == "aligned":  # split subfolders when PATH/train exists, else one set of files
        return (source_path("aligned", rest) / "train").is_dir()
    return not (sep and form in PATH_FORMS)


def load_source(cfg: DataConfig) -> Dataset:
    """The raw dataset of cfg.source, before the shared finishing steps."""
    source = cfg.source.strip()
    if source in IDX_SOURCES:
        return load_idx(IDX_SOURCES[source], cfg)
    if source in STACKED_SOURCES:
        return load_stacked(STACKED_SOURCES[source], cfg)
    if source in PAIRED_BUILTINS:
        return load_fashion_edges(source, cfg)
    if source == FASHION_CAPTIONS:
        return load_fashion_captions(cfg)
    if source in MIXTURES:
        return load_mixture(MIXTURES[source], cfg.split)
    form, sep, rest = source.partition(":")
    if sep and form in PATH_FORMS:
        return PATH_FORMS[form][1](rest, cfg)
    raise unknown_source(source)


def finish_images(x, cfg: DataConfig, kind: str):
    """One domain's examples after data.limit, then (images only) channels and resolution."""
    if cfg.limit is not None and cfg.limit < len(x):
        x = x[: cfg.limit]
    if kind == "image":
        x = match_channels(x, cfg.channels)
        if cfg.resolution is not None:
            x = resize_square(x, cfg.resolution)
    return x.contiguous()


def finish_text(data: Dataset, cfg: DataConfig) -> Dataset:
    """A captioned dataset with its vocabulary (every caption's words) and its text ids;
    warns once when captions were cut to data.max_words."""
    vocabulary = Vocabulary.build(text for texts in data.captions for text in texts)
    text, _, cut = caption_tokens(data.captions, vocabulary, cfg.max_words)
    if cut:
        total = sum(len(texts) for texts in data.captions)
        warnings.warn(
            f"{cut} of the {total} captions of {data.name} have more than data.max_words="
            f"{cfg.max_words} words and were cut (the longest has {longest(data.captions)}). "
            "Set data.max_words higher to keep them whole.",
            stacklevel=3,
        )
    return dataclasses.replace(data, vocabulary=vocabulary, text=text)


def finish(data: Dataset, cfg: DataConfig) -> Dataset:
    """Apply data.limit, then (images only) data.channels and data.resolution, to x and x_b;
    then data.direction (BtoA swaps the two domains); captions get a vocabulary and text."""
    x, labels = finish_images(data.x, cfg, data.kind), data.labels
    captions = data.captions
    if cfg.limit is not None:
        labels = labels if labels is None else labels[: cfg.limit]
        captions = captions if captions is None else captions[: cfg.limit]
    x_b = None if data.x_b is None else finish_images(data.x_b, cfg, data.kind)
    if not (x is data.x and labels is data.labels and x_b is data.x_b):
        data = dataclasses.replace(data, x=x, labels=labels, x_b=x_b)
    if captions is not None:
        data = finish_text(dataclasses.replace(data, captions=captions), cfg)
    return swap_domains(data) if cfg.direction == "BtoA" else data


def build_dataset(cfg: DataConfig) -> Dataset:
    """The dataset data.source names, finished per data.limit/channels/resolution."""
    return finish(load_source(cfg), cfg)


def list_sources(cfg: DataConfig | None = None) -> list[SourceInfo]:
    """Every built-in source with its availability, then the path forms (always usable)."""
    infos = []
    for spec in IDX_SOURCES.values():
        found, text = where(spec, cfg)
        labels = f"labels: {len(spec.class_names)} classes"
        infos.append(SourceInfo(spec.name, spec.description, found, text, labels))
    for stacked in STACKED_SOURCES.values():
        found, text = stacked_where(stacked, cfg)
        labels = f"labels: the mode ({stacked.num_classes} classes)"
        infos.append(SourceInfo(stacked.name, stacked.description, found, text, labels))
    fashion = IDX_SOURCES["fashion-mnist"]
    for name, description in EDGES_DESCRIPTION.items():
        found, text = where(fashion, cfg)
        labels = f"labels: {len(fashion.class_names)} classes; pairs A (edges), B (image)"
        infos.append(SourceInfo(name, description, found, text, labels))
    found, text = where(fashion, cfg)
    labels = (
        f"labels: {len(fashion.class_names)} classes; captions: {CAPTIONS_PER_IMAGE} per image"
    )
    infos.append(SourceInfo(FASHION_CAPTIONS, CAPTIONS_DESCRIPTION, found, text, labels))
    for mixture in MIXTURES.values():
        labels = f"labels: the mode index ({len(mixture.centers)} classes)"
        infos.append(
            SourceInfo(mixture.name, mixture.description, True, "generated, no files", labels)
        )
    for form, (description, _) in PATH_FORMS.items():
        infos.append(SourceInfo(f"{form}:PATH", description, True, "", PATH_LABELS[form]))
    return infos
