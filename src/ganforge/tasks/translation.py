"""What the image-to-image tasks (pix2pix, cyclegan) share: their nets, their sampler (a
translator, not a noise sampler), their sample grids and their checkpoint plumbing.

The batch holds x (domain A, the input) and x_b (domain B). There is no latent noise: pix2pix's
randomness is G's dropout (Isola et al. 2017), CycleGAN has none. Users translate with
`ganforge translate RUN INPUT`, which calls `TranslationSampler.translate` in eval mode (batch
norm running statistics, no dropout), so a translation is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.losses import adversarial_loss
from ganforge.nets.translate import (
    PatchDiscriminator,
    ResnetGenerator,
    UNet,
    auto_patch_layers,
)
from ganforge.tasks.base import Batch, Stats, Task, grad_norm, make_optimizer, resolve_hyper
from ganforge.tasks.sampling import Sampler, generate

GRID_GROUPS = 4  # examples side by side in one grid row (each group: input | output | ...)
DIRECTIONS = ("AtoB", "BtoA")


def translator_norm(config: Config, default: str) -> str:
    """model.translator_norm, with auto resolved to the task's paper default."""
    norm = config.model.translator_norm
    return default if norm == "auto" else norm


def build_translator(
    config: Config, in_channels: int, out_channels: int, resolution: int, norm: str
) -> nn.Module:
    """The generator model.translator names, for one direction."""
    m = config.model
    if m.translator == "resnet":
        return ResnetGenerator(
            in_channels, out_channels, resolution, m.g_width, norm, blocks=m.resnet_blocks
        )
    return UNet(
        in_channels, out_channels, resolution, m.g_width, norm, dropout=m.dropout,
        skips=m.translator == "unet",
    )


def build_patch_d(config: Config, in_channels: int, resolution: int, norm: str) -> nn.Module:
    """The PatchGAN D (model.patch_layers strided layers; 0: sized for the resolution)."""
    layers = config.model.patch_layers or auto_patch_layers(resolution)
    return PatchDiscriminator(in_channels, resolution, config.model.d_width, layers, norm)


def check_images(info: DataInfo, task: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(A's shape, B's shape) of square image pairs; a clear error for anything else."""
    if info.kind != "image" or info.shape_b is None:
        raise GanforgeError(
            f"task.name={task} translates images of one domain into another; data.source "
            f"'{info.name}' has no second domain."
        )
    shape_a, shape_b = tuple(info.shape), tuple(info.shape_b)
    if shape_a[1:] != shape_b[1:] or shape_a[1] != shape_a[2]:
        raise GanforgeError(
            f"task.name={task} needs square A and B images of one size; here A is "
            f"{shape_a} and B {shape_b}. Set data.resolution=N to resize both to N x N."
        )
    return shape_a, shape_b


def user_directions(config: Config, nets: dict[str, nn.Module], names: dict[str, str]):
    """{'AtoB'/'BtoA': G}: the task's forward G (x -> x_b) under data.direction's name, its
    backward G (if any) under the other name."""
    forward = config.data.direction
    backward = DIRECTIONS[1 - DIRECTIONS.index(forward)]
    named = {forward: nets[names["forward"]]}
    if "backward" in names:
        named[backward] = nets[names["backward"]]
    return named


class TranslationSampler(Sampler):
    """A trained translator: images of one domain -> the other (one G per direction).

    Directions are named as the data's domains: with data.direction=AtoB the run's x is A.
    """

    def __init__(
        self, translators: dict[str, nn.Module], info: DataInfo, task: str, forward: str,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(translators[forward], info, task, device)
        self.translators, self.forward = translators, forward

    def set_truncation(self, psi: float) -> None:
        """Refused: a translator reads an image, not noise, so there is nothing to truncate."""
        raise GanforgeError(
            f"--truncation {psi:g} does not apply to this run: task '{self.task}' translates "
            "images and draws no noise. Translate without --truncation."
        )

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions this run can translate in."""
        return tuple(self.translators)

    def translator(self, direction: str) -> nn.Module:
        """The G of one direction; a clear error for one this run did not learn."""
        if direction not in self.translators:
            raise GanforgeError(
                f"--direction {direction}: this {self.task} run learned "
                f"{' and '.join(self.directions)} only (data.direction picks the training "
                "direction; a cyclegan run learns both)."
            )
        return self.translators[direction]

    def translate(self, x: torch.Tensor, direction: str | None = None) -> torch.Tensor:
        """Model-scale images of the input domain -> model-scale translations, on the CPU
        (direction: the training direction when None)."""
        return generate(self.translator(direction or self.forward), x, device=self.device)

    def input_shape(self, direction: str | None = None) -> tuple[int, ...]:
        """(C, H, W) of the images a direction reads (the run's x for the forward one)."""
        forward = direction in (None, self.forward)
        return tuple(self.info.shape if forward else self.info.shape_b)

    def refuse(self, what: str) -> GanforgeError:
        """The error for noise sampling, which a translator does not do."""
        return GanforgeError(
            f"This run ({self.task}) translates images rather than {what}: use `ganforge "
            "translate RUN INPUT --out OUT` for images, and `ganforge eval RUN` for its metrics."
        )

    def draw(self, n: int, seed: int, request: dict[str, Any] | None = None):
        """Refused: a translator has no noise to sample from."""
        raise self.refuse("sampling from noise")

    def eval_fn(self, labels: str = "uniform"):
        """Refused: translation runs are scored by metrics.translation on paired test data."""
        raise self.refuse("sampling from noise")


class TranslationTask(Task):
    """Shared plumbing: hyperparameters, the loss, optimizers, grids, samplers, checkpoints.

    Subclasses build `self.nets` (name -> module; generators named G or G_AB / G_BA) and say
    which generator translates each direction (`translators`), what one fake batch is, and
    the two phases.
    """

    needs = ("x", "x_b")
    shows_examples = True  # the grid shows fixed training examples, not fixed noise
    default_norm: ClassVar[str] = "batch"

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        super().__init__(config, info, device, noise)
        self.shape_a, self.shape_b = check_images(info, self.name)
        self.hyper = resolve_hyper(config, info.kind)
        self.loss = adversarial_loss(config.loss.name, [])
        self.norm = translator_norm(config, self.default_norm)
        self.nets = {k: v.to(device) for k, v in self.build_nets(config, info).items()}
        h = self.hyper
        self.opt_g = make_optimizer(h.optimizer, self.generator_params(), h.g_lr, h.betas)
        d_params = self.discriminator_params()
        self.opt_d = make_optimizer(h.optimizer, d_params, h.d_lr, h.betas) if d_params else None
        self._kept: dict[str, torch.Tensor] | None = None  # fakes of the last D phase, for G

    # -- what subclasses say --------------------------------------------------------------------
    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> dict[str, nn.Module]:
        """The task's nets by checkpoint name."""
        raise NotImplementedError

    @classmethod
    def translator_names(cls, config: Config) -> dict[str, str]:
        """'forward' (x -> x_b) and, if learned, 'backward' -> the name of the net."""
        raise NotImplementedError

    def generator_params(self) -> list[nn.Parameter]:
        """Parameters of every generator (one optimizer, as the reference)."""
        return [p for k, m in self.nets.items() if k.startswith("G") for p in m.parameters()]

    def discriminator_params(self) -> list[nn.Parameter]:
        """Parameters of every discriminator (none for the L1-only baseline)."""
        return [p for k, m in self.nets.items() if k.startswith("D") for p in m.parameters()]

    def grid_panels(self, x: torch.Tensor, x_b: torch.Tensor) -> list[torch.Tensor]:
        """The images of one grid group, each (N, C, H, W) in model scale."""
        raise NotImplementedError

    # -- checkpoints ------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Networks by name, for checkpoints."""
        return dict(self.nets)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, for checkpoints."""
        opts = {"opt_g": self.opt_g}
        if self.opt_d is not None:
            opts["opt_d"] = self.opt_d
        return opts

    # -- shared pieces of the phases --------------------------------------------------------------
    def step_optimizer(
        self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, nets: list[str],
        stats: Stats, stat: str,
    ) -> None:
        """Backpropagate loss and step optimizer (grad norm of `nets` on log steps)."""
        name = next(k for k, v in self.optimizers().items() if v is optimizer)
        optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss, name)
        if self.collect_grad_norms:
            self.precision.unscale(optimizer, name)
            norms = torch.stack([grad_norm(self.nets[k]) for k in nets])
            stats[stat] = torch.linalg.vector_norm(norms)
        self.precision.step(optimizer, name)

    @contextmanager
    def frozen(self, names: list[str]) -> Iterator[None]:
        """The named nets' parameters need no gradients inside (D during the G phase)."""
        for k in names:
            self.nets[k].requires_grad_(False)
        try:
            yield
        finally:
            for k in names:
                self.nets[k].requires_grad_(True)

    # -- grids and samplers -----------------------------------------------------------------------
    def fixed_inputs(
        self, n: int, generator: torch.Generator, examples: Batch | None = None
    ) -> Batch:
        """Up to 16 fixed training examples (x and x_b) for the grid; `examples` holds them."""
        if examples is None:
            raise ValueError(f"{self.name}'s grid shows training examples: pass examples")
        return {k: v[: min(n, 16)] for k, v in examples.items()}

    @torch.no_grad()
    def grid(self, inputs: Batch) -> tuple[torch.Tensor, int | None]:
        """Groups of panels (input | output | target ...), GRID_GROUPS groups per row."""
        x, x_b = inputs["x"].to(self.device), inputs["x_b"].to(self.device)
        was = {k: m.training for k, m in self.nets.items()}
        for m in self.nets.values():
            m.eval()
        try:
            panels = [p.cpu() for p in self.grid_panels(x, x_b)]
        finally:
            for k, m in self.nets.items():
                m.train(was[k])
        panels = [p.expand(-1, max(q.shape[1] for q in panels), -1, -1) for p in panels]
        grouped = torch.stack(panels, dim=1).flatten(0, 1)  # ex0 panels, ex1 panels, ...
        return grouped, len(panels) * GRID_GROUPS

    def sampler(self) -> TranslationSampler:
        """A translator over the live generators."""
        translators = user_directions(self.config, self.nets, self.translator_names(self.config))
        return TranslationSampler(
            translators, self.info, self.name, self.config.data.direction, self.device
        )

    @classmethod
    def load_sampler(
        cls, config: Config, info: DataInfo, states: dict, device: torch.device | str = "cpu"
    ) -> TranslationSampler:
        """The generators rebuilt from the config and data info, with the checkpoint's weights."""
        nets = cls.build_nets(config, info)
        names = cls.translator_names(config)
        for name in names.values():
            nets[name].load_state_dict(states[name])
            nets[name].to(device).eval()
        translators = user_directions(config, nets, names)
        return TranslationSampler(translators, info, cls.name, config.data.direction, device)
