"""Samplers: a trained generator ready for `ganforge sample`, evaluation and export.

A Sampler is built by a task, either over its live G (evaluation during training) or from a
checkpoint's metadata and tensors alone. `draw(n, seed, request)` gives model-scale samples;
`request` holds the user's conditions by name (e.g. {"class": "Sandal,Coat"}), and a sampler
refuses conditions it does not take. `eval_fn()` gives the fake(n, seed) callable that
ganforge.metrics.evaluate consumes: samples in the data's scale (uint8 images), with the
requested labels for conditional generators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.data.dataset import DataInfo, to_data_scale
from ganforge.errors import GanforgeError
from ganforge.images import to_uint8

# what to train for a sampling option a run does not take
TRAINED_FOR = {
    "class": "a conditional GAN (task.name=conditional) on labelled data",
    "text": "a text-to-image GAN (task.name=text) on captioned data",
    "text_to": "a text-to-image GAN (task.name=text) on captioned data",
}
GENERATE_BATCH = 500  # samples per G forward pass when sampling (bounds memory, not results)


@dataclass
class Drawn:
    """Model-scale samples on the CPU, their class labels (if any), images per grid row."""

    x: torch.Tensor
    labels: torch.Tensor | None = None
    nrow: int | None = None
    captions: list[str] | None = None  # one per grid row, printed beside it (text prompts)


@torch.no_grad()
def generate(
    G: nn.Module, z: torch.Tensor, *cond: torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """G(z, *cond) in eval mode, GENERATE_BATCH at a time, on the CPU (independent of batching)."""
    was_training = G.training
    G.eval()
    try:
        parts = [
            G(z[i : i + GENERATE_BATCH].to(device),
              *(c[i : i + GENERATE_BATCH].to(device) for c in cond)).cpu()
            for i in range(0, z.shape[0], GENERATE_BATCH)
        ]
    finally:
        G.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0)


def data_edge(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Model-scale samples at the metric edge: uint8 images, vectors in the data's scale."""
    return to_uint8(x) if kind == "image" else to_data_scale(x, kind)


class Sampler:
    """An unconditional generator: z ~ N(0, I) from a seeded generator -> samples."""

    options: ClassVar[tuple[str, ...]] = ()  # the request keys this sampler understands
    flags: ClassVar[tuple[str, ...]] = ()  # the `ganforge sample` options behind them

    def __init__(
        self, G: nn.Module, info: DataInfo, task: str, device: torch.device | str = "cpu"
    ) -> None:
        self.G, self.info, self.task, self.device = G, info, task, device
        self.truncation = 1.0  # psi of the truncation trick (set_truncation); 1 is off
        self.z_scale = 1.0  # what noise() scales z by: psi, unless G truncates in w space

    def set_truncation(self, psi: float) -> None:
        """Sample more typical, less varied images: a style-based G moves w towards its
        average (w_avg + psi (w - w_avg)); any other G reads z scaled by psi, the Gaussian's
        temperature (Kingma & Dhariwal 2018; cf. the truncation trick of Brock et al. 2019).
        psi in [0, 1]; 1 is off."""
        from ganforge.nets.style import StyleGenerator, check_truncation, set_truncation

        check_truncation(psi)
        self.truncation = float(psi)
        if any(isinstance(m, StyleGenerator) for m in self.G.modules()):
            set_truncation(self.G, psi)
        else:
            self.z_scale = float(psi)

    def describe(self) -> str:
        """What the samples come from, as an evaluation protocol names it."""
        truncated = f", truncation {self.truncation:g}" if self.truncation != 1.0 else ""
        return f"generator ({self.task}){truncated}"

    @property
    def kind(self) -> str:
        """'image' or 'vector'."""
        return self.info.kind

    def check_request(self, request: dict[str, Any] | None) -> dict[str, Any]:
        """The request without empty entries; a clear error for a condition not taken here."""
        request = {k: v for k, v in (request or {}).items() if v is not None}
        extra = [k for k in request if k not in self.options]
        if extra:
            flag = "--" + extra[0].replace("_", "-")
            takes = ", ".join(self.flags) or "no conditions"
            kind = TRAINED_FOR.get(extra[0], TRAINED_FOR["class"])
            raise GanforgeError(
                f"{flag} does not apply to this run: it was trained with task "
                f"'{self.task}', which takes {takes}. Sample it without {flag}, or train "
                f"{kind}."
            )
        return request

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latent codes from `generator` (the first draw of a seeded generator), scaled by
        the truncation when one is set."""
        z = torch.randn(n, self.G.z_dim, generator=generator)
        return z if self.z_scale == 1.0 else z * self.z_scale

    def draw(self, n: int, seed: int, request: dict[str, Any] | None = None) -> Drawn:
        """n samples from noise seeded by `seed`."""
        self.check_request(request)
        z = self.noise(n, torch.Generator().manual_seed(seed))
        return Drawn(generate(self.G, z, device=self.device))

    def eval_fn(self, labels: str = "uniform") -> Callable[[int, int], Any]:
        """fake(n, seed) -> samples at the metric edge, as ganforge.metrics.evaluate takes."""

        def fake(n: int, seed: int) -> torch.Tensor:
            return data_edge(self.draw(n, seed).x, self.kind)

        fake.description = self.describe()  # type: ignore[attr-defined]
        return fake
