"""Stacked MNIST (Metz et al. 2017, "Unrolled GANs"; the PacGAN protocol): 1,000 modes.

Each example is three MNIST digits stacked as the R, G and B channels of one 28x28 image; its
label is the mode 100 * d_R + 10 * d_G + d_B (class names "000".."999"), the same numbering as
metrics.modes.stacked_mode_metrics (channel 0 is the hundreds digit).

The digits come from whatever the `mnist` source loads for the same data.split (same data.dir,
$GANFORGE_DATA, cache and download rules; see data/idx.py), so a folder of local MNIST IDX files
serves both: `data.dir=FOLDER` with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in FOLDER
or FOLDER/mnist (benchmarks/mnist_5k_to_idx.py writes such a folder from a small offline copy).

Which three digits make example i is drawn once, uniformly with replacement, by a torch
Generator seeded with a constant: STACKED_SEED (20170224, the date of the Unrolled GANs ICLR
version) for the train split, STACKED_SEED + 1 for the test split. The dataset is therefore the
same in every run, on resume and on every machine, for the same MNIST files. Indices are drawn
in blocks of DRAW_BLOCK examples, so a smaller N is always a prefix of a larger one: data.limit
keeps the first N, as for every source.

N, the number of examples: data.limit when set (it may exceed the MNIST split: the 1,000-mode
space has 10^(3 * split size) possible stacks), else the size of the MNIST split (60,000 for
the full train split, 10,000 for test).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.data.idx import MNIST, IdxSource, load_idx, where
from ganforge.errors import GanforgeError

STACKED_SEED = 20170224  # fixed: the dataset must not depend on the run's seed
DRAW_BLOCK = 10_000  # examples per draw; keeps smaller N a prefix of larger N


@dataclass(frozen=True)
class StackedSource:
    """A dataset whose examples stack `channels` images of a base IDX source as channels."""

    name: str
    description: str
    base: IdxSource
    channels: int = 3
    seed: int = STACKED_SEED

    @property
    def num_classes(self) -> int:
        """Number of modes: base classes ** channels."""
        return len(self.base.class_names) ** self.channels

    @property
    def class_names(self) -> list[str]:
        """Zero-padded mode numbers, "000".."999" for three channels of ten digits."""
        width = len(str(self.num_classes - 1))
        return [str(k).zfill(width) for k in range(self.num_classes)]


STACKED_MNIST = StackedSource(
    name="stacked-mnist",
    description=(
        "Stacked MNIST: three MNIST digits as R, G, B, 28x28, 1,000 modes "
        "(100*R+10*G+B); built from mnist with a fixed draw"
    ),
    base=MNIST,
)

STACKED_SOURCES = {s.name: s for s in (STACKED_MNIST,)}


def stack_indices(base_size: int, n: int, channels: int, seed: int) -> torch.Tensor:
    """(n, channels) int64 indices in [0, base_size), uniform with replacement, fixed by seed.

    Drawn DRAW_BLOCK rows at a time from one CPU generator, so the first k rows do not depend
    on n (a smaller n is a prefix of a larger one).
    """
    if base_size < 1:
        raise GanforgeError("Stacked MNIST needs at least one MNIST image to draw from.")
    gen = torch.Generator().manual_seed(seed)
    blocks = [
        torch.randint(0, base_size, (DRAW_BLOCK, channels), generator=gen)
        for _ in range(-(-n // DRAW_BLOCK))
    ]
    if not blocks:
        return torch.empty(0, channels, dtype=torch.int64)
    return torch.cat(blocks)[:n]


def split_seed(spec: StackedSource, split: str) -> int:
    """The draw's seed for a split: spec.seed for train, spec.seed + 1 for test."""
    return spec.seed + (0 if split == "train" else 1)


def load_stacked(spec: StackedSource, cfg: DataConfig) -> Dataset:
    """The split of a stacked source: uint8 (N, channels, H, W) with mode labels (N,)."""
    base_cfg = dataclasses.replace(cfg, source=spec.base.name, limit=None)
    try:
        base = load_idx(spec.base, base_cfg)
    except GanforgeError as exc:
        raise GanforgeError(f"{spec.name} is built from {spec.base.name}: {exc}") from None
    assert base.labels is not None  # IDX sources always have labels
    n = cfg.limit if cfg.limit is not None else len(base)
    idx = stack_indices(len(base), n, spec.channels, split_seed(spec, cfg.split))
    x = base.x[idx.reshape(-1), 0].reshape(n, spec.channels, *base.x.shape[2:])
    digits = base.labels[idx]  # (n, channels)
    k = len(spec.base.class_names)
    weights = k ** torch.arange(spec.channels - 1, -1, -1)
    return Dataset(
        x=x.contiguous(),
        labels=(digits * weights).sum(dim=1),
        name=f"{spec.name}:{cfg.split}",
        kind="image",
        num_classes=spec.num_classes,
        class_names=spec.class_names,
    )


def stacked_where(spec: StackedSource, cfg: DataConfig | None) -> tuple[bool, str]:
    """(base found locally, where or how) for `ganforge datasets`."""
    found, text = where(spec.base, cfg)
    return found, f"from {spec.base.name}: {text}"
