"""Use a trained generator: rebuild it from a checkpoint (no data, no pickle) and sample it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge import config as configlib
from ganforge import nets
from ganforge.data.dataset import to_data_scale
from ganforge.images import to_uint8
from ganforge.tasks import resolve_hyper
from ganforge.training import checkpoint


@dataclass
class LoadedGenerator:
    """A generator in eval mode with what is known about the data it imitates."""

    G: nn.Module
    kind: str  # "image" or "vector"
    shape: tuple[int, ...]
    step: int
    checkpoint: Path
    meta: dict[str, Any]


def load_generator(target: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    """G of a run directory's newest checkpoint, or of a given checkpoint file."""
    json_path = checkpoint.resolve(target)
    tensors, meta = checkpoint.load(json_path)
    config = configlib.from_dict(meta["config"])
    kind, shape = meta["data"]["kind"], tuple(meta["data"]["shape"])
    hyper = resolve_hyper(config, kind)
    generator, _ = nets.build_nets(config.model, shape, d_norm=hyper.d_norm, out_act=hyper.out_act)
    generator.load_state_dict(checkpoint.module_state(tensors, "G"))
    generator.to(device).eval()
    return LoadedGenerator(generator, kind, shape, int(meta["step"]), json_path, meta)


@torch.no_grad()
def generate(
    G: nn.Module, n: int, seed: int, device: torch.device | str = "cpu", batch_size: int = 500
) -> torch.Tensor:
    """n model-scale samples from noise seeded by `seed` (independent of batch_size)."""
    noise = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=noise)
    was_training = G.training
    G.eval()
    try:
        parts = [G(z[i : i + batch_size].to(device)).cpu() for i in range(0, n, batch_size)]
    finally:
        G.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0)


def make_fake_fn(
    G: nn.Module, kind: str, device: torch.device | str = "cpu"
) -> Callable[[int, int], torch.Tensor]:
    """fake(n, seed) -> samples in the data's scale at the metric edge (uint8 images, points)."""

    def fake(n: int, seed: int) -> torch.Tensor:
        x = generate(G, n, seed, device)
        return to_uint8(x) if kind == "image" else to_data_scale(x, kind)

    return fake
