"""The semi-supervised GAN: D is a K-class classifier that also tells real from fake, learnt
from a few labelled examples, every unlabelled one and G's fakes (Salimans et al. 2016, sec. 5).

D outputs K class logits l_1..K (loss.ssl_form=k) or K + 1 with a learned fake logit l_fake
(k+1, Odena 2016). Its real/fake logit is s(x) = logsumexp(l_1..K) - l_fake (l_fake = 0 for k),
so p(real | x) = sigmoid(s) = Z / (Z + exp(l_fake)) with Z = sum_k exp(l_k). The phases:

    D: loss_D = CE(l(x_labelled), y_labelled)                      (supervised, K or K+1 way)
              + unsupervised_weight * 1/2 * d_loss(s(x), s(G(z)))   (unlabelled real vs fake)
    G: feature matching on D's last hidden layer and/or the adversarial loss on s(G(z))

which is Salimans et al.'s loss (their code: L_lab + 1/2 softplus terms, weight 1) with the
configured adversarial loss (non-saturating gives theirs exactly). loss.unsupervised_weight=0
is the supervised-only baseline: D learns from the labelled batches alone and G is not trained.
The labelled batch skips D's input view (DiffAugment, instance noise); data.augment applies to
it as to every real batch. The product is D as a classifier: `ganforge eval RUN --metrics
accuracy`, `ganforge classify RUN IMAGES`, `ganforge export-classifier RUN`. With
stabilize.ema_d > 0 that classifier is a moving average of D's weights (checkpointed as D_ema),
as Salimans et al.'s code tests with; training still uses the live D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import nets
from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.images import from_uint8
from ganforge.tasks.adversarial import Cond, Outputs
from ganforge.tasks.base import Batch, Stats, resolve_hyper
from ganforge.tasks.ema import EMA
from ganforge.tasks.sampling import Sampler
from ganforge.tasks.unconditional import UnconditionalTask

CLASSIFY_BATCH = 500  # images per D forward pass when classifying (bounds memory, not results)


def real_fake_logit(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, K or K+1) logits -> (N,) log p(real)/p(fake) = logsumexp(l_1..K) - l_fake."""
    score = torch.logsumexp(logits[:, :num_classes], dim=1)
    if logits.shape[1] > num_classes:
        score = score - logits[:, num_classes]
    return score


def class_probabilities(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """p(class k | x, x is real): the softmax of the K class logits alone."""
    return logits[:, :num_classes].softmax(dim=1)


class DClassifier:
    """A semi-supervised D as a classifier of the run's examples (uint8 images or vectors)."""

    def __init__(self, D: nn.Module, info: DataInfo, device: torch.device | str) -> None:
        self.D, self.info, self.device = D, info, device

    @property
    def class_names(self) -> list[str]:
        """Names of the classes, in logit order."""
        return [str(name) for name in (self.info.class_names or range(self.num_classes))]

    @property
    def num_classes(self) -> int:
        """K, the number of real classes."""
        return int(self.info.num_classes)

    @torch.no_grad()
    def logits(self, examples: torch.Tensor) -> torch.Tensor:
        """Examples in the data's scale (uint8 images, float vectors) -> D's raw logits
        (N, K or K+1), eval mode, on the CPU."""
        shape, image = tuple(self.info.shape), self.info.kind == "image"
        if tuple(examples.shape[1:]) != shape or (image and examples.dtype != torch.uint8):
            what = "uint8 images of shape (channels, height, width)" if image else "vectors"
            raise GanforgeError(
                f"This run's classifier reads {what} {shape}; got {examples.dtype} "
                f"{tuple(examples.shape[1:])}."
            )
        scale = from_uint8 if image else (lambda v: v.float())
        was_training = self.D.training
        self.D.eval()
        try:
            parts = [
                self.D(scale(part).to(self.device)).float().cpu()
                for part in examples.split(CLASSIFY_BATCH)
            ]
        finally:
            self.D.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.num_classes)

    def probabilities(self, examples: torch.Tensor) -> torch.Tensor:
        """Examples in the data's scale -> (N, K) class probabilities."""
        return class_probabilities(self.logits(examples), self.num_classes)


class SemiSupervisedSampler(Sampler):
    """An unconditional G with the run's D as `classifier` (what accuracy and classify use)."""

    classifier: DClassifier | None = None


class SemiSupervisedTask(UnconditionalTask):
    """G(z) against a K-class D, from data.labels_per_class labels per class (module doc)."""

    name = "semi-supervised"
    needs = ("x", "y")
    labelled_subset = True
    sampler_class = SemiSupervisedSampler

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        super().__init__(config, info, device, noise)
        self.num_classes = int(info.num_classes)
        self.unsupervised = config.loss.unsupervised_weight
        self.d_adversarial_weight = 0.5 * self.unsupervised
        # the classifier users get: a moving average of D's weights when stabilize.ema_d > 0
        # (Salimans et al.'s code tests with such an average), else the live D
        decay = config.stabilize.ema_d
        self.d_ema = EMA(self.D, decay) if decay > 0 else None

    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
        """G as unconditionally; D with K (ssl_form k) or K + 1 (k+1) logits."""
        if not info.num_classes or info.num_classes < 2:
            raise GanforgeError(
                f"task.name=semi-supervised learns a classifier, so it needs at least two "
                f"classes; data.source '{info.name}' has {info.num_classes or 0}."
            )
        m = config.model
        mixing = [f"model.{key}={getattr(m, key)}" for key, off in
                  (("pack", 1), ("mbstd_group", 0), ("minibatch_disc", 0))
                  if getattr(m, key) != off]
        if mixing:
            raise GanforgeError(
                f"task.name=semi-supervised classifies every example on its own, but "
                f"{', '.join(mixing)} makes D's output depend on the rest of its batch. Set "
                "model.pack=1, model.mbstd_group=0 and model.minibatch_disc=0."
            )
        outputs = info.num_classes + (1 if config.loss.ssl_form == "k+1" else 0)
        hyper = resolve_hyper(config, info.kind)
        return nets.build_nets(
            config.model, info.shape, d_norm=hyper.d_norm, out_act=hyper.out_act,
            d_outputs=outputs,
        )

    # -- D as a classifier -----------------------------------------------------------------------
    def discriminate(self, x: torch.Tensor, cond: Cond) -> Outputs:
        """(real/fake logit s(x), all of D's logits)."""
        logits = self.D(x)
        return real_fake_logit(logits, self.num_classes), logits

    def supervised_loss(self, batch: Batch) -> torch.Tensor:
        """Cross-entropy of D's logits on the labelled batch (K-way, or K+1-way for k+1)."""
        return F.cross_entropy(self.D(batch["x_labelled"]), batch["y_labelled"])

    def extra_d_loss(
        self, batch: Batch, real: Outputs, fake: Outputs, cond: Cond, fake_cond: Cond
    ) -> dict[str, torch.Tensor]:
        """The supervised term, beside the (weighted) unsupervised real/fake one."""
        return {"d_class": self.supervised_loss(batch)}

    def d_step(self, batch: Batch, keep_fake_for_g: bool) -> Stats:
        """The shared D phase; with unsupervised_weight 0 the labelled batch alone. Then
        the moving average of D, when on, takes the new weights."""
        if self.unsupervised > 0:
            stats = super().d_step(batch, keep_fake_for_g)
        else:
            loss = self.supervised_loss(batch)
            stats = {"d_class": loss.detach(), "d_loss": loss.detach()}
            self.update_d(loss, stats)
            self.counters["d_steps"] += 1
        if self.d_ema is not None:
            self.d_ema.update(self.D, self.counters["d_steps"] - 1)
        return stats

    def init_from_data(self, batch: Batch) -> None:
        """D's weight-normed layers set on real examples; the average of D starts there too."""
        super().init_from_data(batch)
        if self.d_ema is not None:
            self.d_ema.restart(self.D)

    @property
    def classifying_D(self) -> nn.Module:
        """The D that classifies: its moving average when stabilize.ema_d is on, else D."""
        return self.d_ema.model if self.d_ema is not None else self.D

    def modules(self) -> dict[str, nn.Module]:
        """G, D (and G_ema) as adversarially, and D_ema when stabilize.ema_d is on."""
        nets = super().modules()
        if self.d_ema is not None:
            nets["D_ema"] = self.d_ema.model
        return nets

    def g_step(self, batch: Batch) -> Stats:
        """The shared G phase; nothing in the supervised-only baseline (G is not used)."""
        if self.unsupervised > 0:
            return super().g_step(batch)
        return {}

    # -- sampling and classifying ----------------------------------------------------------------
    def sampler(self) -> SemiSupervisedSampler:
        """The live G (its EMA copy when on) with the classifying D (classifying_D)."""
        sampler = super().sampler()
        sampler.classifier = DClassifier(self.classifying_D, self.info, self.device)
        return sampler

    @classmethod
    def finish_loaded(
        cls, sampler: Sampler, discriminator: nn.Module, states: dict,
        device: torch.device | str,
    ) -> Sampler:
        """A loaded sampler gets the checkpoint's classifying D (D_ema when saved, else D)."""
        discriminator.load_state_dict(states["D_ema"] if "D_ema" in states else states["D"])
        sampler.classifier = DClassifier(discriminator.to(device).eval(), sampler.info, device)
        return sampler
