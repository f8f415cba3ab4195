"""Rules a config must follow beyond its types: numeric ranges (one table) and evaluation
settings that must name existing metrics and feature networks. config.validate applies them."""

from __future__ import annotations

import difflib
import importlib
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    from ganforge.config import Config, EvalConfig


def nearest(name: str, choices: typing.Iterable[str]) -> str:
    """' Did you mean X?' for the closest valid choice, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Range:
    """Valid values of one numeric key: low and high bounds, each included unless open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        """Whether value lies in the range."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        """The range as a reader would write it: '> 0', 'in [0, 1)', 'at least 1'."""
        low = None if self.low is None else f"{self.low:g}"
        high = None if self.high is None else f"{self.high:g}"
        if high is None:
            return f"> {low}" if self.low_open else f"at least {low}"
        if low is None:
            return f"< {high}" if self.high_open else f"at most {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


IMAGE_TO_IMAGE = ("pix2pix", "cyclegan")  # tasks whose G has objectives beyond D's verdict
MAX_RESOLUTION = 1024  # one 1024x1024 RGB float32 image is 12 MiB; a batch of 64, 768 MiB
RANGES: dict[str, Range] = {  # every numeric key; a list key's items are checked one by one
    "data.resolution": Range(4, MAX_RESOLUTION),
    "data.limit": Range(1),
    "data.labels_per_class": Range(1),
    "model.z_dim": Range(1, 8192),
    "model.g_width": Range(1, 4096),
    "model.d_width": Range(1, 4096),
    "model.g_hidden": Range(1, 65536),
    "model.d_hidden": Range(1, 65536),
    "loss.gp_weight": Range(0),
    "loss.clip": Range(0, low_open=True),
    "loss.class_weight": Range(0),
    "loss.r1_gamma": Range(0),
    "loss.r1_every": Range(1, 10_000),
    "loss.dragan_weight": Range(0),
    "loss.label_smoothing": Range(0, 1, high_open=True),
    "loss.feature_matching": Range(0),
    "loss.g_adversarial": Range(0),
    "loss.unsupervised_weight": Range(0),
    "model.d_input_noise": Range(0),
    "model.d_hidden_noise": Range(0),
    "model.pack": Range(1, 64),
    "model.mbstd_group": Range(0, 4096),
    "model.minibatch_disc": Range(0, 4096),
    "model.phase_images": Range(1),
    "model.w_dim": Range(1, 4096),
    "model.mapping_layers": Range(1, 16),
    "model.style_mixing": Range(0, 1),
    "model.resnet_blocks": Range(1, 64),
    "model.patch_layers": Range(0, 8),
    "model.dropout": Range(0, 1, high_open=True),
    "loss.l1_weight": Range(0),
    "loss.cycle_weight": Range(0),
    "loss.identity_weight": Range(0),
    "stabilize.image_pool": Range(0, 100_000),
    "data.max_words": Range(1, 512),
    "model.text_dim": Range(1, 4096),
    "model.c_dim": Range(1, 4096),
    "loss.kl_weight": Range(0),
    "loss.interpolate_text": Range(0),
    "optim.g_lr": Range(0, 1, low_open=True),
    "optim.d_lr": Range(0, 1, low_open=True),
    "optim.betas": Range(0, 1, high_open=True),
    "optim.n_critic": Range(1, 100),
    "optim.decay_start": Range(0, 1, high_open=True),
    "train.steps": Range(1),
    "train.batch_size": Range(1, 65536),
    "train.seed": Range(0, 2**62),
    "train.d_warmup_steps": Range(0),
    "train.sample_every": Range(1),
    "train.checkpoint_every": Range(1),
    "train.keep_checkpoints": Range(1),
    "train.num_samples": Range(1, 4096),
    "stabilize.instance_noise": Range(0),
    "stabilize.instance_noise_steps": Range(1),
    "stabilize.ema": Range(0, 1, high_open=True),
    "stabilize.ema_d": Range(0, 1, high_open=True),
    "stabilize.replay": Range(0, 1, high_open=True),
    "stabilize.replay_size": Range(1, 1_000_000),
    "stabilize.d_skip_above": Range(0, 1),
    "stabilize.g_skip_below": Range(0, 1),
    "eval.every": Range(0),
    "eval.n": Range(1, 1_000_000),
    "log.every": Range(1),
}


def check_ranges(config: Config) -> None:
    """Every numeric key within its RANGES entry, with a message naming key, range and value."""
    for key, valid in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        for item in value if isinstance(value, list) else [value]:
            if item is not None and not valid.holds(item):
                note = ""
                if key == "data.resolution":
                    mib = 3 * 4 * item * item * config.train.batch_size / 2**20
                    note = (f" (a batch of {config.train.batch_size} RGB images of that size "
                            f"takes {mib:,.0f} MiB as float32 before any network runs)")
                raise GanforgeError(
                    f"Config key '{key}' must be {valid.text()}; got {item!r}{note}."
                )


def _eval_scores() -> dict[str, tuple[str, ...]]:
    """Metric name -> the numbers it reports (the registry lives in ganforge.metrics)."""
    return dict(importlib.import_module("ganforge.metrics.evaluate").SCORES)


def primary_score(e: EvalConfig) -> str:
    """The number that picks best.*: eval.primary, else the first one of the first metric."""
    return e.primary or _eval_scores()[e.metrics[0]][0]


def check_eval(e: EvalConfig) -> None:
    """eval.metrics, eval.features and eval.primary name things that exist."""
    scores = _eval_scores()
    unknown = [m for m in e.metrics if m not in scores]
    if unknown or not e.metrics:
        hint = nearest(unknown[0], scores) if unknown else ""
        raise GanforgeError(
            f"Config key 'eval.metrics' has unknown metric(s) {', '.join(unknown) or '(none)'}; "
            f"valid choices: {', '.join(scores)}.{hint}"
        )
    evaluate = importlib.import_module("ganforge.metrics.evaluate")
    try:
        evaluate.feature_kind(e.features)
    except GanforgeError:
        raise GanforgeError(
            f"Config key 'eval.features' is {e.features!r}; valid choices: "
            f"{evaluate.FEATURES_HELP}."
        ) from None
    reported = [name for m in e.metrics for name in scores[m]]
    if e.primary is not None and e.primary not in reported:
        raise GanforgeError(
            f"Config key 'eval.primary' is {e.primary!r}, which eval.metrics "
            f"({', '.join(e.metrics)}) does not report; valid choices: {', '.join(reported)}."
            f"{nearest(e.primary.lower(), reported)}"
        )


def parse_mix(items: list[str]) -> list[tuple[str, float]]:
    """loss.mix items 'NAME' or 'NAME:WEIGHT' -> [(name, weight)], checked against LOSSES."""
    losses = importlib.import_module("ganforge.losses").LOSSES
    parsed = []
    for item in items:
        name, _, weight = item.partition(":")
        name = name.strip()
        try:
            value = float(weight) if weight.strip() else 1.0
        except ValueError:
            value = -1.0
        if name not in losses or value < 0:
            raise GanforgeError(
                f"Config key 'loss.mix' has {item!r}; each item is LOSS or LOSS:WEIGHT with a "
                f"weight >= 0, e.g. loss.mix=[lsgan:0.5]. Losses: {', '.join(losses)}."
                f"{nearest(name, losses)}"
            )
        parsed.append((name, value))
    return parsed


def check_stabilizers(config: Config) -> None:
    """Combinations of stabilizers that cannot work, each refused with the way out."""
    m, loss, s, t = config.model, config.loss, config.stabilize, config.train
    mixed = [name for name, _ in parse_mix(loss.mix)]
    if m.pack > 1 and t.batch_size % m.pack:
        raise GanforgeError(
            f"model.pack={m.pack} packs {m.pack} samples per D input, so train.batch_size must "
            f"be a multiple of it; got {t.batch_size}. Set train.batch_size="
            f"{max(m.pack, t.batch_size - t.batch_size % m.pack)} or change model.pack."
        )
    packed = t.batch_size // m.pack
    if m.mbstd_group > 1 and packed % m.mbstd_group:
        raise GanforgeError(
            f"model.mbstd_group={m.mbstd_group} must divide the {packed} inputs D sees per "
            f"batch (train.batch_size / model.pack). Pick a divisor of {packed}, e.g. "
            f"model.mbstd_group=4 with a batch size that is a multiple of 4."
        )
    losses = importlib.import_module("ganforge.losses").LOSSES
    smoothable = [name for name, spec in losses.items() if spec.smoothable]
    targetless = [n for n in (loss.name, *mixed) if n not in smoothable]
    if loss.label_smoothing > 0 and targetless:
        raise GanforgeError(
            f"loss.label_smoothing needs losses with a real target label "
            f"({', '.join(smoothable)}); {targetless[0]!r} has scores without a "
            "target. Set loss.label_smoothing=0 or use only those losses."
        )
    translating = config.task.name in IMAGE_TO_IMAGE  # L1 / cycle terms drive G
    term, paper = ("cycle_weight", 10) if config.task.name == "cyclegan" else ("l1_weight", 100)
    if translating and loss.g_adversarial == 0 and getattr(loss, term) == 0:
        raise GanforgeError(
            f"loss.g_adversarial=0 and loss.{term}=0 leave G without an objective: set "
            f"loss.{term} (the paper's: {paper}) or "
            "loss.g_adversarial above 0."
        )
    if loss.g_adversarial == 0 and loss.feature_matching == 0 and not translating:
        raise GanforgeError(
            "loss.g_adversarial=0 leaves G without an objective: give it feature matching "
            "(e.g. loss.feature_matching=1) or set loss.g_adversarial above 0."
        )
    if m.spectral_norm != "none" and m.weight_norm != "none":
        raise GanforgeError(
            "model.spectral_norm and model.weight_norm both reparameterize every weight; "
            "pick one (set the other to none)."
        )
    equalized = m.arch in ("progressive", "style")
    if equalized and (m.spectral_norm != "none" or m.weight_norm != "none"):
        raise GanforgeError(
            f"model.arch={m.arch} scales every layer with an equalized learning rate; "
            "model.spectral_norm and model.weight_norm are not built for its layers. Set "
            "both to none (use loss.r1_gamma to regularize its D)."
        )
    balance = s.d_skip_above is not None or s.g_skip_below is not None
    if balance and loss.name in ("wgan", "wgan-gp"):
        raise GanforgeError(
            f"stabilize.d_skip_above / g_skip_below judge D by its accuracy, but a {loss.name} "
            "critic's scores have no decision threshold. Use n_critic to balance a critic, "
            "or a loss with one (non-saturating, lsgan, hinge)."
        )
    both = s.d_skip_above is not None and s.g_skip_below is not None
    if both and s.g_skip_below >= s.d_skip_above:
        raise GanforgeError(
            f"stabilize.g_skip_below ({s.g_skip_below}) must be below "
            f"stabilize.d_skip_above ({s.d_skip_above}), or both G and D could skip."
        )
