"""Headless matplotlib, and one way to write a figure: atomically, then closed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ganforge.fileio import atomic_write


def save_figure(fig: plt.Figure, path: Path, title: str = "", dpi: int = 100) -> Path:
    """Title (optional), tight layout, PNG written atomically, figure closed."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    plt.close(fig)
    return path
