"""Architectures only: nn.Modules for G and D, built from the model config and the data shape.

Every generator has `z_dim` and maps (N, z_dim) noise to (N, *data_shape). Every
discriminator maps (N, *data_shape) to (N,) raw scores and has `features(x) -> (N, F)`, the
penultimate representation its linear score `head` reads (for feature matching and the
semi-supervised GAN), and `feature_dim` = F. A net may set `init_std` (DCGAN init's std) so
that layers added around it (class-conditioning, stabilizers) are initialized alike. Adding an
architecture is one module and one line in `ARCHS` ("mlp", "dcgan", "resnet" for SNGAN's
ResNets, "progressive" for PGGAN's grown nets, "style" for StyleGAN2's G and residual D;
the last two place minibatch std inside D themselves); class-conditioning
(nets/conditional.py) and the D stabilizers (nets/stabilize.py: spectral norm, PacGAN
packing, minibatch std and discrimination) then work for it unchanged.
With model.pack = m > 1, D reads m samples per input and returns N/m scores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import dcgan, mlp, progressive, resnet, style
from ganforge.nets.conditional import (
    CONDITIONS,
    LABEL_INPUT_G,
    ConditionalBatchNorm,
    ConditionalDiscriminator,
    ConditionalGenerator,
    check_num_classes,
    label_input_shape,
)
from ganforge.nets.equalized import square_image
from ganforge.nets.init import dcgan_init_
from ganforge.nets.layers import D_NORMS, OUT_ACTS, check_choice
from ganforge.nets.semi import (
    WEIGHT_NORM_INITS,
    WEIGHT_NORMS,
    ClassLogitDiscriminator,
    data_init_,
    weight_norm_,
)
from ganforge.nets.stabilize import (
    MinibatchDiscrimination,
    MinibatchStd,
    StabilizedDiscriminator,
    pack_inputs,
    packed_shape,
    spectral_norm_,
)

__all__ = [
    "ARCHS", "CONDITIONS", "SPECTRAL_NORMS", "WEIGHT_NORMS", "WEIGHT_NORM_INITS", "Arch",
    "ClassLogitDiscriminator", "ConditionalBatchNorm", "ConditionalDiscriminator",
    "ConditionalGenerator", "MinibatchDiscrimination", "MinibatchStd",
    "StabilizedDiscriminator", "build_nets", "build_text_nets", "data_init_", "dcgan_init_",
    "pack_inputs", "packed_shape", "spectral_norm_",
]

Shape = tuple[int, ...]
SPECTRAL_NORMS = ("none", "d", "both")
PER_SAMPLE_LABEL_D = ("projection", "acgan")  # D conditions whose output is one per sample


class Arch(NamedTuple):
    """How one architecture builds its G (cfg, data shape, out_act) and D (cfg, shape, d_norm).

    D is built for the shape it is given (build_nets passes the packed shape under PacGAN) and
    must have `features`, `head` and `feature_dim`, so that the conditional and stabilizer
    wrappers can go around it.
    """

    generator: Callable[[ModelConfig, Shape, str], nn.Module]
    discriminator: Callable[[ModelConfig, Shape, str], nn.Module]
    reads: tuple[str, ...] = ()  # model.* keys it uses (others are ignored, with a warning)
    own_mbstd: bool = False  # D places minibatch std itself (model.mbstd_group), not the wrapper


def _mlp_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The MLP generator for cfg."""
    return mlp.MLPGenerator(cfg.z_dim, list(cfg.g_hidden), shape, out_act, cfg.g_norm)


def _mlp_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """The MLP discriminator for cfg."""
    return mlp.MLPDiscriminator(
        shape, list(cfg.d_hidden), d_norm, cfg.d_input_noise, cfg.d_hidden_noise
    )


def _dcgan_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The DCGAN generator for cfg."""
    channels, resolution = dcgan.image_shape(shape)
    return dcgan.DCGANGenerator(cfg.z_dim, channels, resolution, cfg.g_width, out_act)


def _dcgan_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """The DCGAN discriminator for cfg."""
    channels, resolution = dcgan.image_shape(shape)
    return dcgan.DCGANDiscriminator(
        channels, resolution, cfg.d_width, d_norm, cfg.d_input_noise, cfg.d_hidden_noise
    )


def _resnet_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The SNGAN ResNet generator for cfg."""
    channels, resolution = dcgan.image_shape(shape, "ResNet")
    return resnet.ResNetGenerator(cfg.z_dim, channels, resolution, cfg.g_width, out_act)


def _resnet_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """The SNGAN ResNet discriminator for cfg (no norm layers: d_norm is not used)."""
    channels, resolution = dcgan.image_shape(shape, "ResNet")
    return resnet.ResNetDiscriminator(channels, resolution, cfg.d_width)


def _progressive_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The progressively grown generator (Karras et al. 2018) for cfg."""
    channels, resolution = square_image(shape, "progressive")
    return progressive.ProgressiveGenerator(cfg.z_dim, channels, resolution, cfg.g_width, out_act)


def _progressive_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """The progressively grown discriminator for cfg (no norm layers: d_norm is not used)."""
    channels, resolution = square_image(shape, "progressive")
    return progressive.ProgressiveDiscriminator(channels, resolution, cfg.d_width, cfg.mbstd_group)


def _style_g(cfg: ModelConfig, shape: Shape, out_act: str) -> nn.Module:
    """The style-based generator (Karras et al. 2019, 2020) for cfg."""
    channels, resolution = square_image(shape, "style")
    return style.StyleGenerator(
        cfg.z_dim, channels, resolution, cfg.g_width, out_act, cfg.w_dim, cfg.mapping_layers,
        cfg.style_mixing,
    )


def _style_d(cfg: ModelConfig, shape: Shape, d_norm: str) -> nn.Module:
    """StyleGAN2's residual discriminator for cfg (no norm layers: d_norm is not used)."""
    channels, resolution = square_image(shape, "style")
    return style.ResidualDiscriminator(channels, resolution, cfg.d_width, cfg.mbstd_group)


ARCHS: dict[str, Arch] = {
    "mlp": Arch(
        _mlp_g, _mlp_d, ("g_hidden", "d_hidden", "g_norm", "d_input_noise", "d_hidden_noise")
    ),
    "dcgan": Arch(_dcgan_g, _dcgan_d, ("g_width", "d_width", "d_input_noise", "d_hidden_noise")),
    "resnet": Arch(_resnet_g, _resnet_d, ("g_width", "d_width")),
    "progressive": Arch(
        _progressive_g, _progressive_d, ("g_width", "d_width", "phase_images"), own_mbstd=True
    ),
    "style": Arch(
        _style_g, _style_d, ("g_width", "d_width", "w_dim", "mapping_layers", "style_mixing"),
        own_mbstd=True,
    ),
}


def check_packing(cfg: ModelConfig, condition: str) -> None:
    """Refuse PacGAN packing with a D that reads one label per sample (the values themselves
    are checked where the config is validated: config_rules.RANGES, ModelConfig.CHOICES)."""
    if cfg.pack > 1 and condition in PER_SAMPLE_LABEL_D:
        raise GanforgeError(
            f"model.condition={condition} cannot be combined with model.pack={cfg.pack}: its D "
            f"reads one label per sample, but a packed D gives one score per pack of "
            f"{cfg.pack}. Use model.condition=concat (labels are packed with their samples) "
            "or model.pack=1."
        )


def _stabilized(cfg: ModelConfig, base_d: nn.Module) -> nn.Module:
    """base_d wrapped in a StabilizedDiscriminator when packing or a minibatch feature is on
    (minibatch std only for archs that do not place it themselves)."""
    mbstd = 0 if ARCHS[cfg.arch].own_mbstd else cfg.mbstd_group
    if cfg.pack > 1 or mbstd > 0 or cfg.minibatch_disc > 0:
        return StabilizedDiscriminator(base_d, cfg.pack, mbstd, cfg.minibatch_disc)
    return base_d


def _spectral(cfg: ModelConfig, generator: nn.Module, discriminator: nn.Module) -> None:
    """Apply spectral norm, then weight norm, to the whole D ("d", "both") and to G ("both"),
    D first (config validation refuses both at once)."""
    for setting, apply in ((cfg.spectral_norm, spectral_norm_), (cfg.weight_norm, weight_norm_)):
        if setting in ("d", "both"):
            apply(discriminator)
        if setting == "both":
            apply(generator)


def build_nets(
    cfg: ModelConfig, data_shape: Shape, *, d_norm: str, out_act: str, num_classes: int = 0,
    condition: str = "none", d_outputs: int = 1,
) -> tuple[nn.Module, nn.Module]:
    """(G, D) for cfg.arch and data_shape ((C, H, W) images or (D,) vectors).

    d_norm ("batch" | "layer" | "none") and out_act ("tanh" | "none") come already resolved
    from "auto" by the caller (the task knows the loss and the data kind). condition "none"
    (the default) gives the unconditional G(z), D(x), built exactly as always (same modules,
    same draws from the global RNG: G first, then D). A condition in CONDITIONS with
    num_classes = K >= 2 gives a ConditionalGenerator G(z, y) and ConditionalDiscriminator
    D(x, y) around base nets of the same architecture (see nets/conditional.py).

    The stabilizers are read from cfg (nets/stabilize.py): with model.pack = m > 1 the base D
    is built for m-packed inputs (for "concat", labels are attached before packing); packing
    or model.mbstd_group / model.minibatch_disc > 0 wrap the base D in a
    StabilizedDiscriminator (inside the conditional wrapper); model.spectral_norm is applied
    last, to the whole D ("d", "both") and to G ("both"), and so is model.weight_norm. With
    all of them off nothing changes: same modules, same draws. "projection" and "acgan" refuse
    model.pack > 1.

    d_outputs > 1 (unconditional only) gives a ClassLogitDiscriminator: D(x) is (N, d_outputs)
    logits over the base's features (the semi-supervised GAN's classifier D).
    """
    if cfg.arch not in ARCHS:
        raise GanforgeError(
            f"Config key 'model.arch' is {cfg.arch!r}; valid choices: {', '.join(ARCHS)}."
        )
    check_choice("model.d_norm", d_norm, D_NORMS)
    check_choice("model.out_act", out_act, OUT_ACTS)
    check_choice("model.condition", condition, ("none", *CONDITIONS))
    check_choice("model.spectral_norm", cfg.spectral_norm, SPECTRAL_NORMS)
    check_choice("model.weight_norm", cfg.weight_norm, WEIGHT_NORMS)
    check_packing(cfg, condition)
    arch, shape = ARCHS[cfg.arch], tuple(int(s) for s in data_shape)
    if condition == "none":
        generator = arch.generator(cfg, shape, out_act)
        discriminator = arch.discriminator(cfg, packed_shape(shape, cfg.pack), d_norm)
        discriminator = _stabilized(cfg, discriminator)
        if d_outputs > 1:  # the semi-supervised task refuses packing (one class per sample)
            discriminator = ClassLogitDiscriminator(discriminator, d_outputs)
        _spectral(cfg, generator, discriminator)
        return generator, discriminator
    check_num_classes(num_classes, condition)
    label_input = condition in LABEL_INPUT_G
    g_cfg = dataclasses.replace(cfg, z_dim=cfg.z_dim + num_classes) if label_input else cfg
    d_shape = label_input_shape(shape, num_classes) if condition == "concat" else shape
    base_g = arch.generator(g_cfg, shape, out_act)
    if label_input and hasattr(base_g, "label_dims"):
        base_g.label_dims = num_classes  # style mixing keeps a sample's label columns
    base_d = arch.discriminator(cfg, packed_shape(d_shape, cfg.pack), d_norm)
    base_d = _stabilized(cfg, base_d)
    generator = ConditionalGenerator(
        base_g, num_classes, condition, getattr(base_g, "init_std", None)
    )
    discriminator = ConditionalDiscriminator(
        base_d, num_classes, condition, getattr(base_d, "init_std", None)
    )
    _spectral(cfg, generator, discriminator)
    return generator, discriminator


TEXT_ATTENTION_ARCHS = ("mlp", "dcgan")  # their G splits into stem and tail (word attention)


def build_text_nets(
    cfg: ModelConfig, data_shape: Shape, *, d_norm: str, out_act: str, text_dim: int,
    vocab_size: int | None,
) -> tuple[nn.Module, nn.Module]:
    """(TextGenerator, TextDiscriminator) around the configured architecture's base nets.

    text_dim is the sentence code's size: model.text_dim for the trainable encoder (built here,
    inside D, over vocab_size words), the pretrained encoder's size otherwise (vocab_size
    None). G's base reads z_dim noise + c_dim conditioning-augmented text; D's spectral norm
    and weight norm cover its base and its projection, never the encoder.
    """
    from ganforge.nets.text import TextDiscriminator, TextGenerator
    from ganforge.nets.text_encoder import TextEncoder

    if cfg.arch not in ARCHS:
        raise GanforgeError(
            f"Config key 'model.arch' is {cfg.arch!r}; valid choices: {', '.join(ARCHS)}."
        )
    if cfg.pack > 1:
        raise GanforgeError(
            f"task.name=text cannot use model.pack={cfg.pack}: its D reads one caption per "
            "image, but a packed D gives one score per pack. Set model.pack=1."
        )
    if cfg.attention and (cfg.arch not in TEXT_ATTENTION_ARCHS or vocab_size is None):
        raise GanforgeError(
            f"model.attention=true needs word features and a G that splits before its output "
            f"layer: model.text_encoder=trainable and model.arch in "
            f"{', '.join(TEXT_ATTENTION_ARCHS)} (this run: {cfg.text_encoder}, {cfg.arch}). "
            "Set model.attention=false, or change those keys."
        )
    arch, shape = ARCHS[cfg.arch], tuple(int(s) for s in data_shape)
    base_g = arch.generator(dataclasses.replace(cfg, z_dim=cfg.z_dim + cfg.c_dim), shape, out_act)
    base_d = _stabilized(cfg, arch.discriminator(cfg, shape, d_norm))
    word_dim = cfg.text_dim if cfg.attention else None
    generator = TextGenerator(
        base_g, cfg.z_dim, text_dim, cfg.c_dim, word_dim, cfg.text_fusion
    )
    discriminator = TextDiscriminator(base_d, text_dim, None)
    _spectral(cfg, generator, discriminator)
    if vocab_size is not None:  # added after spectral norm: the encoder is not normalized
        discriminator.encoder = TextEncoder(vocab_size, cfg.text_dim, cfg.text_dim)
    return generator, discriminator
