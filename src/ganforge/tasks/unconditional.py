"""The unconditional GAN task: one D step and one G step, for every adversarial loss.

This is the only place that knows how G and D interact for unconditional training. The
training loop calls `d_step` n_critic times, then `g_step`; both return detached statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganforge import nets
from ganforge.config import Config
from ganforge.losses import LossSpec, get_loss
from ganforge.penalties import gradient_penalty


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
    if d_norm == "auto":  # the textbook MLP D has no normalization; DCGAN's follows the loss
        d_norm = "none" if config.model.arch == "mlp" else spec.d_norm
    out_act = config.model.out_act
    if out_act == "auto":
        out_act = "tanh" if kind == "image" else "none"
    return Hyper(
        optimizer=opt.name or spec.optimizer,
        g_lr=opt.g_lr if opt.g_lr is not None else spec.lr,
        d_lr=opt.d_lr if opt.d_lr is not None else spec.lr,
        betas=tuple(opt.betas) if opt.betas is not None else tuple(spec.betas),
        n_critic=opt.n_critic if opt.n_critic is not None else spec.n_critic,
        gp_weight=config.loss.gp_weight if config.loss.gp_weight is not None else spec.gp_weight,
        clip=config.loss.clip if config.loss.clip is not None else spec.clip,
        d_norm=d_norm,
        out_act=out_act,
    )


def make_optimizer(name: str, params, lr: float, betas: tuple[float, float]):
    """Adam or RMSprop, the two optimizers of the GAN papers this toolkit reproduces."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas)
    return torch.optim.RMSprop(params, lr=lr)


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all parameter gradients of a module (0 when none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class UnconditionalTask:
    """G maps noise to examples; D scores examples; the loss says how each is trained."""

    def __init__(
        self,
        config: Config,
        data_shape: tuple[int, ...],
        kind: str,
        device: torch.device,
        noise: torch.Generator,
    ) -> None:
        self.config = config
        self.hyper = resolve_hyper(config, kind)
        self.loss: LossSpec = get_loss(config.loss.name)
        self.device = device
        self.noise = noise
        generator, discriminator = nets.build_nets(
            config.model, data_shape, d_norm=self.hyper.d_norm, out_act=self.hyper.out_act
        )
        self.G = generator.to(device)
        self.D = discriminator.to(device)
        h = self.hyper
        self.opt_g = make_optimizer(h.optimizer, self.G.parameters(), h.g_lr, h.betas)
        self.opt_d = make_optimizer(h.optimizer, self.D.parameters(), h.d_lr, h.betas)
        self.collect_grad_norms = False
        self._fake_for_g: torch.Tensor | None = None

    # -- what a checkpoint holds ---------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Networks by name, for checkpoints."""
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, for checkpoints."""
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    # -- the two phases -----------------------------------------------------------------------
    def noise_batch(self, n: int) -> torch.Tensor:
        """Latent codes z ~ N(0, I) from the task's own generator (part of resume state)."""
        return torch.randn(n, self.G.z_dim, generator=self.noise, device="cpu").to(self.device)

    def d_step(self, real: torch.Tensor, keep_fake_for_g: bool) -> dict[str, torch.Tensor]:
        """One D update on a real batch and a fresh fake batch.

        With keep_fake_for_g the fake batch is made with G's graph kept, and the following
        g_step reuses it (as the textbook DCGAN loop does), saving one G forward pass.
        """
        z = self.noise_batch(real.shape[0])
        if keep_fake_for_g:
            fake = self.G(z)
            self._fake_for_g = fake
            fake_in = fake.detach()
        else:
            with torch.no_grad():
                fake_in = self.G(z)
        real_scores = self.D(real)
        fake_scores = self.D(fake_in)
        loss = self.loss.d_loss(real_scores, fake_scores)
        stats = {"d_real": real_scores.detach().mean(), "d_fake": fake_scores.detach().mean()}
        if self.hyper.gp_weight > 0:
            penalty = gradient_penalty(self.D, real, fake_in, generator=None)
            loss = loss + self.hyper.gp_weight * penalty
            stats["gp"] = penalty.detach()
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

    def g_step(self, batch_size: int) -> dict[str, torch.Tensor]:
        """One G update against the current D, whose parameters stay frozen meanwhile."""
        fake = self._fake_for_g
        self._fake_for_g = None
        if fake is None:
            fake = self.G(self.noise_batch(batch_size))
        self.D.requires_grad_(False)
        try:
            loss = self.loss.g_loss(self.D(fake))
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.D.requires_grad_(True)
        stats = {"g_loss": loss.detach()}
        if self.collect_grad_norms:
            stats["g_grad_norm"] = grad_norm(self.G)
        self.opt_g.step()
        return stats

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Model-scale samples for given noise, with G in eval mode (BatchNorm running stats)."""
        was_training = self.G.training
        self.G.eval()
        try:
            return self.G(z.to(self.device))
        finally:
            self.G.train(was_training)
