"""Training the image-text matcher behind R-precision, and its file (safetensors + JSON).

The matcher (nets.matcher) learns from real (image, caption) pairs of a captioned source: each
step takes a seeded batch of images and one of each image's captions at random, and minimizes
the symmetric InfoNCE loss (CLIP; AttnGAN's DAMSM sentence loss) with a learned temperature.
Captions repeat in templated data (many images are "a dark small sandal"), so every pair whose
caption is the same as the row's counts as a positive, not only the diagonal: an identical
caption is never pushed away from its image. One seed drives init, batches and caption picks:
CPU runs are bitwise reproducible.

Evaluation: R-precision (metrics.text, AttnGAN's protocol) of REAL test pairs, one caption
per test image picked with the seed, mismatches drawn from the other test images' captions.
Generated images cannot beat it by much: it is the protocol's ceiling, stored in the file.
Sources with a test split (fashion-mnist-captions) use it; others hold out a seeded 10%.

File: PATH (.safetensors, the state dict) and PATH.json beside it (architecture, vocabulary
words, max_words, the data source, training settings, the real-pair R-precision, and the
weights' SHA-256, which loading checks so a torn pair of files is refused). Loading reads only
those two files: no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ganforge import __version__
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data.dataset import Dataset
from ganforge.data.registry import has_splits
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write, atomic_write_json, file_digest
from ganforge.images import from_uint8
from ganforge.metrics.text import caption_keys, r_precision
from ganforge.nets.matcher import Matcher, MatcherArch
from ganforge.text.vocab import Vocabulary
from ganforge.training.classifier import schedule

FORMAT = "ganforge-matcher"
FORMAT_VERSION = 1
DEFAULT_STEPS = 2000
DEFAULT_BATCH = 64
DEFAULT_LR = 2e-3
HOLDOUT = 0.1  # test share held out of sources without a test split
CHUNK = 512  # examples per forward pass when encoding for evaluation
TRAIN_HINT = (
    "train one with `ganforge train-matcher --data fashion-mnist-captions --out "
    "matcher.safetensors`"
)


def sidecar(path: str | Path) -> Path:
    """The JSON file beside a matcher's weights: PATH.json."""
    path = Path(path)
    return path.with_name(path.name + ".json")


# ---------------------------------------------------------------------------------------------
# data


def captioned(data_config: DataConfig, split: str) -> Dataset:
    """A split of the source as a Dataset, checked to hold captioned images."""
    data = build_dataset(dataclasses.replace(data_config, split=split))
    if data.kind != "image" or data.captions is None or data.text is None:
        raise GanforgeError(
            f"The matcher learns from captioned images; source '{data_config.source}' has "
            f"{'no captions' if data.captions is None else 'no images'}. Use "
            "fashion-mnist-captions, or folder:PATH with a metadata.jsonl/metadata.csv or a "
            ".txt caption file beside each image."
        )
    return data


def holdout(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, test indices): a seeded HOLDOUT share of n examples held out."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * HOLDOUT))
    return order[n_test:].sort().values, order[:n_test].sort().values


def splits(data_config: DataConfig, seed: int) -> tuple[Dataset, torch.Tensor, Dataset, Any]:
    """(train data, its rows to train on, test data, its rows): the test split when the
    source has one, else a seeded 10% of the train split."""
    train = captioned(data_config, "train")
    if has_splits(data_config.source):
        test = captioned(data_config, "test")
        return train, torch.arange(len(train)), test, torch.arange(len(test))
    train_rows, test_rows = holdout(len(train), seed)
    return train, train_rows, train, test_rows


def pick_captions(captions: list[list[str]], generator: torch.Generator) -> list[str]:
    """One caption of each example, chosen at random (seeded)."""
    draws = torch.rand(len(captions), generator=generator, dtype=torch.float64).tolist()
    return [texts[min(int(u * len(texts)), len(texts) - 1)] for u, texts in zip(draws, captions)]


# ---------------------------------------------------------------------------------------------
# training


def info_nce(image: torch.Tensor, text: torch.Tensor, keys: torch.Tensor,
             scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch; every pair with the row's caption key is a positive."""
    logits = scale * image @ text.T  # (B, B): image i vs caption j
    positive = keys[:, None] == keys[None, :]
    masked = logits.masked_fill(~positive, float("-inf"))
    image_loss = (logits.logsumexp(1) - masked.logsumexp(1)).mean()
    text_loss = (logits.logsumexp(0) - masked.logsumexp(0)).mean()
    return (image_loss + text_loss) / 2


def batches(rows: torch.Tensor, batch_size: int, generator: torch.Generator):
    """Endless seeded batches of rows: a fresh permutation each epoch, last partial dropped."""
    while True:
        order = rows[torch.randperm(len(rows), generator=generator)]
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def check_settings(steps: int, batch_size: int, lr: float, n_train: int) -> None:
    """Refuse settings that cannot train: no steps, batches under 2, more than the data."""
    if steps < 1 or batch_size < 2 or lr <= 0:
        raise GanforgeError(
            f"train-matcher needs steps >= 1, batch size >= 2 and lr > 0; got steps={steps}, "
            f"batch size={batch_size}, lr={lr}. Pass e.g. --steps 2000 --batch-size 64."
        )
    if batch_size > n_train:
        raise GanforgeError(
            f"The batch size {batch_size} is larger than the {n_train} training examples; "
            "use a smaller --batch-size or more data (raise or drop data.limit)."
        )


def fit(matcher: Matcher, data: Dataset, rows: torch.Tensor, settings: dict[str, Any],
        progress: bool) -> float:
    """The training steps; returns the mean loss of the last 100 steps."""
    steps, device = settings["steps"], settings["device"]
    generator = torch.Generator().manual_seed(settings["seed"])
    counts = torch.tensor([len(texts) for texts in data.captions])
    opt = torch.optim.Adam(matcher.parameters(), lr=settings["lr"])
    warmup = max(1, steps // 20)
    feed = batches(rows, settings["batch_size"], generator)
    recent: list[float] = []
    bar = tqdm(range(steps), desc="train-matcher", disable=not progress, unit="step")
    for step in bar:
        idx = next(feed)
        slot = (torch.rand(len(idx), generator=generator) * counts[idx]).long()
        tokens = data.text[idx, slot]
        keys = torch.unique(tokens, dim=0, return_inverse=True)[1]
        for group in opt.param_groups:
            group["lr"] = settings["lr"] * schedule(step, steps, warmup)
        image = matcher.image_codes(from_uint8(data.x[idx]).to(device))
        text = matcher.text_codes(tokens.to(device))
        loss = info_nce(image, text, keys.to(device), matcher.logit_scale())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent = (recent + [float(loss.detach())])[-100:]
        if progress and step % 50 == 0:
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
    return sum(recent) / len(recent)


def train_matcher(
    data_config: DataConfig,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
    lr: float = DEFAULT_LR,
    device: torch.device | str = "cpu",
    *,
    arch: dict[str, int] | None = None,
    progress: bool = False,
) -> tuple[Matcher, Vocabulary, dict[str, Any]]:
    """Train a matcher on a captioned source's real pairs; returns (matcher on the CPU, in
    eval mode; the vocabulary; a report with the real-pair R-precision on held-out pairs).

    arch: MatcherArch fields to change (dim, width, embed_dim, text_width).
    """
    start = time.perf_counter()
    train, train_rows, test, test_rows = splits(data_config, seed)
    check_settings(steps, batch_size, lr, len(train_rows))
    vocabulary = train.vocabulary or Vocabulary.build(t for ts in train.captions for t in ts)
    channels, resolution = train.shape[0], train.shape[1]
    shapes = MatcherArch(channels, resolution, len(vocabulary), **(arch or {}))
    settings = {"steps": steps, "batch_size": batch_size, "seed": seed, "lr": lr,
                "device": torch.device(device)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        matcher = Matcher(shapes).to(device)
    matcher.train()
    final_loss = fit(matcher, train, train_rows, settings, progress)
    matcher.eval().cpu()
    test_images = test.x[test_rows]
    test_captions = [test.captions[i] for i in test_rows.tolist()]
    max_words = int(train.text.shape[-1])
    mean, std = real_pair_r_precision(
        matcher, vocabulary, max_words, test_images, test_captions, seed
    )
    report = {
        "data": dataclasses.asdict(data_config) | {"split": "train"},
        "train_examples": len(train_rows),
        "test_examples": len(test_rows),
        "test_split": "test" if has_splits(data_config.source) else f"held-out {HOLDOUT:.0%}",
        "steps": steps, "batch_size": batch_size, "seed": seed, "lr": lr,
        "final_loss": round(final_loss, 4),
        "real_r_precision": mean, "real_r_precision_std": std,
        "max_words": max_words,
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return matcher, vocabulary, report


# ---------------------------------------------------------------------------------------------
# encoding and evaluation


def encode_images(matcher: Matcher, images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, R, R) -> (N, dim) CPU codes, in eval mode and chunks."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise GanforgeError(
            f"The matcher reads uint8 images (N, C, H, W); got {images.dtype} "
            f"{tuple(images.shape)}. Convert samples with ganforge.images.to_uint8 first."
        )
    device = next(matcher.parameters()).device
    matcher.eval()
    with torch.no_grad():
        parts = [matcher.image_codes(from_uint8(part).to(device)).cpu()
                 for part in images.split(CHUNK)]
    return torch.cat(parts) if parts else torch.empty(0, matcher.arch.dim)


def encode_texts(matcher: Matcher, vocabulary: Vocabulary, max_words: int,
                 texts: list[str]) -> torch.Tensor:
    """Caption strings -> (N, dim) CPU codes (unknown words read as UNK)."""
    tokens = vocabulary.encode_batch(list(texts), max_words)[0]
    device = next(matcher.parameters()).device
    matcher.eval()
    with torch.no_grad():
        parts = [matcher.text_codes(part.to(device)).cpu() for part in tokens.split(CHUNK)]
    return torch.cat(parts) if parts else torch.empty(0, matcher.arch.dim)


def real_pair_r_precision(
    matcher: Matcher, vocabulary: Vocabulary, max_words: int, images: torch.Tensor,
    captions: list[list[str]], seed: int,
) -> tuple[float, float]:
    """R-precision of real pairs: each image vs one of its captions (seeded) and 99 others'."""
    generator = torch.Generator().manual_seed(seed)
    texts = pick_captions(captions, generator)
    codes = encode_texts(matcher, vocabulary, max_words, texts)
    keys, _ = caption_keys(texts, [])
    return r_precision(
        encode_images(matcher, images), codes, codes,
        true_keys=keys, pool_keys=keys, generator=generator,
    )


# ---------------------------------------------------------------------------------------------
# files


def save_matcher(
    path: str | Path, matcher: Matcher, vocabulary: Vocabulary, report: dict[str, Any]
) -> str:
    """Write PATH (safetensors) then PATH.json (atomic each); returns the weights' SHA-256."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in matcher.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}))
    digest = file_digest(path)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": matcher.arch.to_dict(),
        "vocabulary": vocabulary.to_meta(),
        "max_words": int(report["max_words"]),
        "image_shape": [matcher.arch.channels, matcher.arch.resolution, matcher.arch.resolution],
        "report": report,
        "weights_sha256": digest,
        "ganforge_version": __version__,
    }
    atomic_write_json(sidecar(path), meta)
    return digest


def not_a_matcher(path: Path, why: str) -> GanforgeError:
    """The error for a file that is not a loadable matcher, with how to make one."""
    return GanforgeError(f"'{path}' is not a ganforge matcher ({why}); {TRAIN_HINT}.")


def read_sidecar(path: Path) -> dict[str, Any]:
    """PATH.json, checked for the fields loading needs."""
    meta_path = sidecar(path)
    if not path.is_file():
        raise not_a_matcher(path, "no such file")
    if not meta_path.is_file():
        raise not_a_matcher(path, f"its metadata file '{meta_path}' is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise not_a_matcher(path, f"'{meta_path}' is not valid JSON: {exc}") from None
    needed = ("format", "format_version", "arch", "vocabulary", "max_words", "weights_sha256")
    if not isinstance(meta, dict) or any(key not in meta for key in needed):
        raise not_a_matcher(path, f"'{meta_path}' lacks some of {', '.join(needed)}")
    if meta["format"] != FORMAT or meta["format_version"] != FORMAT_VERSION:
        raise not_a_matcher(
            path, f"format {meta['format']!r} version {meta['format_version']!r}; this "
            f"ganforge reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    return meta


@dataclass
class LoadedMatcher:
    """A saved matcher with its vocabulary: uint8 images and caption strings -> codes."""

    net: Matcher
    vocabulary: Vocabulary
    max_words: int
    meta: dict[str, Any]

    def image_codes(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, R, R) images -> (N, dim) unit-length CPU codes."""
        return encode_images(self.net, images)

    def score_texts(self, texts: list[str]) -> torch.Tensor:
        """Caption strings -> (N, dim) unit-length CPU codes, tokenized with the saved
        vocabulary (unknown words read as UNK)."""
        return encode_texts(self.net, self.vocabulary, self.max_words, texts)

    @property
    def real_r_precision(self) -> float | None:
        """The R-precision real test pairs reached: the protocol's ceiling for this matcher."""
        return self.meta.get("report", {}).get("real_r_precision")


def load_matcher(path: str | Path, device: torch.device | str = "cpu") -> LoadedMatcher:
    """Read PATH + PATH.json (safetensors and JSON only) into a LoadedMatcher in eval mode."""
    path = Path(path)
    meta = read_sidecar(path)
    if file_digest(path) != meta["weights_sha256"]:
        raise not_a_matcher(
            path, f"its weights do not match '{sidecar(path)}' (SHA-256 differs: a torn or "
            "mixed pair of files)"
        )
    try:
        arch = MatcherArch.from_dict(meta["arch"])
        vocabulary = Vocabulary.from_meta(meta["vocabulary"])
    except GanforgeError as exc:
        raise not_a_matcher(path, f"bad vocabulary: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise not_a_matcher(path, f"bad architecture entry: {exc}") from None
    try:
        state = load_file(str(path))
        net = Matcher(arch)
        net.load_state_dict(state)
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise not_a_matcher(path, f"cannot rebuild it: {exc}") from None
    if len(vocabulary) != arch.vocab_size:
        raise not_a_matcher(path, "its vocabulary and its text encoder differ in size")
    return LoadedMatcher(net.to(device).eval(), vocabulary, int(meta["max_words"]), meta)
