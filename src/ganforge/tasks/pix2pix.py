"""pix2pix (Isola et al. 2017): a conditional GAN from paired images, G(x) -> y.

    D phase: loss_D = d_loss(D(x, y), D(x, G(x)))        (D sees the input with each output)
    G phase: loss_G = w_adv * g_loss(D(x, G(x))) + lambda * |G(x) - y|_1

with the paper's defaults in configs/fashion_edges_pix2pix.yaml: the non-saturating (vanilla)
loss, lambda = loss.l1_weight = 100, a U-Net G whose dropout is the noise source (no z), a
PatchGAN D on the channel-stacked pair, Adam 2e-4 with beta1 0.5, and optim.lr_decay
constant_linear (constant, then linear to zero). The reference halves D's loss to slow D; under
Adam a constant factor on a loss changes nothing, so it is left out.

loss.g_adversarial=0 is the L1-only baseline (configs/fashion_edges_l1.yaml): the same G on the
same batches, no D at all (none is built or trained), what the paper's "L1 alone" column is.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.tasks.base import Batch, Stats
from ganforge.tasks.translation import (
    TranslationTask,
    build_patch_d,
    build_translator,
    check_images,
    translator_norm,
)


class Pix2PixTask(TranslationTask):
    """G(x) against a conditional PatchGAN D(x, y), plus L1 to the target."""

    name = "pix2pix"
    default_norm = "batch"

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        if not info.paired:
            raise GanforgeError(
                f"task.name=pix2pix learns from pairs (each input with its target), but "
                f"'{info.name}' holds two unpaired collections. Use task.name=cyclegan for "
                "unpaired data, or a paired source (aligned:PATH, paired:PATH_A,PATH_B, "
                "fashion-edges)."
            )
        super().__init__(config, info, device, noise)

    @classmethod
    def adversarial(cls, config: Config) -> bool:
        """Whether a D is built (loss.g_adversarial > 0); else the L1-only baseline."""
        return config.loss.g_adversarial > 0

    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> dict[str, nn.Module]:
        """G: x -> y; D on (x, y) stacked by channel (not built for the L1-only baseline)."""
        (c_a, side, _), (c_b, _, _) = check_images(info, cls.name)
        norm = translator_norm(config, cls.default_norm)
        nets = {"G": build_translator(config, c_a, c_b, side, norm)}
        if cls.adversarial(config):
            nets["D"] = build_patch_d(config, c_a + c_b, side, norm)
        return nets

    @classmethod
    def translator_names(cls, config: Config) -> dict[str, str]:
        """One direction: the training one."""
        return {"forward": "G"}

    def grid_panels(self, x: torch.Tensor, x_b: torch.Tensor) -> list[torch.Tensor]:
        """input | output | target."""
        return [x, self.nets["G"](x), x_b]

    def d_step(self, batch: Batch, keep_fake_for_g: bool) -> Stats:
        """One D update on real pairs (x, y) and fake pairs (x, G(x))."""
        x, y = batch["x"], batch["x_b"]
        G = self.nets["G"]
        if keep_fake_for_g:
            fake = G(x)
            self._kept = {"fake": fake}
            fake = fake.detach()
        else:
            with torch.no_grad():
                fake = G(x)
        if "D" not in self.nets:  # the L1-only baseline: nothing to update here
            return {}
        D = self.nets["D"]
        real_out, fake_out = D(torch.cat([x, y], 1)), D(torch.cat([x, fake], 1))
        loss = self.loss.d_loss(real_out, fake_out)
        stats = {"d_loss": loss.detach(), "d_real": real_out.detach().mean(),
                 "d_fake": fake_out.detach().mean()}
        self.step_optimizer(self.opt_d, loss, ["D"], stats, "d_grad_norm")
        return stats

    def g_step(self, batch: Batch) -> Stats:
        """One G update: adversarial term (D frozen) plus lambda * L1 to the target."""
        x, y = batch["x"], batch["x_b"]
        kept, self._kept = self._kept, None
        fake = kept["fake"] if kept is not None else self.nets["G"](x)
        l1 = (fake - y).abs().mean()
        loss = self.config.loss.l1_weight * l1
        stats: Stats = {"g_l1": l1.detach()}
        if "D" in self.nets:
            with self.frozen(["D"]):
                adversarial = self.loss.g_loss(self.nets["D"](torch.cat([x, fake], 1)))
                loss = loss + self.config.loss.g_adversarial * adversarial
            stats["g_adversarial"] = adversarial.detach()
        stats["g_loss"] = loss.detach()
        self.step_optimizer(self.opt_g, loss, ["G"], stats, "g_grad_norm")
        return stats
