"""CycleGAN (Zhu et al. 2017): two translators learned from unpaired collections A and B.

    D phase: for each domain, loss_D = d_loss(D_B(b), D_B(pool_B(G_AB(a)))) and the same for A
    G phase: loss_G = w_adv * (g_loss(D_B(G_AB(a))) + g_loss(D_A(G_BA(b))))
                      + lambda * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)   (cycle)
                      + id * lambda * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)         (identity)

with the paper's defaults in configs/fashion_edges_cyclegan.yaml: LSGAN, lambda =
loss.cycle_weight = 10, id = loss.identity_weight = 0.5, a pool of stabilize.image_pool = 50
past fakes per D (tasks/pool.py), instance norm, a ResNet G, a PatchGAN D, Adam 2e-4 with
beta1 0.5, constant then linear decay. Our lsgan g_loss is Mao et al.'s 1/2 (D(G(x)) - 1)^2,
half the reference's MSE, so the config sets loss.g_adversarial: 2 to keep the paper's
weighting against lambda. The training batches pair each a with an independently drawn b (the
loop gives x_b its own order, `keeps_pairs = False`), so no pairing is ever seen, even when the
source is paired.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.tasks.base import Batch, Stats
from ganforge.tasks.pool import ImagePool
from ganforge.tasks.translation import (
    TranslationTask,
    build_patch_d,
    build_translator,
    check_images,
    translator_norm,
)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference."""
    return (a - b).abs().mean()


class CycleGANTask(TranslationTask):
    """G_AB, G_BA against D_B, D_A, with cycle consistency and identity terms."""

    name = "cyclegan"
    default_norm = "instance"
    keeps_pairs = False  # unpaired learning: B in its own order, even from paired data

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        super().__init__(config, info, device, noise)
        if config.loss.identity_weight > 0 and self.shape_a[0] != self.shape_b[0]:
            raise GanforgeError(
                f"loss.identity_weight feeds B images to G_AB, which reads A's "
                f"{self.shape_a[0]} channels, but B has {self.shape_b[0]}. Set "
                "loss.identity_weight=0, or data.channels to give both domains one count."
            )
        size = config.stabilize.image_pool
        self.pools = {"A": ImagePool(size), "B": ImagePool(size)}

    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> dict[str, nn.Module]:
        """G_AB: A -> B, G_BA: B -> A, D_A judges A images, D_B judges B images."""
        (c_a, side, _), (c_b, _, _) = check_images(info, cls.name)
        norm = translator_norm(config, cls.default_norm)
        return {
            "G_AB": build_translator(config, c_a, c_b, side, norm),
            "G_BA": build_translator(config, c_b, c_a, side, norm),
            "D_A": build_patch_d(config, c_a, side, norm),
            "D_B": build_patch_d(config, c_b, side, norm),
        }

    @classmethod
    def translator_names(cls, config: Config) -> dict[str, str]:
        """Both directions."""
        return {"forward": "G_AB", "backward": "G_BA"}

    def grid_panels(self, x: torch.Tensor, x_b: torch.Tensor) -> list[torch.Tensor]:
        """A | G_AB(A) | G_BA(G_AB(A)) (the reconstruction) | B (the target, if paired)."""
        fake_b = self.nets["G_AB"](x)
        panels = [x, fake_b, self.nets["G_BA"](fake_b)]
        return panels + [x_b] if self.info.paired else panels

    # -- checkpoints: the two pools ---------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The pools' images."""
        return {
            f"pool_{k}.{name}": t
            for k, pool in self.pools.items() for name, t in pool.state_tensors().items()
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the pools."""
        for k, pool in self.pools.items():
            prefix = f"pool_{k}."
            mine = {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
            pool.load_state_tensors(mine, self.device)

    # -- the phases -------------------------------------------------------------------------------
    def fakes(self, a: torch.Tensor, b: torch.Tensor, keep: bool) -> dict[str, torch.Tensor]:
        """G_AB(a) and G_BA(b), with their graphs when `keep` (kept for the G phase)."""
        if keep:
            fakes = {"B": self.nets["G_AB"](a), "A": self.nets["G_BA"](b)}
            self._kept = fakes
            return {k: v.detach() for k, v in fakes.items()}
        with torch.no_grad():
            return {"B": self.nets["G_AB"](a), "A": self.nets["G_BA"](b)}

    def d_step(self, batch: Batch, keep_fake_for_g: bool) -> Stats:
        """One update of both Ds, each on its real domain and pooled fakes of it."""
        real = {"A": batch["x"], "B": batch["x_b"]}
        fakes = self.fakes(real["A"], real["B"], keep_fake_for_g)
        loss = torch.zeros((), device=self.device)
        stats: Stats = {}
        for k in ("A", "B"):
            D = self.nets[f"D_{k}"]
            pooled = self.pools[k].query(fakes[k], self.noise)
            real_out, fake_out = D(real[k]), D(pooled)
            term = self.loss.d_loss(real_out, fake_out)
            loss = loss + term
            stats[f"d_{k}_loss"] = term.detach()
            stats[f"d_{k}_real"] = real_out.detach().mean()
            stats[f"d_{k}_fake"] = fake_out.detach().mean()
        stats["d_loss"] = loss.detach()
        self.step_optimizer(self.opt_d, loss, ["D_A", "D_B"], stats, "d_grad_norm")
        return stats

    def g_step(self, batch: Batch) -> Stats:
        """One update of both Gs: adversarial, cycle and identity terms (Ds frozen)."""
        a, b = batch["x"], batch["x_b"]
        kept, self._kept = self._kept, None
        fakes = kept if kept is not None else {
            "B": self.nets["G_AB"](a), "A": self.nets["G_BA"](b)
        }
        cfg = self.config.loss
        with self.frozen(["D_A", "D_B"]):
            adversarial = (self.loss.g_loss(self.nets["D_B"](fakes["B"]))
                           + self.loss.g_loss(self.nets["D_A"](fakes["A"])))
        cycle = l1(self.nets["G_BA"](fakes["B"]), a) + l1(self.nets["G_AB"](fakes["A"]), b)
        loss = cfg.g_adversarial * adversarial + cfg.cycle_weight * cycle
        stats: Stats = {"g_adversarial": adversarial.detach(), "g_cycle": cycle.detach()}
        if cfg.identity_weight > 0:
            identity = l1(self.nets["G_AB"](b), b) + l1(self.nets["G_BA"](a), a)
            loss = loss + cfg.identity_weight * cfg.cycle_weight * identity
            stats["g_identity"] = identity.detach()
        stats["g_loss"] = loss.detach()
        self.step_optimizer(self.opt_g, loss, ["G_AB", "G_BA"], stats, "g_grad_norm")
        return stats
