"""Architectures only: nn.Modules for G and D, built from the model config and the data shape.

Every generator has `z_dim` and maps (N, z_dim) noise to (N, *data_shape). Every
discriminator maps (N, *data_shape) to (N,) raw scores and has `features(x) -> (N, F)`, the
penultimate representation its linear score head reads (for feature matching and the
semi-supervised GAN). Adding an architecture is one module and one line in `ARCHS`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import dcgan, mlp
from ganforge.nets.init import dcgan_init_
from ganforge.nets.layers import D_NORMS, OUT_ACTS, check_choice

__all__ = ["ARCHS", "build_nets", "dcgan_init_"]


def _build_mlp(cfg: ModelConfig, shape: tuple[int, ...], d_norm: str, out_act: str):
    return mlp.build(
        cfg.z_dim, shape, cfg.g_hidden, cfg.d_hidden, d_norm, out_act, g_norm=cfg.g_norm
    )


def _build_dcgan(cfg: ModelConfig, shape: tuple[int, ...], d_norm: str, out_act: str):
    return dcgan.build(cfg.z_dim, shape, cfg.g_width, cfg.d_width, d_norm, out_act)


ARCHS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    "mlp": _build_mlp,
    "dcgan": _build_dcgan,
}


def build_nets(
    cfg: ModelConfig, data_shape: tuple[int, ...], *, d_norm: str, out_act: str
) -> tuple[nn.Module, nn.Module]:
    """(G, D) for cfg.arch and data_shape ((C, H, W) images or (D,) vectors).

    d_norm ("batch" | "layer" | "none") and out_act ("tanh" | "none") come already resolved
    from "auto" by the caller (the task knows the loss and the data kind).
    """
    if cfg.arch not in ARCHS:
        raise GanforgeError(
            f"Config key 'model.arch' is {cfg.arch!r}; valid choices: {', '.join(ARCHS)}."
        )
    check_choice("model.d_norm", d_norm, D_NORMS)
    check_choice("model.out_act", out_act, OUT_ACTS)
    return ARCHS[cfg.arch](cfg, tuple(int(s) for s in data_shape), d_norm, out_act)
