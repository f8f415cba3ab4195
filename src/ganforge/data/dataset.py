"""The in-memory dataset every data source returns, and its conversions to model scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ganforge.images import from_uint8
from ganforge.text.vocab import Vocabulary

# what each batch field holds and which sources provide it (for errors naming the fix)
FIELD_HELP = {
    "x": "the examples",
    "y": (
        "class labels: fashion-mnist, mnist, stacked-mnist (the mode), ring8, grid25, "
        "folder:PATH with one subfolder per class (at least two), or npz:PATH with a y array"
    ),
    "x_b": (
        "a second image of each example (image-to-image translation): fashion-edges, "
        "fashion-edges-unpaired, aligned:PATH (A|B side by side), paired:PATH_A,PATH_B or "
        "unpaired:PATH (trainA/, trainB/)"
    ),
    "text": (
        "captions (text-to-image): fashion-mnist-captions, or folder:PATH with a "
        "metadata.jsonl or metadata.csv (columns file_name, text) at its root, or a .txt "
        "file of captions beside each image (same name, one caption per line)"
    ),
}


@dataclass
class Dataset:
    """Examples held in memory, so a batch is one indexing op (no per-item decoding).

    images: x is uint8 (N, C, H, W); vectors: x is float32 (N, D) in the data's own scale.
    """

    x: torch.Tensor
    labels: torch.Tensor | None
    name: str
    kind: str  # "image" or "vector"
    num_classes: int | None = None
    class_names: list[str] | None = None
    label_note: str | None = None  # why there are no labels and how to add them, if none
    x_b: torch.Tensor | None = None  # the other domain's images (image-to-image), uint8
    paired: bool = True  # x_b[i] is x[i]'s target; False: two unpaired collections
    captions: list[list[str]] | None = None  # one or more caption strings per example
    vocabulary: Vocabulary | None = None  # built from the captions by data/registry.finish
    text: torch.Tensor | None = None  # (N, K, L) int64 ids; missing caption slots all PAD
    mapped: bool = False  # x memory-mapped from a file (folder:PATH): batch it on the CPU

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    @property
    def fields(self) -> tuple[str, ...]:
        """The batch fields this source can fill: x always, y with class labels, x_b with a
        second domain, text with tokenized captions."""
        fields = ("x", "y") if self.labels is not None else ("x",)
        fields = fields + ("x_b",) if self.x_b is not None else fields
        return fields + ("text",) if self.text is not None else fields

    def field(self, name: str) -> torch.Tensor:
        """The tensor behind a batch field: x (examples), y (labels), x_b (other domain),
        text (caption ids (N, K, L))."""
        return {"x": self.x, "y": self.labels, "x_b": self.x_b, "text": self.text}[name]

    def info(self) -> DataInfo:
        """What a task needs to know about the data (no examples): kept with checkpoints."""
        counts = None
        if self.labels is not None and self.num_classes:
            counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        names = self.class_names
        if names is None and self.num_classes:
            names = [str(k) for k in range(self.num_classes)]
        shape_b = tuple(self.x_b.shape[1:]) if self.x_b is not None else None
        vocabulary = self.vocabulary.to_meta() if self.vocabulary is not None else None
        max_words = int(self.text.shape[-1]) if self.text is not None else None
        return DataInfo(
            self.name, self.kind, self.shape, self.fields, self.num_classes, names, counts,
            shape_b, self.paired, vocabulary, max_words,
        )

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of stored examples in model scale: images in [-1, 1], vectors as they are."""
        return from_uint8(x) if self.kind == "image" else x.float()


def to_data_scale(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Model-scale samples to the data's own scale: images float32 in [0, 1], vectors as is."""
    if kind == "image":
        return x.detach().float().clamp(-1, 1).add(1).div(2)
    return x.detach().float()


@dataclass(frozen=True)
class DataInfo:
    """A dataset described without its examples: what tasks and samplers are built from."""

    name: str
    kind: str  # "image" or "vector"
    shape: tuple[int, ...]
    fields: tuple[str, ...]
    num_classes: int | None = None
    class_names: list[str] | None = None
    class_counts: list[int] | None = None  # training examples per class
    shape_b: tuple[int, ...] | None = None  # one x_b example's shape (image-to-image)
    paired: bool = True  # whether x_b[i] is x[i]'s target
    vocabulary: list[str] | None = None  # the caption vocabulary's words (index = id)
    max_words: int | None = None  # caption length in ids (data.max_words)

    def to_meta(self) -> dict[str, Any]:
        """Plain values for a checkpoint's JSON metadata."""
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "fields": list(self.fields),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "class_counts": self.class_counts,
            "shape_b": list(self.shape_b) if self.shape_b is not None else None,
            "paired": self.paired,
            "vocabulary": self.vocabulary,
            "max_words": self.max_words,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> DataInfo:
        """Inverse of to_meta; checkpoints written before fields existed had x only, and
        before captions no vocabulary."""
        return cls(
            name=meta["name"],
            kind=meta["kind"],
            shape=tuple(meta["shape"]),
            fields=tuple(meta.get("fields", ("x",))),
            num_classes=meta.get("num_classes"),
            class_names=meta.get("class_names"),
            class_counts=meta.get("class_counts"),
            shape_b=tuple(meta["shape_b"]) if meta.get("shape_b") else None,
            paired=meta.get("paired", True),
            vocabulary=meta.get("vocabulary"),
            max_words=meta.get("max_words"),
        )
