"""Evaluate a text-to-image run: samples for evaluation prompts, scored by the standard
metrics (FID, KID, cacc ... against the reference split) and by the text metrics:

- attr: attribute accuracy (fashion-mnist-captions): brightness and size measured on each
  sample (data.fashion_captions.measure) against the ones its prompt asked for;
- rprec: R-precision (AttnGAN's protocol): each sample ranks its prompt among 99 other prompts
  with an image-text matcher trained on real pairs (`ganforge train-matcher`, eval.matcher).

Prompts: on fashion-mnist-captions, the class and measured attributes of random images of the
reference split, said in held-out phrasings (eval.phrasing: templates or synonyms never used
in training; data.fashion_captions.eval_prompts), with the class each asks for (what cacc
checks); on any other captioned source, one caption drawn
at random for each of n images of the reference split (with its class when labelled).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import DEFAULT_N, evaluate

TEXT_METRICS = ("attr", "rprec")  # computed here, text-to-image runs only
FASHION_CAPTIONS = "fashion-mnist-captions"


@dataclasses.dataclass
class EvalPrompts:
    """The prompts of one evaluation, what each asks for, and how they were chosen."""

    texts: list[str]
    labels: torch.Tensor | None
    brightness: torch.Tensor | None = None
    size: torch.Tensor | None = None
    description: str = ""


def fashion_prompts(against: DataConfig, n: int, seed: int, phrasing: str) -> EvalPrompts:
    """Prompts in the held-out `phrasing` for the class and measured attributes of n random
    images of the reference split: what the data holds, said in words training never used."""
    from ganforge.data import build_dataset
    from ganforge.data.fashion_captions import eval_prompts, measure

    data = build_dataset(dataclasses.replace(against, resolution=None, channels=None))
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(data), (n,), generator=generator)
    brightness, size = measure(data.x[rows])
    combos = torch.stack([data.labels[rows], brightness, size], dim=1)
    p = eval_prompts(n, seed, phrasing, combos)
    return EvalPrompts(
        p.texts, p.labels, p.brightness, p.size,
        f"class and measured brightness/size of {n} random {against.source}:{against.split} "
        f"images (drawn with replacement, seed = the eval seed), said in held-out {phrasing}",
    )


def split_prompts(against: DataConfig, n: int, seed: int) -> EvalPrompts:
    """One random caption each of n random images (with replacement past the split's size)."""
    from ganforge.data import build_dataset

    data = build_dataset(against)
    if data.captions is None:
        raise GanforgeError(
            f"Evaluating a text-to-image run needs captioned reference data; "
            f"'{against.source}' has none. Use --against with a captioned source."
        )
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=generator)[:n]
    if n > len(data):
        rows = torch.randint(len(data), (n,), generator=generator)
    texts = []
    for row in rows.tolist():
        options = data.captions[row]
        texts.append(options[int(torch.randint(len(options), (1,), generator=generator))])
    labels = data.labels[rows] if data.labels is not None else None
    return EvalPrompts(
        texts, labels,
        description=f"one random caption of each of {n} random images of "
        f"{against.source}:{against.split}, seed = the eval seed",
    )


def prompts_for(against: DataConfig, n: int, seed: int, phrasing: str) -> EvalPrompts:
    """The evaluation prompts for this reference source (see the module docstring)."""
    if against.source.strip() == FASHION_CAPTIONS:
        return fashion_prompts(against, n, seed, phrasing)
    return split_prompts(against, n, seed)


def text_scores(
    images: torch.Tensor, prompts: EvalPrompts, metrics: list[str], matcher: str | None,
    seed: int, device: str,
) -> tuple[dict[str, float], dict[str, Any]]:
    """(scores, protocol) of attr and rprec on uint8 samples made for `prompts`."""
    scores: dict[str, float] = {}
    protocol: dict[str, Any] = {}
    if "attr" in metrics:
        if prompts.brightness is None:
            raise GanforgeError(
                "Metric 'attr' measures brightness and size, which only "
                f"{FASHION_CAPTIONS} captions state; drop it for other caption data."
            )
        from ganforge.metrics.text import attribute_accuracy

        scores.update(attribute_accuracy(images, prompts.brightness, prompts.size))
        protocol["attr"] = "data.fashion_captions.measure on each sample vs its prompt"
    if "rprec" in metrics:
        if not matcher:
            raise GanforgeError(
                "Metric 'rprec' ranks captions with an image-text matcher: train one with "
                "`ganforge train-matcher --data SOURCE --out matcher.safetensors`, then pass "
                "--matcher matcher.safetensors (or set eval.matcher)."
            )
        from ganforge.metrics.text import caption_keys, r_precision
        from ganforge.training.matcher import load_matcher

        loaded = load_matcher(matcher, device)
        codes = loaded.score_texts(prompts.texts)
        keys, _ = caption_keys(prompts.texts, [])
        if prompts.brightness is not None:  # same class and attributes = the same caption
            keys = prompts.labels * 6 + prompts.brightness * 2 + prompts.size
        mean, std = r_precision(
            loaded.image_codes(images), codes, codes, true_keys=keys, pool_keys=keys,
            generator=torch.Generator().manual_seed(seed),
        )
        scores.update(rprec=mean, rprec_std=std)
        protocol["rprec"] = {
            "matcher": str(matcher), "matcher_real_r_precision": loaded.real_r_precision,
            "rule": "R=1: the prompt beats 99 other prompts of this evaluation by cosine "
                    "similarity; mean and std over 10 folds; never drawn as a mismatch: "
                    + ("a prompt of the same class, brightness and size (the same caption in "
                       "other words)" if prompts.brightness is not None else
                       "an identical string"),
        }
    return scores, protocol


def evaluate_text(
    sampler: Any, against: DataConfig, metrics: list[str], *, features: str, n: int | None,
    seed: int, progress: bool, device: str, matcher: str | None, phrasing: str,
) -> dict[str, Any]:
    """Every requested metric of a text-to-image sampler, with its protocol."""
    count = n if n is not None else DEFAULT_N["image"]
    prompts = prompts_for(against, count, seed, phrasing)
    fake = sampler.eval_fn(prompts=lambda k, s: (prompts.texts[:k], _head(prompts.labels, k)))
    standard = [m for m in metrics if m not in TEXT_METRICS]
    result: dict[str, Any] = {"protocol": {"against": dataclasses.asdict(against)}}
    if standard:
        result = evaluate(
            fake, against=against, metrics=standard, features=features, n=count, seed=seed,
            progress=progress, device=device,
        )
    extra = [m for m in metrics if m in TEXT_METRICS]
    if extra:
        drawn = fake(count, seed)
        images = drawn[0] if isinstance(drawn, tuple) else drawn
        scores, protocol = text_scores(images, prompts, extra, matcher, seed, device)
        result.update(scores)
        result["protocol"].update(protocol)
    result["protocol"]["prompts"] = prompts.description
    return result


def _head(labels: torch.Tensor | None, k: int) -> torch.Tensor | None:
    """The first k labels, or None."""
    return None if labels is None else labels[:k]
