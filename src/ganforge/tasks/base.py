"""The task contract: what one kind of GAN must provide to the shared loop, checkpoints and CLI.

A task is everything that differs between kinds of GAN (DESIGN.md, "Tasks"). The training loop,
checkpoints, logging, sampling and evaluation only ever talk to this interface:

- `needs`: the batch fields it reads ("x"; "y" for class labels ...). The loop checks them
  against the data source before anything is trained or written. With `labelled_subset`, y
  is read only on a small balanced subset (data.labels_per_class): batches then hold x (every
  example, unlabelled) plus x_labelled and y_labelled from the subset's own stream.
- built as `Task(config, info, device, noise)`: the config, the data described without its
  examples (DataInfo), the device, and the seeded generator that draws its latent noise.
- `modules()`, `optimizers()`, `state_tensors()`: everything a checkpoint must hold to resume
  exactly (extra state such as a replay buffer goes in `state_tensors`).
- `d_step(batch, keep_fake_for_g)` and `g_step(batch)`: the two phases, on dict batches; each
  returns detached statistics.
- `fixed_inputs(n, generator[, examples])` and `grid(inputs)`: what the training sample grid
  shows (tasks with `shows_examples`, such as image-to-image, get fixed training examples).
- `needs` with "x_b": a second domain (image-to-image); when the source is unpaired the loop
  draws x_b in its own order, so batches never pair an image with its counterpart (also for
  paired data, when the task's `keeps_pairs` is False: CycleGAN learns without pairs).
- `sampler()` and the class method `load_sampler(config, info, tensors, ...)`: a Sampler over
  the live generator, or one rebuilt from checkpoint metadata and tensors alone (no data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.losses import get_loss
from ganforge.tasks.precision import Precision

Batch = dict[str, torch.Tensor]
Stats = dict[str, torch.Tensor]


# The two time-scale update rule's learning rates (G, D) (Heusel et al. 2017, FID paper, sec. 5).
TTUR = (1e-4, 4e-4)


def process_rows(rows: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Process `rank`'s rows of a tensor drawn for the whole step of a torchrun run: every
    world-th row from rank on, the way EpochBatches deals each step's examples. So N processes
    pair the very latent codes and DiffAugment draws with the very examples one process would.
    """
    return rows[rank::world]


@dataclass(frozen=True)
class Hyper:
    """Loss and optimizer settings after the loss's defaults fill what the config left out."""

    optimizer: str
    g_lr: float
    d_lr: float
    betas: tuple[float, float]
    n_critic: int
    gp_weight: float
    clip: float | None
    d_norm: str
    out_act: str


def resolve_hyper(config: Config, kind: str) -> Hyper:
    """Fill None config values from the loss's documented defaults."""
    spec = get_loss(config.loss.name)
    opt = config.optim
    d_norm = config.model.d_norm
    if d_norm == "auto":  # the textbook MLP D and a spectrally normalized D have no norm layers;
        plain = config.model.arch == "mlp" or config.model.spectral_norm != "none"
        d_norm = "none" if plain else spec.d_norm  # DCGAN's follows the loss
    out_act = config.model.out_act
    if out_act == "auto":
        out_act = "tanh" if kind == "image" else "none"
    g_lr, d_lr = TTUR if opt.preset == "ttur" else (spec.lr, spec.lr)
    return Hyper(
        optimizer=opt.name or spec.optimizer,
        g_lr=opt.g_lr if opt.g_lr is not None else g_lr,
        d_lr=opt.d_lr if opt.d_lr is not None else d_lr,
        betas=tuple(opt.betas) if opt.betas is not None else tuple(spec.betas),
        n_critic=opt.n_critic if opt.n_critic is not None else spec.n_critic,
        gp_weight=config.loss.gp_weight if config.loss.gp_weight is not None else spec.gp_weight,
        clip=config.loss.clip if config.loss.clip is not None else spec.clip,
        d_norm=d_norm,
        out_act=out_act,
    )


def make_optimizer(name: str, params, lr: float, betas: tuple[float, float]):
    """Adam or RMSprop, the two optimizers of the GAN papers this toolkit reproduces.

    On CUDA, Adam runs fused (one kernel per step instead of several per parameter group: the
    small nets of GANs are bound by kernel launches); the CPU keeps the default implementation.
    """
    params = list(params)
    if name == "adam":
        fused = bool(params) and all(p.is_cuda for p in params)
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)
    return torch.optim.RMSprop(params, lr=lr)


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all parameter gradients of a module (0 when none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class Task:
    """Base of every task: the contract above, with defaults where most tasks agree."""

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ("x",)
    labelled_subset: ClassVar[bool] = False  # y only on data.labels_per_class examples
    shows_examples: ClassVar[bool] = False  # fixed_inputs takes fixed training examples
    keeps_pairs: ClassVar[bool] = True  # batches keep x_b[i] with x[i] when the data is paired
    hyper: Hyper  # n_critic tells the loop how many D phases come before each G phase
    collect_grad_norms: bool = False  # set by the loop on log steps
    step: int = 0  # the loop's current step, set before each one (for annealed schedules)
    rank: int = 0  # under torchrun: this process's index and the number of processes; each
    world: int = 1  # draws the whole step's latent codes and keeps its rows (own_rows)

    def own_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """This process's rows of something drawn for the whole step (process_rows)."""
        return process_rows(rows, self.rank, self.world)

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        self.config, self.info, self.device, self.noise = config, info, device, noise
        self.precision = Precision(config.train.precision, device)  # autocast, loss scaling

    # -- what a checkpoint holds ---------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Networks by name, for checkpoints."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, for checkpoints."""
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Any further state (buffers, counters) as tensors; restored by load_state_tensors."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what state_tensors returned."""

    def init_from_data(self, batch: Batch) -> None:
        """Data-dependent init of weight-normed layers on real examples, once, when the loop
        builds the task (model.weight_norm with model.weight_norm_init=data; a resumed run's
        restore then overwrites it); tasks whose nets have none leave this as is."""

    # -- the phases ----------------------------------------------------------------------------
    def d_step(self, batch: Batch, keep_fake_for_g: bool) -> Stats:
        """One D update on a batch; keep_fake_for_g: the next g_step may reuse its fakes."""
        raise NotImplementedError

    def g_step(self, batch: Batch) -> Stats:
        """One G update against the current D."""
        raise NotImplementedError

    # -- what the run shows and what users sample ------------------------------------------------
    def fixed_inputs(
        self, n: int, generator: torch.Generator, examples: Batch | None = None
    ) -> Batch:
        """The inputs of the training sample grid, drawn once per run from `generator`;
        with `shows_examples`, `examples` holds n training examples (model scale) to show."""
        raise NotImplementedError

    def grid(self, inputs: Batch) -> tuple[torch.Tensor, int | None]:
        """(model-scale samples for the fixed inputs, images per grid row or None)."""
        raise NotImplementedError

    def sampler(self):
        """A Sampler over the live generator (evaluation during training)."""
        raise NotImplementedError

    @classmethod
    def load_sampler(cls, config: Config, info: DataInfo, states: dict, device: torch.device):
        """A Sampler rebuilt from a checkpoint's config, data info and module states alone
        (states: {module name: state_dict}, as training.generator.group_states makes them)."""
        raise NotImplementedError
