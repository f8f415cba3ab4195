"""The unconditional GAN: G maps noise to examples, D scores examples (Goodfellow et al. 2014).

Its phases are the shared adversarial ones (tasks/adversarial.py) with nothing but noise and
examples; this module says which nets it builds, what its grid shows and how it samples.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge import nets
from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.tasks.adversarial import AdversarialTask
from ganforge.tasks.base import Batch, resolve_hyper
from ganforge.tasks.sampling import generate


class UnconditionalTask(AdversarialTask):
    """G(z) against D(x) under the configured loss."""

    name = "unconditional"
    needs = ("x",)

    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
        """The configured architecture's (G, D) for the data shape."""
        hyper = resolve_hyper(config, info.kind)
        return nets.build_nets(
            config.model, info.shape, d_norm=hyper.d_norm, out_act=hyper.out_act
        )

    def fixed_inputs(self, n: int, generator: torch.Generator) -> Batch:
        """n latent codes, fixed for the whole run."""
        return {"z": torch.randn(n, self.config.model.z_dim, generator=generator)}

    def grid(self, inputs: Batch) -> tuple[torch.Tensor, int | None]:
        """G's samples for the fixed codes, in a square-ish grid."""
        return generate(self.sampling_G, inputs["z"], device=self.device), None
