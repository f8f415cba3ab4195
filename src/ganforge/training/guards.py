"""Divergence guards: NaN/Inf losses and weights stop a run, naming the last good checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.training.checkpoint import checkpoint_step


def check_losses_now(device: torch.device, log_now: bool, checkpoint_due: bool) -> bool:
    """Whether this step's losses are checked for NaN/Inf.

    On CPU every step (exact, and free). On a GPU the check waits for the device, so it runs
    only on log steps and before a checkpoint; save_checkpoint checks the weights as well, so a
    divergence between checks never reaches a checkpoint.
    """
    return device.type != "cuda" or log_now or checkpoint_due


def diverged(what: str, step: int, last: Path | None) -> GanforgeError:
    """The divergence error: what went bad, where, the last good checkpoint, common fixes."""
    kept = (
        f"The last good checkpoint is {last} (step {checkpoint_step(last)}); "
        f"resume from it with `ganforge train --resume {last.parent.parent}` "
        "after changing the settings with --set."
        if last is not None
        else "No checkpoint was written before it."
    )
    return GanforgeError(
        f"Training diverged: {what} at step {step}. {kept} Common fixes: lower "
        "optim.d_lr / optim.g_lr, use another loss (e.g. loss.name=hinge), or a smaller model."
    )


def check_finite(stats: dict[str, torch.Tensor], step: int, last: Path | None) -> None:
    """Stop the run with a clear message when a loss turns NaN or infinite."""
    for name in ("d_loss", "g_loss"):
        if name in stats and not torch.isfinite(stats[name]).item():
            raise diverged(f"{name} became {float(stats[name])}", step, last)


def check_weights(modules: dict[str, torch.nn.Module], step: int, last: Path | None) -> None:
    """Stop the run when any weight or buffer of a network is NaN or infinite."""
    for name, module in modules.items():
        tensors = [t for t in module.state_dict().values() if t.is_floating_point()]
        if tensors and not all(torch.isfinite(t).all() for t in tensors):
            raise diverged(f"the weights of {name} became NaN or infinite", step, last)
