"""Loss curves of a run as a PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganforge.report.figures import plt, save_figure


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Plot D and G losses (and mean D outputs) against step; None when nothing was logged."""
    rows = [r for r in rows if "d_loss" in r]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig, (ax_loss, ax_out) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("d_loss", "g_loss"):
        ax_loss.plot(steps, [r.get(key, float("nan")) for r in rows], label=key)
    for key in ("d_real", "d_fake"):
        ax_out.plot(steps, [r.get(key, float("nan")) for r in rows], label=key)
    ax_loss.set_title("losses")
    ax_out.set_title("mean D output")
    for ax in (ax_loss, ax_out):
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    return save_figure(fig, path, title)
