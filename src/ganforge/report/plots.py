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


def plot_series(
    lines: dict[str, tuple[list[int], list[float]]], path: Path, title: str = "",
    ylabel: str = "", markers: bool = False, size: tuple[float, float] = (5.5, 3.4),
    spread: dict[str, list[float]] | None = None,
) -> Path | None:
    """One panel of named (steps, values) lines against step (markers for sparse series such
    as evaluations), a band of +- spread[name] (a std, one per step) around a line that has
    one; None when no line has a point."""
    lines = {name: xy for name, xy in lines.items() if xy[0]}
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=size)
    for name, (steps, values) in lines.items():
        shown = f" {name}" if name.startswith("_") else name  # matplotlib hides "_" labels
        drawn = ax.plot(steps, values, label=shown, marker="o" if markers else None,
                        markersize=4)
        std = (spread or {}).get(name)
        if std is not None and len(std) == len(values):
            low = [v - s for v, s in zip(values, std)]
            high = [v + s for v, s in zip(values, std)]
            ax.fill_between(steps, low, high, alpha=0.2, color=drawn[0].get_color(),
                            label=f"{shown} ± std")
    ax.set_xlabel("step")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path, title)
