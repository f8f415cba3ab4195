"""Targets of `ganforge eval` that are not runs: an image folder, a .npy/.npz file of samples,
or real:SOURCE[:split], each turned into a sampler fake(n, seed) for metrics.evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics import evaluate as ev
from ganforge.metrics.samples import select


def _native_resolution(folder: Path) -> int | None:
    """Shorter side of the first image under folder (None when there is none)."""
    from PIL import Image

    from ganforge.data.folder import scan

    files = scan(folder)
    if not files:
        return None
    with Image.open(files[0]) as image:
        return min(image.size)


def fake_from_target(target: str, resolution: int | None = None) -> ev.Sampler:
    """A sampler fake(n, seed) for an image folder, a .npy/.npz file or real:SOURCE[:split].

    Samples are drawn as the reference is (all when n equals the count, else a seeded random
    subset), with seed + 1 so real:X vs X with n < N compares two different subsets. A folder
    is read at its images' own resolution (the first image's shorter side) unless `resolution`
    is given. Run dirs and checkpoints are resolved by the CLI through the training code.
    """
    if target.startswith("real:"):
        config = ev.parse_against(target[len("real:") :])
        label = f"real:{config.source}:{config.split}"
    else:
        path = Path(target).expanduser()
        if path.is_dir():
            kind = "folder"
        elif path.suffix in (".npy", ".npz") and path.is_file():
            kind = path.suffix[1:]
        else:
            raise GanforgeError(
                f"Cannot evaluate '{target}': give an image folder, a .npy/.npz file of "
                "samples, real:SOURCE[:split], or a run dir / checkpoint (via ganforge eval)."
            )
        config = DataConfig(source=f"{kind}:{path}", resolution=resolution, download=False)
        label = f"{kind}:{path}"
    loaded: list[Any] = []

    def sample(n: int, seed: int) -> torch.Tensor:
        """n samples of the target, loaded on first use, drawn as the reference is."""
        if not loaded:
            if config.source.startswith("folder:") and config.resolution is None:
                config.resolution = _native_resolution(Path(config.source[len("folder:") :]))
            loaded.append(ev._build_dataset(config))
        return select(loaded[0].x, n, seed + 1, label)[0]

    def count() -> int:
        """How many samples the target holds (loads it)."""
        sample(0, 0)
        return len(loaded[0].x)

    sample.description = label  # type: ignore[attr-defined]
    sample.count = count  # type: ignore[attr-defined]
    return sample
