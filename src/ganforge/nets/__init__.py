"""Architectures only: nn.Modules for G and D, built from the model config and the data shape.

Every generator has `z_dim` and maps (N, z_dim) noise to (N, *data_shape). Every
discriminator maps (N, *data_shape) to (N,) raw scores and has `features(x) -> (N, F)`, the
penultimate representation its linear score `head` reads (for feature matching and the
semi-supervised GAN), and `feature_dim` = F. A net may set `init_std` (DCGAN init's std) so
that layers added around it (class-conditioning) are initialized alike. Adding an architecture
is one module and one line in `ARCHS`; class-conditioning (nets/conditional.py) then works
for it unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import dcgan, mlp
from ganforge.nets.conditional import (
    CONDITIONS,
    LABEL_INPUT_G,
    ConditionalBatchNorm,
    ConditionalDiscriminator,
    ConditionalGenerator,
    check_num_classes,
    label_input_shape,
)
from ganforge.nets.init import dcgan_init_
from ganforge.nets.layers import D_NORMS, OUT_ACTS, check_choice

__all__ = [
    "ARCHS", "CONDITIONS", "Arch", "ConditionalBatchNorm", "ConditionalDiscriminator",
    "ConditionalGenerator", "build_nets", "dcgan_init_",
]

Shape = tuple[int, ...]


class Arch(NamedTuple):
    """How one architecture builds its G (cfg, data shape, out_act) and D (cfg, shape, d_norm)."""

    generator: Callable[[ModelConfig, Shape, str], nn.Module]
    discriminator: Callable[[ModelConfig, Shape, str], nn.Module]
    reads: tuple[str, ...] = ()  # model.* keys it uses (others are ignored, with a warning)


def _mlp_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The MLP generator for cfg."""
    return mlp.MLPGenerator(cfg.z_dim, list(cfg.g_hidden), shape, out_act, cfg.g_norm)


def _mlp_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """The MLP discriminator for cfg."""
    return mlp.MLPDiscriminator(shape, list(cfg.d_hidden), d_norm)


def _dcgan_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The DCGAN generator for cfg."""
    channels, resolution = dcgan.image_shape(shape)
    return dcgan.DCGANGenerator(cfg.z_dim, channels, resolution, cfg.g_width, out_act)


def _dcgan_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """The DCGAN discriminator for cfg."""
    channels, resolution = dcgan.image_shape(shape)
    return dcgan.DCGANDiscriminator(channels, resolution, cfg.d_width, d_norm)


ARCHS: dict[str, Arch] = {
    "mlp": Arch(_mlp_g, _mlp_d, ("g_hidden", "d_hidden", "g_norm")),
    "dcgan": Arch(_dcgan_g, _dcgan_d, ("g_width", "d_width")),
}


def build_nets(
    cfg: ModelConfig, data_shape: Shape, *, d_norm: str, out_act: str, num_classes: int = 0,
    condition: str = "none",
) -> tuple[nn.Module, nn.Module]:
    """(G, D) for cfg.arch and data_shape ((C, H, W) images or (D,) vectors).

    d_norm ("batch" | "layer" | "none") and out_act ("tanh" | "none") come already resolved
    from "auto" by the caller (the task knows the loss and the data kind). condition "none"
    (the default) gives the unconditional G(z), D(x), built exactly as always (same modules,
    same draws from the global RNG: G first, then D). A condition in CONDITIONS with
    num_classes = K >= 2 gives a ConditionalGenerator G(z, y) and ConditionalDiscriminator
    D(x, y) around base nets of the same architecture (see nets/conditional.py).
    """
    if cfg.arch not in ARCHS:
        raise GanforgeError(
            f"Config key 'model.arch' is {cfg.arch!r}; valid choices: {', '.join(ARCHS)}."
        )
    check_choice("model.d_norm", d_norm, D_NORMS)
    check_choice("model.out_act", out_act, OUT_ACTS)
    check_choice("model.condition", condition, ("none", *CONDITIONS))
    arch, shape = ARCHS[cfg.arch], tuple(int(s) for s in data_shape)
    if condition == "none":
        generator = arch.generator(cfg, shape, out_act)
        return generator, arch.discriminator(cfg, shape, d_norm)
    check_num_classes(num_classes, condition)
    label_input = condition in LABEL_INPUT_G
    g_cfg = dataclasses.replace(cfg, z_dim=cfg.z_dim + num_classes) if label_input else cfg
    d_shape = label_input_shape(shape, num_classes) if condition == "concat" else shape
    base_g = arch.generator(g_cfg, shape, out_act)
    base_d = arch.discriminator(cfg, d_shape, d_norm)
    generator = ConditionalGenerator(
        base_g, num_classes, condition, getattr(base_g, "init_std", None)
    )
    discriminator = ConditionalDiscriminator(
        base_d, num_classes, condition, getattr(base_d, "init_std", None)
    )
    return generator, discriminator
