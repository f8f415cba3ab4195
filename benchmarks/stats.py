"""Seeds and summaries over seeds, shared by the benchmarks."""

from __future__ import annotations

import argparse
import statistics


def mean_std(values: list[float], digits: int, scale: float = 1.0) -> str:
    """'mean ± std' of scale * values (population std over seeds; 0 for one value)."""
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.fmean(values):.{digits}f} ± {scale * std:.{digits}f}"


def add_seed_arguments(parser: argparse.ArgumentParser, default: int) -> None:
    """--seeds N and --first-seed F: the runs use seeds F .. F+N-1 (see seed_range)."""
    parser.add_argument("--seeds", type=int, default=default, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST+N-1")


def seed_range(args: argparse.Namespace) -> range:
    """The seeds that add_seed_arguments' flags name."""
    return range(args.first_seed, args.first_seed + args.seeds)
