"""G against D under one of the registered adversarial losses: the D and G phases every
noise-driven task shares (unconditional, conditional, ...).

A subclass says only what differs: which nets it builds, what G and D see besides noise and
images (`conditioning`), and any extra loss terms (`extra_d_loss`, `extra_g_loss`). The phases
themselves are written once, here:

    D phase: fake = G(z, *c);  loss_D = d_loss(D(x, *c), D(fake, *c)) [+ GP] [+ extra];  clip
    G phase: loss_G = g_loss(D(G(z, *c), *c)) [+ extra], with D's parameters frozen
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.losses import LossSpec, get_loss
from ganforge.penalties import gradient_penalty
from ganforge.tasks.base import Batch, Stats, Task, grad_norm, make_optimizer, resolve_hyper
from ganforge.tasks.sampling import Sampler

Cond = tuple[torch.Tensor, ...]  # what G and D take after z / x (empty when unconditional)
Outputs = tuple[torch.Tensor, torch.Tensor | None]  # (adversarial scores, class logits)


class AdversarialTask(Task):
    """The shared phases; subclasses provide build_nets and, if conditional, conditioning."""

    sampler_class: ClassVar[type[Sampler]] = Sampler  # how users sample this task's G

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        super().__init__(config, info, device, noise)
        self.hyper = resolve_hyper(config, info.kind)
        self.loss: LossSpec = get_loss(config.loss.name)
        generator, discriminator = self.build_nets(config, info)
        self.G = generator.to(device)
        self.D = discriminator.to(device)
        h = self.hyper
        self.opt_g = make_optimizer(h.optimizer, self.G.parameters(), h.g_lr, h.betas)
        self.opt_d = make_optimizer(h.optimizer, self.D.parameters(), h.d_lr, h.betas)
        self._fake_for_g: tuple[torch.Tensor, Cond] | None = None

    # -- what subclasses say ---------------------------------------------------------------------
    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
        """(G, D) for this task; draws weight init from the global torch RNG."""
        raise NotImplementedError

    def conditioning(self, batch: Batch) -> Cond:
        """What G and D see besides z and x for this batch (nothing, unconditionally)."""
        return ()

    def discriminate(self, x: torch.Tensor, cond: Cond) -> Outputs:
        """D's adversarial scores for x (and class logits, for tasks whose D classifies)."""
        return self.D(x, *cond), None

    def extra_d_loss(self, real: Outputs, fake: Outputs, cond: Cond) -> dict[str, torch.Tensor]:
        """Named D loss terms beyond the adversarial one (e.g. AC-GAN's class loss)."""
        return {}

    def extra_g_loss(self, fake: Outputs, cond: Cond) -> dict[str, torch.Tensor]:
        """Named G loss terms beyond the adversarial one."""
        return {}

    # -- sampling ------------------------------------------------------------------------------
    def sampler(self) -> Sampler:
        """A sampler over the live G."""
        return self.sampler_class(self.G, self.info, self.name, self.device)

    @classmethod
    def load_sampler(
        cls, config: Config, info: DataInfo, states: dict, device: torch.device | str = "cpu"
    ) -> Sampler:
        """G rebuilt from the config and data info, with the checkpoint's weights."""
        generator, _ = cls.build_nets(config, info)
        generator.load_state_dict(states["G"])
        return cls.sampler_class(generator.to(device).eval(), info, cls.name, device)

    # -- what a checkpoint holds ---------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Networks by name, for checkpoints."""
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, for checkpoints."""
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    # -- the two phases -------------------------------------------------------------------------
    def noise_batch(self, n: int) -> torch.Tensor:
        """Latent codes z ~ N(0, I) from the task's own generator (part of resume state)."""
        return torch.randn(n, self.G.z_dim, generator=self.noise, device="cpu").to(self.device)

    def d_step(self, batch: Batch, keep_fake_for_g: bool) -> Stats:
        """One D update on a real batch and a fresh fake batch.

        With keep_fake_for_g the fake batch is made with G's graph kept, and the following
        g_step reuses it (as the textbook DCGAN loop does), saving one G forward pass.
        """
        real = batch["x"]
        cond = self.conditioning(batch)
        z = self.noise_batch(real.shape[0])
        if keep_fake_for_g:
            fake = self.G(z, *cond)
            self._fake_for_g = (fake, cond)
            fake_in = fake.detach()
        else:
            with torch.no_grad():
                fake_in = self.G(z, *cond)
        real_out = self.discriminate(real, cond)
        fake_out = self.discriminate(fake_in, cond)
        loss = self.loss.d_loss(real_out[0], fake_out[0])
        stats = {"d_real": real_out[0].detach().mean(), "d_fake": fake_out[0].detach().mean()}
        if self.hyper.gp_weight > 0:
            penalty = gradient_penalty(
                lambda x: self.discriminate(x, cond)[0], real, fake_in, generator=None
            )
            loss = loss + self.hyper.gp_weight * penalty
            stats["gp"] = penalty.detach()
        for name, term in self.extra_d_loss(real_out, fake_out, cond).items():
            loss = loss + term
            stats[name] = term.detach()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        if self.collect_grad_norms:
            stats["d_grad_norm"] = grad_norm(self.D)
        self.opt_d.step()
        if self.hyper.clip is not None:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.hyper.clip, self.hyper.clip)
        stats["d_loss"] = loss.detach()
        return stats

    def g_step(self, batch: Batch) -> Stats:
        """One G update against the current D, whose parameters stay frozen meanwhile."""
        kept, self._fake_for_g = self._fake_for_g, None
        if kept is None:
            cond = self.conditioning(batch)
            kept = (self.G(self.noise_batch(batch["x"].shape[0]), *cond), cond)
        fake, cond = kept
        self.D.requires_grad_(False)
        try:
            fake_out = self.discriminate(fake, cond)
            loss = self.loss.g_loss(fake_out[0])
            stats = {}
            for name, term in self.extra_g_loss(fake_out, cond).items():
                loss = loss + term
                stats[name] = term.detach()
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.D.requires_grad_(True)
        stats["g_loss"] = loss.detach()
        if self.collect_grad_norms:
            stats["g_grad_norm"] = grad_norm(self.G)
        self.opt_g.step()
        return stats
