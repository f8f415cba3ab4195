"""Evaluate a generator (live, or rebuilt from a checkpoint): the metrics of
ganforge.metrics.evaluate, plus the Classification Accuracy Score, which trains a classifier
and so lives in training/. What `ganforge eval RUN` and evaluation during training call."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import evaluate, parse_against
from ganforge.metrics.extract import Shard
from ganforge.tasks.sampling import Sampler
from ganforge.tasks.text import TextSampler
from ganforge.tasks.translation import TranslationSampler

TRAINING_METRICS = ("cas", "accuracy")  # computed here, not by metrics.evaluate
TRANSLATION_METRICS = ("l1", "psnr", "ssim", "cycle")  # image-to-image runs only
TEXT_METRICS = ("attr", "rprec")  # text-to-image runs only (training/text_eval.py)


# (metrics, what they do, the kind of run they need): refused on any other run
RUN_KIND_METRICS = (
    (TEXT_METRICS, "scores images against the captions they were made for",
     "a text-to-image run (task.name=text)"),
    (TRANSLATION_METRICS, "compares translations with their targets",
     "an image-to-image run (task.name=pix2pix or cyclegan)"),
)


def as_run_read(train_data: DataConfig, against: DataConfig) -> DataConfig:
    """The reference source read the way the run read its data (resolution, channels,
    direction, caption length), with the reference's source, split and limit."""
    return dataclasses.replace(
        train_data, source=against.source, split=against.split, limit=against.limit,
        strict=False,
    )


def split_metrics(metrics: str | list[str]) -> tuple[list[str], list[str]]:
    """(metrics for metrics.evaluate, metrics computed here) from a list or comma string."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [m.strip().lower() for m in names if m.strip()]
    here = TRAINING_METRICS + TRANSLATION_METRICS + TEXT_METRICS
    return [m for m in names if m not in here], [m for m in names if m in here]


def cas_for(sampler: Sampler, train_data: DataConfig, against: DataConfig, features: str,
            seed: int, progress: bool) -> dict[str, Any]:
    """CAS of a class-conditional sampler; a classifier:PATH feature file sets the architecture."""
    from ganforge.training.cas import classification_accuracy_score

    labelled = getattr(sampler, "labelled_fn", None)
    if labelled is None:
        raise GanforgeError(
            "Metric 'cas' trains a classifier on generated images of requested classes, so it "
            f"needs a class-conditional run (task.name=conditional); this run's task is "
            f"'{sampler.task}'."
        )
    kind, _, path = features.partition(":")
    fake = labelled()
    fake.description = sampler.describe()
    train_source = dataclasses.replace(train_data, split="train")
    return classification_accuracy_score(
        fake, against, train_source=train_source, arch=path if kind == "classifier" else None,
        seed=seed, progress=progress,
    )


def accuracy_for(sampler: Sampler, against: DataConfig) -> dict[str, Any]:
    """Accuracy and error count of a semi-supervised run's D on every example of `against`."""
    from ganforge.data import build_dataset
    from ganforge.metrics.accuracy import classification_scores

    classifier = getattr(sampler, "classifier", None)
    if classifier is None:
        raise GanforgeError(
            "Metric 'accuracy' scores a run's D as a classifier, so it needs a semi-supervised "
            f"run (task.name=semi-supervised); this run's task is '{sampler.task}'."
        )
    dataset = build_dataset(against)
    if dataset.labels is None:
        raise GanforgeError(
            f"Metric 'accuracy' needs labelled data to score against; '{against.source}' has no "
            "labels. Use --against SOURCE:test of a labelled source."
        )
    scores = classification_scores(classifier.probabilities(dataset.x), dataset.labels)
    scores["protocol"] = {
        "against": {"source": against.source, "split": against.split},
        "n": len(dataset),
        "rule": "argmax of D's K class logits, eval mode (no noise, running BatchNorm "
                "statistics), every example of the split, no augmentation",
    }
    return scores


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
    matcher: str | None = None,
    phrasing: str = "templates",
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Every requested metric of the sampler's samples against `against`, with its protocol.

    labels: how a conditional generator's classes are drawn ('uniform' or 'data'); the
    protocol says which. train_data: the run's training data; CAS trains on as many generated
    images as it holds, with its class balance, and tests on `against`. shard: under torchrun,
    the standard metrics' fake features are extracted in parts by all processes.
    """
    standard, extra = split_metrics(metrics)
    against = parse_against(against)
    if isinstance(sampler, TranslationSampler):
        return evaluate_translation(
            sampler, as_run_read(train_data, against), standard + extra, features=features,
            n=n, seed=seed, progress=progress, device=device,
        )
    if isinstance(sampler, TextSampler):  # prompts, then the standard and text metrics
        from ganforge.training.text_eval import evaluate_text

        return evaluate_text(
            sampler, as_run_read(train_data, against), standard + extra, features=features,
            n=n, seed=seed, progress=progress, device=device, matcher=matcher,
            phrasing=phrasing,
        )
    for names, what, kind in RUN_KIND_METRICS:
        found = [m for m in extra if m in names]
        if found:
            raise GanforgeError(
                f"Metric '{found[0]}' {what}, so it needs {kind}; this run's task is "
                f"'{sampler.task}'."
            )
    result: dict[str, Any] = {
        "protocol": {"against": {"source": against.source, "split": against.split}}
    }
    if standard or not extra:
        result = evaluate(
            sampler.eval_fn(labels), against=against, metrics=standard, features=features,
            n=n, seed=seed, progress=progress, device=device, shard=shard,
        )
    if "cas" in extra:
        cas = cas_for(sampler, train_data, against, features, seed, progress)
        result.update(cas=cas["cas"], cas_real=cas["cas_real"])
        result["protocol"]["cas"] = cas["protocol"]
    if "accuracy" in extra:
        scores = accuracy_for(sampler, against)
        result["protocol"]["accuracy"] = scores.pop("protocol")
        result.update(scores)
    return result


def other_direction(direction: str) -> str:
    """AtoB <-> BtoA."""
    return "BtoA" if direction == "AtoB" else "AtoB"


def evaluate_translation(
    sampler: TranslationSampler, against: DataConfig, metrics: list[str], *, features: str,
    n: int | None, seed: int, progress: bool, device: str,
) -> dict[str, Any]:
    """A translator's metrics on the first n examples of `against` (the test split of its
    paired or unpaired source; all of them by default): l1, psnr, ssim of each output against
    its target (paired sources), cycle (the reconstruction error, two-way runs), and every
    metrics.evaluate metric (fid, kid, cacc, ...) of the outputs against the real images of the
    target domain, with the input's class as the label cacc checks (is the class kept?)."""
    from ganforge.data import build_dataset
    from ganforge.images import to_uint8
    from ganforge.metrics.translation import l1_error, pixel_metrics

    data = build_dataset(against)
    if data.x_b is None:
        raise GanforgeError(
            f"An image-to-image run is scored on a source with two domains; '{against.source}' "
            "has one. Use --against with the run's own source (the default), e.g. "
            "fashion-edges:test."
        )
    shapes = (tuple(data.shape), tuple(data.x_b.shape[1:]))
    wanted = (sampler.input_shape(), tuple(sampler.info.shape_b))
    if shapes != wanted:
        raise GanforgeError(
            f"'{against.source}' ({against.split}) reads as A {shapes[0]}, B {shapes[1]}, but "
            f"this run translates {wanted[0]} into {wanted[1]}. Score it against data with "
            "the run's data.resolution, data.channels and data.direction (the default: its "
            "own source's test split)."
        )
    count = len(data) if n is None else min(n, len(data))
    inputs = data.x[:count]
    translated = sampler.translate(data.to_model(inputs))  # model scale, for the cycle
    outputs = to_uint8(translated)
    pixel = [m for m in metrics if m in ("l1", "psnr", "ssim")]
    if pixel and not data.paired:
        raise GanforgeError(
            f"Metric '{pixel[0]}' compares each output with its target, but '{against.source}' "
            f"({against.split}) is unpaired. Drop {', '.join(pixel)}, or score against paired "
            "test data (fashion-edges-unpaired's test split is paired)."
        )
    result: dict[str, Any] = {}
    notes = {
        "inputs": f"the first {count} examples of {against.source}:{against.split}, in order, "
                  f"translated {sampler.forward} in eval mode",
    }
    if pixel:
        result.update(pixel_metrics(pixel, outputs, data.x_b[:count]))
        notes["pixels"] = "outputs vs their targets in [0, 1]; psnr, ssim per image, then mean"
    if "cycle" in metrics:
        backward = other_direction(sampler.forward)
        if backward not in sampler.directions:
            raise GanforgeError(
                f"Metric 'cycle' needs a run that translates both ways (task.name=cyclegan); "
                f"this one is '{sampler.task}'."
            )
        back = to_uint8(sampler.translate(translated, backward))
        result["cycle_l1"] = l1_error(back, inputs)
        notes["cycle"] = f"l1 of {backward}({sampler.forward}(x)) against x, in [0, 1]"
    protocol: dict[str, Any] = {  # replaced by evaluate()'s when a feature metric is asked
        "against": {"source": against.source, "split": against.split},
        "fake": f"translator ({sampler.task})", "n_fake": count, "seed": seed,
        "n_real": count if pixel else 0,
        "real_selection": "each output's own target" if pixel else "not used",
        "features": {"name": "none (pixels)", "description": "no feature network"},
        "resize": "none",
    }
    standard = [m for m in metrics if m not in TRANSLATION_METRICS]
    if standard:
        labels = data.labels[:count] if data.labels is not None else None
        fake = (outputs, labels) if labels is not None else outputs
        target_domain = dataclasses.replace(against, direction=other_direction(against.direction))
        scored = evaluate(
            fake, against=target_domain, metrics=standard, features=features, n=count,
            seed=seed, progress=progress, device=device,
        )
        protocol = scored.pop("protocol")
        protocol["fake"] = f"translator ({sampler.task})"
        notes["reference"] = "the real images of the target domain (its split as above)"
        if labels is not None:
            protocol["fake_labels"] = "the class of each input (cacc: is the class kept?)"
        result.update(scored)
    protocol["translation"] = notes
    return {**result, "protocol": protocol}


def is_run(target: str) -> bool:
    """A run directory or a checkpoint file (as opposed to images, samples or real:...)."""
    path = Path(target)
    if path.suffix in (".safetensors", ".json") and path.is_file():
        return True
    return path.is_dir() and ((path / "checkpoints").is_dir() or path.name == "checkpoints")


def refuse_growing(generator: Any, step: int) -> None:
    """Metrics of a progressively grown G are taken at its final resolution only: refuse a
    checkpoint from before its last level was in."""
    from ganforge.nets.progressive import current_resolution, growing

    if growing(generator):
        side = current_resolution(generator)
        raise GanforgeError(
            f"This checkpoint (step {step}) is still growing: its generator works at "
            f"{side}x{side}, and metrics are computed at the final resolution only. Evaluate a "
            "later checkpoint (the run's metrics.jsonl says from which step), or train longer."
        )


def evaluate_target(
    target: str, *, against: str | None, labels: str = "uniform", device: Any = "cpu",
    matcher: str | None = None, phrasing: str = "templates", truncation: float | None = None,
    **common: Any,
) -> dict[str, Any]:
    """`ganforge eval TARGET`: a run or checkpoint through its sampler (against its own data's
    test split by default; with the truncation trick when given), else a folder, .npy/.npz
    or real:SOURCE through metrics/targets."""
    if is_run(target):
        from ganforge.training.generator import load_run
        from ganforge.training.loop import default_against

        loaded = load_run(target, device)
        refuse_growing(loaded.sampler.G, loaded.step)
        if truncation is not None:
            loaded.sampler.set_truncation(truncation)
        return evaluate_sampler(
            loaded.sampler, loaded.config.data,
            against=against or default_against(loaded.config.data), labels=labels,
            device=str(device), matcher=matcher, phrasing=phrasing, **common,
        )
    if truncation is not None:
        raise GanforgeError(
            f"--truncation applies to a run's generator; '{target}' is not a run or checkpoint. "
            "Evaluate it without --truncation."
        )
    if not against:
        raise GanforgeError("Give --against SOURCE[:split], e.g. --against fashion-mnist:test.")
    run_only = split_metrics(common.get("metrics", []))[1]
    if run_only:
        kind = {"cas": "class-conditional", "accuracy": "semi-supervised", "attr": "text",
                "rprec": "text"}.get(run_only[0], "image-to-image")
        raise GanforgeError(
            f"Metric '{run_only[0]}' needs a {kind} run directory or checkpoint; "
            f"'{target}' is not one."
        )
    from ganforge.metrics.targets import fake_from_target

    return evaluate(fake_from_target(target), against=against, device=str(device), **common)
