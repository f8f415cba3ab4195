"""The in-memory dataset every data source returns, and its conversions to model scale."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganforge.images import from_uint8


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

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of stored examples in model scale: images in [-1, 1], vectors as they are."""
        return from_uint8(x) if self.kind == "image" else x.float()


def to_data_scale(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Model-scale samples to the data's own scale: images float32 in [0, 1], vectors as is."""
    if kind == "image":
        return x.detach().float().clamp(-1, 1).add(1).div(2)
    return x.detach().float()
