"""The feature-extractor contract every metric driver relies on.

An extractor maps a batch of uint8 images (N, C, H, W) to features (N, D) and, when it has a
classification head, class logits (N, K). Its `digest` (hash of its weight file) and
`description` (preprocessing, e.g. the resize to 299) go into every reported result.
"""

from __future__ import annotations

from typing import Protocol

import torch


class FeatureExtractor(Protocol):
    """What metrics need from a feature network."""

    name: str  # "inception" or "classifier"
    digest: str  # hash of the weight file, reported with every number
    description: str  # preprocessing and layer, e.g. "pool3 2048-d, bilinear resize 28->299"
    num_classes: int | None  # None when there is no classification head

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (N, C, H, W) -> (features float (N, D), logits (N, K) or None)."""
        ...
