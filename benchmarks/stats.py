"""Summaries over seeds shared by the benchmarks' tables."""

from __future__ import annotations

import statistics


def mean_std(values: list[float], digits: int, scale: float = 1.0) -> str:
    """'mean ± std' of scale * values (population std over seeds; 0 for one value)."""
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.fmean(values):.{digits}f} ± {scale * std:.{digits}f}"
