"""G against D under one of the registered adversarial losses: the D and G phases every
noise-driven task shares (unconditional, conditional, ...), with every stabilizer switched on
by config.

A subclass says only what differs: which nets it builds, what G and D see besides noise and
images (`conditioning`), and any extra loss terms (`extra_d_loss`, `extra_g_loss`). The phases
themselves are written once, here (v = this phase's view of D's inputs, tasks/dview.py):

    D phase: fake = G(z, *c) [some rows replaced by past fakes];
             loss_D = d_loss(D(v(x), *c), D(v(fake), *c)) [+ GP] [+ DRAGAN] [+ lazy R1] [+ extra]
             (skipped while D's batch accuracy is above stabilize.d_skip_above); clip
    G phase: loss_G = w * g_loss(D(v(G(z, *c)), *c)) [+ feature matching] [+ extra], D frozen
             (skipped while D's last accuracy is below stabilize.g_skip_below); EMA of G
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ganforge.config import Config
from ganforge.config_rules import parse_mix
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.losses import adversarial_loss
from ganforge.nets.semi import data_init_
from ganforge.penalties import dragan_penalty, gradient_penalty, r1_penalty
from ganforge.tasks.base import Batch, Stats, Task, grad_norm, make_optimizer, resolve_hyper
from ganforge.tasks.dview import DView
from ganforge.tasks.ema import EMA
from ganforge.tasks.replay import ReplayBuffer
from ganforge.tasks.sampling import Sampler

Cond = tuple[torch.Tensor, ...]  # what G and D take after z / x (empty when unconditional)
Outputs = tuple[torch.Tensor, torch.Tensor | None]  # (adversarial scores, class logits)
Z_SEED_OFFSET = 7  # train.seed + 7 seeds the GPU generator of z (the loop uses offsets 0-6)
COUNTERS = ("d_steps", "g_updates", "d_skips", "g_skips")  # saved as task.counters
# d_steps counts D phases, skipped or not (lazy R1 runs on every r1_every-th); g_updates only
# the G updates that happened (the EMA ramp-up counts those)


class AdversarialTask(Task):
    """The shared phases; subclasses provide build_nets and, if conditional, conditioning."""

    sampler_class: ClassVar[type[Sampler]] = Sampler  # how users sample this task's G
    d_adversarial_weight: float = 1.0  # weight of D's adversarial loss (before penalties)

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        super().__init__(config, info, device, noise)
        self.hyper = resolve_hyper(config, info.kind)
        self.loss = adversarial_loss(config.loss.name, parse_mix(config.loss.mix))
        generator, discriminator = self.build_nets(config, info)
        self.G = generator.to(device)
        self.D = discriminator.to(device)
        h, s = self.hyper, config.stabilize
        self.opt_g = make_optimizer(h.optimizer, self.G.parameters(), h.g_lr, h.betas)
        self.opt_d = make_optimizer(h.optimizer, self.D.parameters(), h.d_lr, h.betas)
        self._fake_for_g: tuple[torch.Tensor, Cond] | None = None
        if s.diffaugment and info.kind != "image":
            raise GanforgeError(
                "stabilize.diffaugment augments images; this data is vectors "
                f"({info.name}). Set stabilize.diffaugment=[] (try instance noise instead)."
            )
        anneal = s.instance_noise_steps or config.train.steps
        self.view = DView(s.diffaugment, s.instance_noise, anneal, noise)
        self.ema = EMA(self.G, s.ema, own_statistics=True) if s.ema > 0 else None
        self.replay = ReplayBuffer(s.replay_size) if s.replay > 0 else None
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.last_d_accuracy: torch.Tensor | None = None
        # z on a GPU comes from a seeded generator there (no host draw and copy per step); on
        # the CPU from the task's noise generator, as always (CPU runs resume bitwise)
        self.z_noise = noise
        if device.type == "cuda":
            self.z_noise = torch.Generator(device).manual_seed(config.train.seed + Z_SEED_OFFSET)

    # -- what subclasses say ---------------------------------------------------------------------
    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
        """(G, D) for this task; draws weight init from the global torch RNG."""
        raise NotImplementedError

    def conditioning(self, batch: Batch) -> Cond:
        """What G and D see besides z and x for this batch (nothing, unconditionally)."""
        return ()

    def init_from_data(self, batch: Batch) -> None:
        """D's weight-normed layers set from real examples and their conditions (data_init_);
        G's keep their initialization (their inputs are noise)."""
        cond = self.conditioning(batch)
        data_init_(self.D, lambda: self.discriminate(batch["x"], cond))

    def discriminate(self, x: torch.Tensor, cond: Cond) -> Outputs:
        """D's adversarial scores for x (and class logits, for tasks whose D classifies)."""
        return self.D(x, *cond), None

    def features(self, x: torch.Tensor, cond: Cond) -> torch.Tensor:
        """D's last hidden layer for x: what feature matching compares."""
        return self.D.features(x, *cond)

    def d_adversarial(
        self, real_v: torch.Tensor, real: Outputs, fake: Outputs, cond: Cond,
        target: dict[str, float], stats: Stats,
    ) -> torch.Tensor:
        """D's adversarial loss on this step's scores (a task may add inputs, e.g. GAN-CLS's
        real images with mismatched captions; stats takes what it wants logged)."""
        return self.loss.d_loss(real[0], fake[0], **target)

    def extra_d_loss(
        self, batch: Batch, real: Outputs, fake: Outputs, cond: Cond, fake_cond: Cond
    ) -> dict[str, torch.Tensor]:
        """Named D loss terms beyond the adversarial one (e.g. AC-GAN's class loss)."""
        return {}

    def extra_g_loss(self, fake: Outputs, cond: Cond) -> dict[str, torch.Tensor]:
        """Named G loss terms beyond the adversarial one."""
        return {}

    # -- sampling ------------------------------------------------------------------------------
    @property
    def sampling_G(self) -> nn.Module:
        """The generator users see: the EMA copy when stabilize.ema is on, else G."""
        return self.ema.model if self.ema is not None else self.G

    def sampler(self) -> Sampler:
        """A sampler over the live G (its EMA copy when on)."""
        return self.sampler_class(self.sampling_G, self.info, self.name, self.device)

    @classmethod
    def load_sampler(
        cls, config: Config, info: DataInfo, states: dict, device: torch.device | str = "cpu"
    ) -> Sampler:
        """G rebuilt from the config and data info, with the checkpoint's (EMA) weights."""
        generator, discriminator = cls.build_nets(config, info)
        generator.load_state_dict(states["G_ema"] if "G_ema" in states else states["G"])
        sampler = cls.sampler_class(generator.to(device).eval(), info, cls.name, device)
        return cls.finish_loaded(sampler, discriminator, states, device)

    @classmethod
    def finish_loaded(
        cls, sampler: Sampler, discriminator: nn.Module, states: dict,
        device: torch.device | str,
    ) -> Sampler:
        """What a task adds to a loaded sampler (e.g. its trained D); nothing by default."""
        return sampler

    # -- what a checkpoint holds ---------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Networks by name, for checkpoints."""
        nets = {"G": self.G, "D": self.D}
        if self.ema is not None:
            nets["G_ema"] = self.ema.model
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, for checkpoints."""
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Update and skip counters, D's last accuracy and the replay buffer."""
        state = {"counters": torch.tensor([self.counters[k] for k in COUNTERS])}
        if self.z_noise is not self.noise:
            state["z_noise"] = self.z_noise.get_state()
        if self.last_d_accuracy is not None:
            state["last_d_accuracy"] = self.last_d_accuracy.detach().cpu()
        if self.replay is not None:
            state.update({f"replay.{k}": v for k, v in self.replay.state_tensors().items()})
        return state

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore state_tensors (checkpoints from before the stabilizers hold none of it)."""
        if "counters" in tensors:
            self.counters = dict(zip(COUNTERS, tensors["counters"].tolist(), strict=True))
        if "z_noise" in tensors and self.z_noise is not self.noise:  # a GPU run on a GPU
            self.z_noise.set_state(tensors["z_noise"])
        if "last_d_accuracy" in tensors:
            self.last_d_accuracy = tensors["last_d_accuracy"].to(self.device)
        if self.replay is not None:
            prefix = "replay."
            self.replay.load_state_tensors(
                {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            )

    # -- the two phases -------------------------------------------------------------------------
    def noise_batch(self, n: int) -> torch.Tensor:
        """Latent codes z ~ N(0, I) from the task's own generator (part of resume state)."""
        gen = self.z_noise  # under torchrun: the whole step's codes, then this process's rows
        z = torch.randn(n * self.world, self.G.z_dim, generator=gen, device=gen.device)
        return self.own_rows(z).to(self.device)

    def fakes_for_d(self, real: torch.Tensor, cond: Cond, keep_fake_for_g: bool):
        """(fake batch, its conditioning) for D: fresh from G, some rows replayed from the past.

        With keep_fake_for_g the fresh batch keeps G's graph for the following g_step.
        """
        z = self.noise_batch(real.shape[0])
        if keep_fake_for_g:
            fake = self.G(z, *cond)
            self._fake_for_g = (fake, cond)
            fake = fake.detach()
        else:
            with torch.no_grad():
                fake = self.G(z, *cond)
        if self.replay is None:
            return fake, cond
        mixed = self.replay.mix((fake, *cond), self.config.stabilize.replay, self.noise)
        return mixed[0], tuple(mixed[1:])

    def penalties(
        self, real_v: torch.Tensor, fake_v: torch.Tensor, real_scores: torch.Tensor, cond: Cond,
        r1_now: bool,
    ) -> dict[str, torch.Tensor]:
        """The weighted penalties of this D step on what D saw (GP, DRAGAN, lazy R1)."""
        terms = {}
        critic = lambda x: self.discriminate(x, cond)[0]
        scale = self.precision.grad_scale("opt_d")  # fp16: input gradients of scaled scores
        if self.hyper.gp_weight > 0:
            gp = gradient_penalty(critic, real_v, fake_v, scale=scale)
            terms["gp"] = self.hyper.gp_weight * gp
        loss = self.config.loss
        if loss.dragan_weight > 0:
            terms["dragan"] = loss.dragan_weight * dragan_penalty(critic, real_v, scale=scale)
        if r1_now:  # real_v was made a leaf that requires grad for it
            r1 = r1_penalty(real_scores, real_v, scale)
            terms["r1"] = loss.r1_gamma / 2 * loss.r1_every * r1  # lazy: scaled by the interval
        return terms

    def d_accuracy(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """Share of real and fake inputs D puts on the right side of its decision score."""
        t = self.loss.decision
        right = (real_scores > t).float().sum() + (fake_scores < t).float().sum()
        return right / (real_scores.numel() + fake_scores.numel())

    def d_step(self, batch: Batch, keep_fake_for_g: bool) -> Stats:
        """One D update on a real batch and a fake batch (see the module docstring)."""
        real = batch["x"]
        cond = self.conditioning(batch)
        fake, fake_cond = self.fakes_for_d(real, cond, keep_fake_for_g)
        view = self.view.draw(real, self.step, self.rank, self.world)
        real_v, fake_v = view(real), view(fake)
        loss_cfg = self.config.loss
        r1_now = loss_cfg.r1_gamma > 0 and self.counters["d_steps"] % loss_cfg.r1_every == 0
        if r1_now:
            real_v = real_v.detach().requires_grad_(True)
        real_out = self.discriminate(real_v, cond)
        fake_out = self.discriminate(fake_v, fake_cond)
        smooth = loss_cfg.label_smoothing
        target = {"real_target": 1.0 - smooth} if smooth > 0 else {}
        stats = {"d_real": real_out[0].detach().mean(), "d_fake": fake_out[0].detach().mean()}
        loss = self.d_adversarial(real_v, real_out, fake_out, cond, target, stats)
        if self.d_adversarial_weight != 1:
            loss = self.d_adversarial_weight * loss
        terms = self.penalties(real_v, fake_v, real_out[0], cond, r1_now)
        terms.update(self.extra_d_loss(batch, real_out, fake_out, cond, fake_cond))
        for name, term in terms.items():
            loss = loss + term
            stats[name] = term.detach()
        self.counters["d_steps"] += 1
        accuracy = self.d_accuracy(real_out[0].detach(), fake_out[0].detach())
        self.last_d_accuracy = accuracy
        stats["d_accuracy"] = accuracy
        stats["d_loss"] = loss.detach()
        limit = self.config.stabilize.d_skip_above
        if limit is not None:
            skip = float(accuracy) > limit  # D is winning: let G catch up
            self.counters["d_skips"] += int(skip)
            stats["d_skips"] = torch.tensor(self.counters["d_skips"])  # every skip counted
            if skip:
                return stats
        self.update_d(loss, stats)
        return stats

    def update_d(self, loss: torch.Tensor, stats: Stats) -> None:
        """Step D's optimizer on loss (grad norm into stats on log steps), then clip weights."""
        self.opt_d.zero_grad(set_to_none=True)
        self.precision.backward(loss, "opt_d")
        if self.collect_grad_norms:
            self.precision.unscale(self.opt_d, "opt_d")
            stats["d_grad_norm"] = grad_norm(self.D)
        self.precision.step(self.opt_d, "opt_d")
        if self.hyper.clip is not None:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.hyper.clip, self.hyper.clip)

    def feature_matching(
        self, batch: Batch, fake_v: torch.Tensor, cond: Cond, view
    ) -> torch.Tensor:
        """||E f(real) - E f(fake)||^2 on D's last hidden layer (Salimans et al. 2016, 3.1)."""
        with torch.no_grad():
            real_features = self.features(view(batch["x"]), cond).mean(dim=0)
        fake_features = self.features(fake_v, cond).mean(dim=0)
        return (real_features - fake_features).pow(2).sum()

    def g_step(self, batch: Batch) -> Stats:
        """One G update against the current D, whose parameters stay frozen meanwhile."""
        kept, self._fake_for_g = self._fake_for_g, None
        if kept is None:
            cond = self.conditioning(batch)
            kept = (self.G(self.noise_batch(batch["x"].shape[0]), *cond), cond)
        fake, cond = kept
        view = self.view.draw(fake, self.step, self.rank, self.world)
        fake_v = view(fake)
        loss_cfg = self.config.loss
        self.D.requires_grad_(False)
        try:
            fake_out = self.discriminate(fake_v, cond)
            loss = self.loss.g_loss(fake_out[0])
            if loss_cfg.g_adversarial != 1:
                loss = loss_cfg.g_adversarial * loss
            terms = self.extra_g_loss(fake_out, cond)
            if loss_cfg.feature_matching > 0:
                fm = self.feature_matching(batch, fake_v, cond, view)
                terms["feature_matching"] = loss_cfg.feature_matching * fm
            stats = {}
            for name, term in terms.items():
                loss = loss + term
                stats[name] = term.detach()
            self.opt_g.zero_grad(set_to_none=True)
            self.precision.backward(loss, "opt_g")
        finally:
            self.D.requires_grad_(True)
        stats["g_loss"] = loss.detach()
        limit, accuracy = self.config.stabilize.g_skip_below, self.last_d_accuracy
        if limit is not None:
            skip = accuracy is not None and float(accuracy) < limit  # D is losing: let it learn
            self.counters["g_skips"] += int(skip)
            stats["g_skips"] = torch.tensor(self.counters["g_skips"])  # every skip counted
            if skip:
                return stats
        if self.collect_grad_norms:
            self.precision.unscale(self.opt_g, "opt_g")
            stats["g_grad_norm"] = grad_norm(self.G)
        self.precision.step(self.opt_g, "opt_g")
        self.counters["g_updates"] += 1
        if self.ema is not None:
            self.ema.update(self.G, self.counters["g_updates"])
        return stats
