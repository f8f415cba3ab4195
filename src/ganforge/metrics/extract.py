"""Batched feature extraction through any FeatureExtractor, with an optional progress bar."""

from __future__ import annotations

import torch
from tqdm import tqdm

from ganforge.metrics.features import FeatureExtractor


def extract(
    extractor: FeatureExtractor,
    images: torch.Tensor,
    batch_size: int = 32,
    progress: bool = False,
    desc: str = "features",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) float32 and logits (N, K) or None of uint8 images (N, C, H, W).

    Runs under no_grad in fixed batches; the extractors give the same features whatever the
    batch size (tested), so batch_size only trades memory for speed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    features, logits = [], []
    with (
        torch.no_grad(),
        tqdm(
            total=images.shape[0], desc=desc, unit="img", disable=not progress, leave=False
        ) as bar,
    ):
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            f, lg = extractor(batch)
            features.append(f.detach().float().cpu())
            if lg is not None:
                logits.append(lg.detach().float().cpu())
            bar.update(batch.shape[0])
    feats = torch.cat(features) if features else torch.empty(0, 0)
    return feats, (torch.cat(logits) if logits else None)
