"""Evaluate a generator (live, or rebuilt from a checkpoint) with the metrics of
ganforge.metrics.evaluate; what `ganforge eval RUN` and evaluation during training call."""

from __future__ import annotations

from typing import Any

from ganforge.config import DataConfig
from ganforge.metrics.evaluate import evaluate
from ganforge.tasks.sampling import Sampler


def evaluate_sampler(
    sampler: Sampler,
    train_data: DataConfig,
    *,
    against: str | DataConfig,
    metrics: str | list[str],
    features: str = "inception",
    n: int | None = None,
    seed: int = 0,
    labels: str = "uniform",
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Every requested metric of the sampler's samples against `against`, with its protocol.

    labels: how a conditional generator's classes are drawn ('uniform' or 'data'); the
    protocol says which. train_data is the run's training data (CAS trains on its size).
    """
    return evaluate(
        sampler.eval_fn(labels), against=against, metrics=metrics, features=features, n=n,
        seed=seed, progress=progress, device=device,
    )
