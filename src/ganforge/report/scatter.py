"""2D samples against the real points, as a PNG: the picture of mode collapse."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.report.figures import plt, save_figure


def plot_points(
    fake: torch.Tensor, real: torch.Tensor | None, path: Path, title: str = "",
    labels: torch.Tensor | None = None,
) -> Path:
    """Scatter generated 2D points (blue, or one colour per class label when given) over real
    ones (grey) when given, equal axes."""
    fig, ax = plt.subplots(figsize=(5, 5))
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=4, c="0.7", label="real")
    if labels is None:
        ax.scatter(fake[:, 0], fake[:, 1], s=6, c="tab:blue", label="generated")
    else:
        for k in labels.unique().tolist():
            pick = labels == k
            ax.scatter(fake[pick, 0], fake[pick, 1], s=6, label=f"class {k}")
    ax.set_aspect("equal")
    ax.legend(loc="upper right")
    return save_figure(fig, path, title, dpi=90)
