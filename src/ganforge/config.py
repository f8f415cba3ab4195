"""Typed config tree: YAML load, `--set` overrides and validation with helpful messages.

Every section is a dataclass; a YAML file or `--set a.b=value` may only name fields that exist,
and every value is checked against its type and choices. Errors name the key, the valid choices
and, for a typo, the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ganforge.config_rules import (
    RANGES,
    Range,
    check_eval,
    check_ranges,
    check_stabilizers,
    nearest,
    primary_score,
)

__all__ = ["RANGES", "Config", "Range", "dump", "from_dict", "load", "primary_score"]
from ganforge.errors import GanforgeError


def _registered(module: str, name: str) -> Callable[[], tuple]:
    """Choices read from a registry at validation time (the registries import this module)."""

    def choices() -> tuple:
        return tuple(getattr(importlib.import_module(module), name))

    return choices


@dataclass
class TaskConfig:
    """Which kind of GAN to train: one module in ganforge.tasks (unconditional, conditional)."""

    name: str = "unconditional"

    CHOICES: ClassVar[dict[str, Any]] = {"name": _registered("ganforge.tasks", "TASKS")}


@dataclass
class DataConfig:
    """Where training examples come from (see `ganforge datasets`)."""

    source: str = "fashion-mnist"
    split: str = "train"
    dir: str | None = None
    resolution: int | None = None
    channels: int | None = None
    limit: int | None = None
    strict: bool = False
    download: bool = True
    augment: list[str] = field(default_factory=list)
    labels_per_class: int | None = None
    direction: str = "AtoB"
    max_words: int = 24

    CHOICES: ClassVar[dict[str, tuple]] = {
        "split": ("train", "test"),
        "direction": ("AtoB", "BtoA"),
        "channels": (None, 1, 3),
        "augment": ("flip", "crop", "rotate", "color", "jitter"),
    }


@dataclass
class ModelConfig:
    """Architecture of G and D; resolution and channels come from the data."""

    arch: str = "dcgan"
    z_dim: int = 100
    g_width: int = 64
    d_width: int = 64
    g_hidden: list[int] = field(default_factory=lambda: [256, 512, 1024])
    d_hidden: list[int] = field(default_factory=lambda: [512, 256])
    g_norm: str = "batch"
    d_norm: str = "auto"
    out_act: str = "auto"
    condition: str = "concat"
    spectral_norm: str = "none"
    pack: int = 1
    mbstd_group: int = 0
    minibatch_disc: int = 0
    weight_norm: str = "none"
    weight_norm_init: str = "default"
    d_input_noise: float = 0.0
    d_hidden_noise: float = 0.0
    phase_images: int = 60000
    w_dim: int = 256
    mapping_layers: int = 4
    style_mixing: float = 0.9
    translator: str = "unet"
    resnet_blocks: int = 6
    patch_layers: int = 0
    translator_norm: str = "auto"
    dropout: float = 0.5
    text_encoder: str = "trainable"
    text_dim: int = 128
    c_dim: int = 32
    attention: bool = False
    text_fusion: str = "input"

    CHOICES: ClassVar[dict[str, Any]] = {
        "arch": _registered("ganforge.nets", "ARCHS"),
        "condition": _registered("ganforge.nets", "CONDITIONS"),
        "g_norm": ("batch", "none"),
        "d_norm": ("auto", "batch", "layer", "none"),
        "out_act": ("auto", "tanh", "none"),
        "spectral_norm": _registered("ganforge.nets", "SPECTRAL_NORMS"),
        "weight_norm": _registered("ganforge.nets", "WEIGHT_NORMS"),
        "weight_norm_init": _registered("ganforge.nets", "WEIGHT_NORM_INITS"),
        "translator": ("unet", "encoder-decoder", "resnet"),
        "translator_norm": ("auto", "batch", "instance"),
        "text_encoder": ("trainable", "pretrained"),
        "text_fusion": _registered("ganforge.nets.text", "FUSIONS"),
    }


@dataclass
class LossConfig:
    """Adversarial loss; None values take the loss's documented defaults."""

    name: str = "non-saturating"
    gp_weight: float | None = None
    clip: float | None = None
    class_weight: float = 1.0
    mix: list[str] = field(default_factory=list)
    r1_gamma: float = 0.0
    r1_every: int = 1
    dragan_weight: float = 0.0
    label_smoothing: float = 0.0
    feature_matching: float = 0.0
    g_adversarial: float = 1.0
    unsupervised_weight: float = 1.0
    ssl_form: str = "k"
    l1_weight: float = 100.0
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    kl_weight: float = 1.0
    mismatch: bool = True
    interpolate_text: float = 0.0

    CHOICES: ClassVar[dict[str, Any]] = {
        "name": _registered("ganforge.losses", "LOSSES"),
        "ssl_form": ("k", "k+1"),
    }


@dataclass
class OptimConfig:
    """Optimizers for G and D; None values take the loss's documented defaults."""

    name: str | None = None
    g_lr: float | None = None
    d_lr: float | None = None
    betas: list[float] | None = None
    n_critic: int | None = None
    lr_decay: str = "none"
    decay_start: float = 0.5
    preset: str = "none"

    CHOICES: ClassVar[dict[str, tuple]] = {
        "name": (None, "adam", "rmsprop"),
        "preset": ("none", "ttur"),
        "lr_decay": ("none", "linear", "constant_linear"),
    }


@dataclass
class TrainConfig:
    """The schedule of one run."""

    steps: int = 2000
    batch_size: int = 64
    seed: int = 0
    d_warmup_steps: int = 0
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    num_samples: int = 64
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps (checked in validate)
    precision: str = "fp32"  # fp32, bf16 or fp16 (autocast; fp16 adds a GradScaler)
    compile: bool = False  # torch.compile G and D (eager where unsupported, with a note)
    compile_mode: str = "default"  # or reduce-overhead: CUDA graphs of the compiled nets
    channels_last: bool = False  # conv weights and image batches in NHWC memory layout
    sync_batchnorm: bool = False  # DDP: BatchNorm statistics over all processes (CUDA)

    CHOICES: ClassVar[dict[str, tuple]] = {
        "precision": ("fp32", "bf16", "fp16"),
        "compile_mode": ("default", "reduce-overhead"),
    }


@dataclass
class StabilizeConfig:
    """Remedies that act on D's inputs and on the schedule (all off by default)."""

    instance_noise: float = 0.0
    instance_noise_steps: int | None = None
    diffaugment: list[str] = field(default_factory=list)
    ema: float = 0.0
    ema_d: float = 0.0
    replay: float = 0.0
    replay_size: int = 1024
    d_skip_above: float | None = None
    g_skip_below: float | None = None
    image_pool: int = 50

    CHOICES: ClassVar[dict[str, Any]] = {
        "diffaugment": _registered("ganforge.tasks.diffaugment", "POLICIES"),
    }


@dataclass
class EvalConfig:
    """Evaluation during training (off while every == 0)."""

    every: int = 0
    metrics: list[str] = field(default_factory=lambda: ["fid"])
    features: str = "inception"
    n: int | None = None
    against: str | None = None
    primary: str | None = None
    labels: str = "uniform"
    matcher: str | None = None
    phrasing: str = "templates"

    CHOICES: ClassVar[dict[str, tuple]] = {
        "labels": ("uniform", "data"), "phrasing": ("templates", "synonyms"),
    }


@dataclass
class LogConfig:
    """What the run reports while it trains."""

    every: int = 50
    progress: bool = True
    tensorboard: bool = False


@dataclass
class Config:
    """The whole config tree of one run."""

    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stabilize: StabilizeConfig = field(default_factory=StabilizeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, ready for YAML or JSON."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# building from dicts, with validation


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, allows None) for `X | None` annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check (and gently convert) one value against its annotated type."""
    inner, optional = _unwrap_optional(tp)
    if value is None:  # YAML null / ~ (the string "none" is a value, e.g. d_norm: none)
        if optional:
            return None
        raise GanforgeError(f"Config key '{key}' cannot be empty (null); give a value.")
    origin = typing.get_origin(inner)
    if origin is list:
        (item_tp,) = typing.get_args(inner)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise GanforgeError(
                f"Config key '{key}' must be a list, e.g. {key}=[1,2]; got {value!r}."
            )
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise GanforgeError(f"Config key '{key}' must be true or false; got {value!r}.")
    if inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise GanforgeError(f"Config key '{key}' must be an integer; got {value!r}.")
    if inner is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise GanforgeError(f"Config key '{key}' must be a number; got {value!r}.")
    if inner is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise GanforgeError(f"Config key '{key}' must be a string; got {value!r}.")
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a bug in ganforge


def _check_choices(section_name: str, section: Any) -> None:
    for name, choices in getattr(section, "CHOICES", {}).items():
        choices = choices() if callable(choices) else choices
        value = getattr(section, name)
        for item in value if isinstance(value, list) else [value]:
            _check_choice(section_name, name, item, choices)


def _check_choice(section_name: str, name: str, value: Any, choices: tuple) -> None:
    """One value (or list item) against its choices, naming the key and the nearest choice."""
    if value not in choices:
        shown = ", ".join("null" if c is None else str(c) for c in choices)
        hint = nearest(str(value), [str(c) for c in choices if c is not None])
        raise GanforgeError(
            f"Config key '{section_name}.{name}' is {value!r}; valid choices: {shown}.{hint}"
        )


def _build_section(section_name: str, cls: type, values: Any) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise GanforgeError(
            f"Config section '{section_name}' must be a mapping of keys to values; "
            f"got {values!r}."
        )
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            valid = ", ".join(names)
            raise GanforgeError(
                f"Unknown config key '{section_name}.{key}'.{nearest(str(key), names)} "
                f"Valid keys in '{section_name}': {valid}."
            )
        kwargs[key] = _coerce(f"{section_name}.{key}", value, hints[key])
    section = cls(**kwargs)
    _check_choices(section_name, section)
    return section


def from_dict(raw: dict[str, Any] | None) -> Config:
    """Build and validate a Config from a nested dict (missing keys take defaults)."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise GanforgeError("A config file must hold a mapping of sections (data, model, ...).")
    hints = typing.get_type_hints(Config)
    sections = [f.name for f in dataclasses.fields(Config)]
    for key in raw:
        if key not in sections:
            raise GanforgeError(
                f"Unknown config section '{key}'.{nearest(str(key), sections)} "
                f"Valid sections: {', '.join(sections)}."
            )
    config = Config(**{s: _build_section(s, hints[s], raw.get(s)) for s in sections})
    validate(config)
    return config


def validate(config: Config) -> None:
    """Checks beyond a single field's type and choices: numeric ranges, lengths, eval names."""
    check_ranges(config)
    if config.optim.betas is not None and len(config.optim.betas) != 2:
        raise GanforgeError("Config key 'optim.betas' must be two numbers, e.g. [0.5, 0.999].")
    check_eval(config.eval)
    check_stabilizers(config)
    from ganforge.devices import check_device_name

    check_device_name(config.train.device)


# ---------------------------------------------------------------------------------------------
# files and overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], YAML-parsed value)."""
    if "=" not in text:
        raise GanforgeError(
            f"--set expects key=value (e.g. --set train.steps=500); got '{text}'."
        )
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if len(path) != 2 or not all(path):
        raise GanforgeError(
            f"--set key '{key}' must be section.key (e.g. train.steps or loss.name)."
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise GanforgeError(f"--set {key}: cannot parse value '{raw}': {exc}") from None
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of raw with each 'section.key=value' override applied."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for text in overrides:
        (section, key), value = parse_override(text)
        current = merged.setdefault(section, {})
        if current is None:
            current = merged[section] = {}
        if not isinstance(current, dict):
            raise GanforgeError(f"Config section '{section}' must be a mapping.")
        current[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(
            f"Config file '{path}' does not exist. Ready configs live in the repository's "
            "configs/ folder, e.g. configs/fashion_mnist_dcgan.yaml."
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GanforgeError(f"Config file '{path}' is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise GanforgeError(f"Config file '{path}' must hold a mapping of sections.")
    return raw


def load(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when path is None) and apply --set overrides."""
    raw = read_yaml(path) if path is not None else {}
    return from_dict(apply_overrides(raw, overrides or []))


def dump(config: Config) -> str:
    """The config as YAML text, sections in a stable order."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
