"""An exponential moving average (EMA) of the generator's weights, to sample from.

G's weights oscillate from step to step as G and D chase each other; their running average
gives better and steadier samples than the latest weights at no training cost (Karras et al.
2018, "Progressive Growing of GANs", which samples from such an average; Yazıcı et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training", which measures it).

Each update moves the average towards the live weights, p_ema = d * p_ema + (1 - d) * p, with
a decay d that ramps up as min(decay, (1 + step) / (10 + step)), the `num_updates` rule of
TensorFlow's ExponentialMovingAverage: early on the average forgets the random initialization
quickly instead of dragging it along for ~1 / (1 - decay) steps.

Buffers are not averaged. The power-iteration vectors u, v of spectral norm
(torch.nn.utils.parametrizations.spectral_norm) are copied: the weight is a parameter like any
other (`parametrizations.weight.original`) and is averaged, and the averaged net normalizes it
with the live net's u, v, an estimate of the top singular vectors of a nearby matrix, as other
EMA implementations of spectral-normalized G's do too.

BatchNorm's running statistics cannot be copied: the live net's statistics describe the live
net's activations, not the average's, and an average normalized with them samples badly
(ring8, a BatchNorm MLP G at decay 0.999: 41% high-quality samples against the live G's 86%;
with statistics of its own, 85%). With own_statistics, each update instead runs the average
once on the live net's latest training inputs, with only its BatchNorm layers in training
mode, so their running statistics track the average's own activations (the idea of BigGAN's
"standing statistics", Brock et al. 2019, kept up to date during training at the cost of one
forward pass without gradients per update). Without BatchNorm nothing extra runs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def ema_decay(decay: float, step: int) -> float:
    """The decay used at `step` (0-based): min(decay, (1 + step) / (10 + step))."""
    return min(decay, (1 + step) / (10 + step))


class EMA:
    """A frozen copy of a model whose parameters follow the model's as a moving average."""

    def __init__(self, model: nn.Module, decay: float, own_statistics: bool = False) -> None:
        """Start the average at the model's current weights (a deep copy, in eval mode).

        own_statistics: BatchNorm statistics of the average's own (see the module docstring);
        model's training-mode inputs are remembered for it. Off: they are copied from model.
        """
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        for p in self.model.parameters():
            p.grad = None
        self.own_statistics = own_statistics and bool(self.norms())
        self.inputs: tuple | None = None  # the live model's latest training-mode inputs
        if self.own_statistics:
            model.register_forward_pre_hook(self._remember)

    def norms(self) -> list[_BatchNorm]:
        """The average's BatchNorm layers (looked up each time: SyncBatchNorm may replace them)."""
        return [m for m in self.model.modules() if isinstance(m, _BatchNorm)]

    def _remember(self, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook on the live model: keep its training inputs (detached)."""
        if module.training:
            self.inputs = tuple(a.detach() if torch.is_tensor(a) else a for a in args)

    @torch.no_grad()
    def update(self, source: nn.Module, step: int) -> None:
        """Average source's parameters into the copy with ema_decay(decay, step); copy the
        buffers, except BatchNorm statistics of its own (refreshed on the latest inputs)."""
        d = ema_decay(self.decay, step)
        pairs = _matched(self.model.named_parameters(), source.named_parameters(), "parameter")
        mine, theirs = [p for p, _ in pairs], [q.detach() for _, q in pairs]
        torch._foreach_mul_(mine, d)  # one fused launch per list, not two per tensor
        torch._foreach_add_(mine, theirs, alpha=1.0 - d)
        norms = self.norms() if self.own_statistics else []
        own = {id(b) for norm in norms for b in norm.buffers()}  # the average's own statistics
        for mine, theirs in _matched(self.model.named_buffers(), source.named_buffers(), "buffer"):
            if id(mine) not in own:
                mine.copy_(theirs)
        if norms and self.inputs is not None:
            self.refresh_statistics(norms, self.inputs)

    @torch.no_grad()
    def refresh_statistics(self, norms: list[_BatchNorm], inputs: tuple) -> None:
        """One pass of the average on inputs with only its BatchNorm layers (norms) in training
        mode (no dropout or noise draws): their running statistics move towards its own."""
        for norm in norms:
            norm.train()
        try:
            self.model(*inputs)
        finally:
            for norm in norms:
                norm.eval()

    @torch.no_grad()
    def restart(self, source: nn.Module) -> None:
        """Make the average an exact copy of source again (after source was re-initialized)."""
        self.model.load_state_dict(source.state_dict())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged model's state (parameters and buffers), for checkpoints."""
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what state_dict returned (strictly: same names and shapes)."""
        self.model.load_state_dict(state)


def _matched(
    mine: Iterable[tuple[str, torch.Tensor]], theirs: Iterable[tuple[str, torch.Tensor]], what: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs (my tensor, their tensor) by name; both sides must have the same names."""
    by_name = dict(theirs)
    pairs = []
    for name, tensor in mine:
        if name not in by_name:
            raise ValueError(f"EMA: the source model has no {what} '{name}'; is it the same net?")
        pairs.append((tensor, by_name.pop(name)))
    if by_name:
        raise ValueError(f"EMA: the average lacks the source's {what}s {sorted(by_name)}")
    return pairs
