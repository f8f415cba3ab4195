"""Checks before a run starts or resumes: the data has the task's fields, and a checkpoint
fits the config (task, architecture, loss, data shape, optimizer type)."""

from __future__ import annotations

import warnings
from typing import Any

from ganforge import nets, tasks
from ganforge.config import Config, ModelConfig
from ganforge.data import Dataset
from ganforge.data.dataset import FIELD_HELP
from ganforge.errors import GanforgeError
from ganforge.losses import get_loss


def check_fields(task: type[tasks.Task], dataset: Dataset, source: str) -> None:
    """Fail before training when the data lacks a batch field the task reads."""
    missing = [name for name in task.needs if name not in dataset.fields]
    if not missing:
        return
    help_text = "; ".join(f"'{name}' ({FIELD_HELP.get(name, name)})" for name in missing)
    note = f" Here: {dataset.label_note}." if dataset.label_note and "y" in missing else ""
    raise GanforgeError(
        f"task.name={task.name} reads the batch field(s) {help_text}, but data.source "
        f"'{source}' provides only {', '.join(dataset.fields)}.{note} Use a source that has "
        f"them, or another task (e.g. task.name=unconditional)."
    )


def check_compatible(meta: dict[str, Any], config: Config, dataset: Dataset) -> None:
    """Refuse to resume a checkpoint trained with another architecture or data shape."""
    saved = meta["config"]
    problems = []
    if meta.get("task") != config.task.name:
        problems.append(f"task.name was {meta.get('task')!r}, now {config.task.name!r}")
    model_keys = ("arch", "z_dim", "g_width", "d_width", "g_hidden", "d_hidden", "d_norm")
    shaping = (
        "condition", "spectral_norm", "pack", "mbstd_group", "minibatch_disc", "weight_norm",
        "phase_images", "w_dim", "mapping_layers", "translator", "resnet_blocks",
        "patch_layers", "translator_norm", "text_encoder", "text_dim", "c_dim", "attention",
        "text_fusion",
    )
    defaults = ModelConfig()  # what checkpoints from before a key existed were trained with
    for key in (*model_keys, *shaping):
        before = saved["model"].get(key, getattr(defaults, key) if key in shaping else None)
        now = getattr(config.model, key)
        if before != now:
            problems.append(f"model.{key} was {before!r}, now {now!r}")
    for key in ("ema", "ema_d"):  # a moving average is a module of the checkpoint or not
        ema_before = saved.get("stabilize", {}).get(key, 0.0) > 0
        if ema_before != (getattr(config.stabilize, key) > 0):
            on = "on" if ema_before else "off"
            problems.append(f"stabilize.{key} was {on}, now {'off' if ema_before else 'on'}")
    form_before = saved["loss"].get("ssl_form", "k")
    if form_before != config.loss.ssl_form:  # D's number of logits
        problems.append(f"loss.ssl_form was {form_before!r}, now {config.loss.ssl_form!r}")
    if saved["loss"]["name"] != config.loss.name:
        problems.append(f"loss.name was {saved['loss']['name']!r}, now {config.loss.name!r}")
    else:
        check_same_optimizer(saved, config)
    if list(meta["data"]["shape"]) != list(dataset.shape):
        problems.append(f"data shape was {meta['data']['shape']}, now {list(dataset.shape)}")
    if problems:
        raise GanforgeError(
            "Cannot resume: the checkpoint was trained with another architecture or data ("
            + "; ".join(problems)
            + "). Resume with the run's own config, or start a new run with another --out."
        )


def check_same_optimizer(saved: dict[str, Any], config: Config) -> None:
    """Refuse a resume that changes the optimizer type (its state cannot carry over)."""
    default = get_loss(config.loss.name).optimizer
    before = saved.get("optim", {}).get("name") or default
    now = config.optim.name or default
    if before != now:
        raise GanforgeError(
            f"Cannot resume with optim.name={now}: the run was trained with {before}, and an "
            f"optimizer's state does not carry over to another type. Resume without changing "
            f"optim.name, or start afresh from step 0 with `ganforge train CONFIG --set "
            f"optim.name={now} --out NEW_RUN_DIR`."
        )


ARCH_KEYS = (
    "g_hidden", "d_hidden", "g_norm", "g_width", "d_width", "d_input_noise", "d_hidden_noise",
    "phase_images", "w_dim", "mapping_layers", "style_mixing",
)  # read by some archs only


SEMI_SUPERVISED_KEYS = (
    "data.labels_per_class", "loss.unsupervised_weight", "loss.ssl_form", "stabilize.ema_d",
)
TRANSLATION_KEYS = (
    "data.direction", "model.translator", "model.resnet_blocks", "model.patch_layers",
    "model.translator_norm", "model.dropout", "loss.l1_weight", "loss.cycle_weight",
    "loss.identity_weight", "stabilize.image_pool",
)  # read by the image-to-image tasks only
TEXT_KEYS = (
    "data.max_words", "model.text_encoder", "model.text_dim", "model.c_dim", "model.attention",
    "model.text_fusion", "loss.kl_weight", "loss.mismatch", "loss.interpolate_text",
)  # read by the text-to-image task only
# what the image-to-image tasks never read (their nets and phases are their own)
NOT_TRANSLATION_KEYS = (
    "model.arch", "model.z_dim", "model.g_hidden", "model.d_hidden", "model.g_norm",
    "model.d_norm", "model.out_act", "model.condition", "model.spectral_norm", "model.pack",
    "model.mbstd_group", "model.minibatch_disc", "model.weight_norm",
    "model.weight_norm_init", "loss.gp_weight",
    "loss.clip", "loss.mix", "loss.r1_gamma", "loss.dragan_weight", "loss.label_smoothing",
    "loss.feature_matching", "stabilize.instance_noise", "stabilize.diffaugment",
    "stabilize.ema", "stabilize.replay", "stabilize.d_skip_above", "stabilize.g_skip_below",
)


def changed(config: Config, keys: tuple[str, ...]) -> list[str]:
    """The keys whose value differs from the default config's."""
    return [key for key in keys if key_value(config, key) != key_value(Config(), key)]


def key_value(config: Config, key: str) -> Any:
    """The value of a dotted config key such as 'loss.ssl_form'."""
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def ignored_keys(config: Config) -> list[str]:
    """Keys set away from their defaults that this run's architecture, task or optimizer
    never reads (e.g. model.g_norm with dcgan), each with the reason."""
    defaults, model = ModelConfig(), config.model
    reads = nets.ARCHS[model.arch].reads if model.arch in nets.ARCHS else ARCH_KEYS
    found = [
        f"model.{key} (model.arch={model.arch} does not use it)"
        for key in ARCH_KEYS
        if key not in reads and getattr(model, key) != getattr(defaults, key)
    ]
    task = tasks.get(config.task.name)
    if "x_b" in task.needs:
        return [f"{key} (task.name={config.task.name} does not use it)"
                for key in changed(config, NOT_TRANSLATION_KEYS)]
    found += [f"{key} (only the image-to-image tasks, pix2pix and cyclegan, use it)"
              for key in changed(config, TRANSLATION_KEYS)]
    if "text" not in task.needs:
        found += [f"{key} (only task.name=text uses it)" for key in changed(config, TEXT_KEYS)]
    if model.weight_norm == "none" and model.weight_norm_init != defaults.weight_norm_init:
        found.append("model.weight_norm_init (model.weight_norm=none: no layer to initialize)")
    semi = task.labelled_subset
    conditional = "y" in task.needs and not semi
    if not conditional and model.condition != defaults.condition:
        found.append(f"model.condition (task.name={config.task.name} has no class labels)")
    if not semi:
        found += [f"{key} (only task.name=semi-supervised uses it)"
                  for key in changed(config, SEMI_SUPERVISED_KEYS)]
    acgan = conditional and model.condition == "acgan"
    if not acgan and config.loss.class_weight != 1.0:
        found.append("loss.class_weight (only model.condition=acgan has a class loss)")
    optimizer = config.optim.name or get_loss(config.loss.name).optimizer
    if optimizer == "rmsprop" and config.optim.betas is not None:
        found.append("optim.betas (RMSprop has no betas)")
    return found


def warn_ignored(config: Config) -> None:
    """One warning naming every set key that this run ignores, so no setting is lost silently."""
    found = ignored_keys(config)
    if found:
        warnings.warn(
            "These config keys are set but ignored by this run: " + "; ".join(found) + ".",
            stacklevel=2,
        )
