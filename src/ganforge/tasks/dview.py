"""What D sees of an example: DiffAugment and annealed instance noise, the same for real and fake.

Both remedies change D's inputs only, never the data G learns to imitate:
- DiffAugment (Zhao et al. 2020): differentiable color / translation / cutout applied to the
  real and the fake batch of a D step with the same drawn parameters, and to G's fakes in the G
  step, so G's gradient passes through the augmentation.
- Instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017): Gaussian noise added to every
  D input, its std annealed linearly from stabilize.instance_noise to 0, so that the real and
  fake distributions overlap early in training and D's gradient stays informative.
DiffAugment's parameters come from the task's noise generator; under torchrun every process
draws them for the whole step and keeps its own rows (process_rows), so N processes augment each
example as one process would. Instance noise is drawn on x's device from the global RNG, each
process's own stream. Checkpoints save both, so resume is exact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganforge.tasks import diffaugment
from ganforge.tasks.base import process_rows

View = Callable[[Tensor], Tensor]


def instance_noise_std(initial: float, step: int, anneal_steps: int) -> float:
    """Linear anneal: initial at step 0, 0 from step anneal_steps on."""
    if initial <= 0:
        return 0.0
    return initial * max(0.0, 1.0 - step / anneal_steps)


class DView:
    """Draws one view per D phase (DiffAugment parameters, instance-noise std) and applies it."""

    def __init__(
        self, policy: list[str], noise_std: float, anneal_steps: int, generator: torch.Generator
    ) -> None:
        self.policy = list(policy)
        self.noise_std, self.anneal_steps = noise_std, anneal_steps
        self.generator = generator

    @property
    def active(self) -> bool:
        """Whether D sees anything but the raw examples."""
        return bool(self.policy) or self.noise_std > 0

    def draw(self, like: Tensor, step: int, rank: int = 0, world: int = 1) -> View:
        """A view for batches shaped like `like`: apply it to the real and the fake batch.

        rank and world: this process of a torchrun run, whose batch is one of world shares.
        """
        if not self.active:
            return lambda x: x
        params = None
        if self.policy:
            n, c, h, w = like.shape
            drawn = diffaugment.draw(self.policy, n * world, h, w, c, self.generator)
            params = {k: process_rows(v, rank, world) for k, v in drawn.items() if k != "shape"}
            params["shape"] = torch.tensor([n, c, h, w])
        std = instance_noise_std(self.noise_std, step, self.anneal_steps)

        def view(x: Tensor) -> Tensor:
            if params is not None:
                x = diffaugment.apply(x, params)
            if std > 0:  # per element: no pairing to keep, so no whole-step draw on the CPU
                x = x + std * torch.randn_like(x)
            return x

        return view
