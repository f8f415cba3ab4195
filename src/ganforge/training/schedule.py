"""Learning-rate schedules and optimizer settings that a resume may change (lr, betas)."""

from __future__ import annotations

from typing import Any

import torch

from ganforge.config import Config
from ganforge.tasks.dview import instance_noise_std


def lr_factor(decay: str, step: int, total: int, decay_start: float) -> float:
    """Learning-rate factor of step (1-based) out of total.

    linear: from 1 at the first step to 0 at the end. constant_linear: 1 for the first
    decay_start fraction of the steps, then linear to 0 (CycleGAN and pix2pix: constant for
    n_epochs, then n_epochs_decay linear to 0; their default is half and half).
    """
    if decay == "none":
        return 1.0
    start = decay_start * total if decay == "constant_linear" else 0.0
    done = step - 1
    if done < start:
        return 1.0
    return 1.0 - (done - start) / (total - start)


def set_lr_factor(optimizers, factor: float) -> None:
    """Scale every param group's learning rate to factor x its initial value.

    The initial rate is kept in the group (saved with the optimizer), so resuming continues the
    same schedule as long as train.steps is unchanged (schedule_notes warns when it changes).
    """
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor


def optimizer_settings(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """The config-given settings (lr, betas) of each param group of a fresh optimizer."""
    return [
        {key: group[key] for key in ("lr", "betas") if key in group}
        for group in optimizer.param_groups
    ]


def apply_optimizer_settings(
    optimizer: torch.optim.Optimizer, settings: list[dict[str, Any]]
) -> list[str]:
    """Put the config's lr and betas into a restored optimizer; describe what changed.

    A restored optimizer state carries the rates it was saved with; without this a
    `--set optim.d_lr=...` on resume would be silently dropped.
    """
    changes = []
    for group, wanted in zip(optimizer.param_groups, settings, strict=True):
        saved_lr = group.get("initial_lr", group["lr"])
        if saved_lr != wanted["lr"]:
            changes.append(f"lr {saved_lr:g} -> {wanted['lr']:g}")
            if "initial_lr" in group:  # a decaying schedule: keep its current factor
                group["lr"] = wanted["lr"] * (group["lr"] / saved_lr if saved_lr else 1.0)
                group["initial_lr"] = wanted["lr"]
            else:
                group["lr"] = wanted["lr"]
        if "betas" in wanted and tuple(group["betas"]) != tuple(wanted["betas"]):
            changes.append(f"betas {tuple(group['betas'])} -> {tuple(wanted['betas'])}")
            group["betas"] = tuple(wanted["betas"])
    return sorted(set(changes))


def schedule_notes(saved: dict[str, Any], config: Config, step: int) -> list[str]:
    """Warnings when a resume re-plans a schedule that spans train.steps: a decaying learning
    rate, or instance noise annealed over the run (stabilize.instance_noise_steps unset)."""
    o, before, after = config.optim, saved["train"]["steps"], config.train.steps
    if before == after:
        return []
    notes = []
    if o.lr_decay != "none":
        old = lr_factor(o.lr_decay, step + 1, before, o.decay_start)
        new = lr_factor(o.lr_decay, step + 1, after, o.decay_start)
        notes.append(
            f"warning: train.steps changed from {before} to {after} with "
            f"optim.lr_decay={o.lr_decay}: the schedule is re-planned over the new length, so "
            f"the learning rate factor goes from {old:.3g} to {new:.3g} at step {step + 1}."
        )
    s = config.stabilize
    if s.instance_noise > 0 and s.instance_noise_steps is None:
        old = instance_noise_std(s.instance_noise, step, before)
        new = instance_noise_std(s.instance_noise, step, after)
        notes.append(
            f"warning: train.steps changed from {before} to {after} and stabilize.instance_noise "
            f"anneals over train.steps: its std goes from {old:.3g} to {new:.3g} at step "
            f"{step + 1}. To keep the old schedule, resume with --set "
            f"stabilize.instance_noise_steps={before}."
        )
    return notes
