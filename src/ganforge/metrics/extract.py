"""Batched feature extraction through any FeatureExtractor, with an optional progress bar."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ganforge.metrics.features import FeatureExtractor

# Images per batch when the caller names none, by the extractor's device type: the one place
# this is chosen. 32 keeps CPU memory small; on a GPU, Inception at 299x299 needs large batches
# to be fast (500 takes about 6 GB there; benchmarks/inception_speed.py measures it).
DEFAULT_BATCH_SIZE = {"cpu": 32, "cuda": 500}
FALLBACK_BATCH_SIZE = 32


def default_batch_size(device: str | torch.device | None) -> int:
    """The batch size extract() uses on `device` when it is given none."""
    kind = torch.device(device).type if device is not None else "cpu"
    return DEFAULT_BATCH_SIZE.get(kind, FALLBACK_BATCH_SIZE)


@dataclass(frozen=True)
class Shard:
    """This process's share of an extraction spread over the processes of a torchrun run.

    Each process extracts one contiguous part of the rows; the parts are gathered, so every
    process ends with the features of all rows, in order.
    """

    rank: int
    world: int

    def chunk(self, n: int) -> int:
        return -(-n // self.world)

    def rows(self, n: int) -> slice:
        """This process's rows of n."""
        size = self.chunk(n)
        return slice(min(n, self.rank * size), min(n, (self.rank + 1) * size))

    def gather(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """All processes' parts of (n, D) rows, padded to equal size for all_gather, in order."""
        size = self.chunk(n)
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        padded = torch.zeros(size, *local.shape[1:], dtype=local.dtype, device=device)
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat(parts)[:n].cpu()


def _progress_bar(total: int, desc: str, progress: bool):
    """A tqdm bar, or a no-op when progress is off (tqdm is then not even imported)."""
    if not progress:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False)


def extract(
    extractor: FeatureExtractor,
    images: torch.Tensor,
    batch_size: int | None = None,
    progress: bool = False,
    desc: str = "features",
    shard: Shard | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) float32 and logits (N, K) or None of uint8 images (N, C, H, W).

    Runs under no_grad in fixed batches; the extractors give the same features whatever the
    batch size (tested), so batch_size only trades memory for speed. None picks it from the
    extractor's device (default_batch_size); features come back on the CPU. With a shard (and
    at least one row per process), each process extracts its part and all get every row.
    """
    n = images.shape[0]
    if shard is not None and shard.world > 1 and n >= shard.world:
        feats, logits = extract(extractor, images[shard.rows(n)], batch_size, progress, desc)
        gathered = None if logits is None else shard.gather(logits, n)
        return shard.gather(feats, n), gathered
    if batch_size is None:
        batch_size = default_batch_size(getattr(extractor, "device", None))
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    features, logits = [], []
    with torch.no_grad(), _progress_bar(images.shape[0], desc, progress) as bar:
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            f, lg = extractor(batch)
            features.append(f.detach().float().cpu())
            if lg is not None:
                logits.append(lg.detach().float().cpu())
            if bar is not None:
                bar.update(batch.shape[0])
    feats = torch.cat(features) if features else torch.empty(0, 0)
    return feats, (torch.cat(logits) if logits else None)
