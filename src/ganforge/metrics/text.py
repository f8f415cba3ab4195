"""Text-to-image metrics as pure functions: R-precision (AttnGAN) and attribute accuracy.

R-precision (Xu et al. 2018, AttnGAN, the DAMSM protocol): each image is scored against its
true caption and `mismatched` (99) captions drawn at random from a pool; R = 1 means the hit
is the true caption ranking first by cosine similarity of image and text codes (from an
image-text matcher trained on real pairs, ganforge.training.matcher). Reported as the mean and
the standard deviation over 10 equal folds of the images, as AttnGAN reports it.

A mismatch must really be another caption: candidates whose caption is the same string as the
image's own are never drawn. Callers pass caption identity as integer keys (`caption_keys`
turns strings into them), so an identical string cannot count against the true caption.
Ties count as misses: the true caption must score strictly higher than every mismatch, so an
encoder that gives every caption the same code scores 0, not 1.

Attribute accuracy (fashion-mnist-captions): the brightness and size that
data.fashion_captions.measure reads off the generated images, against the ones requested.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError

MISMATCHED = 99  # AttnGAN: 1 true caption + 99 random ones per image
FOLDS = 10
CHUNK = 256  # images per block when drawing mismatches (bounds memory at CHUNK x pool)


def caption_keys(
    true_texts: Sequence[str], pool_texts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(true keys (N,), pool keys (M,)) int64: equal strings get equal keys, for r_precision."""
    ids: dict[str, int] = {}
    true = [ids.setdefault(text, len(ids)) for text in true_texts]
    pool = [ids.setdefault(text, len(ids)) for text in pool_texts]
    return torch.tensor(true, dtype=torch.int64), torch.tensor(pool, dtype=torch.int64)


def _check_codes(image_codes: torch.Tensor, true_codes: torch.Tensor, pool: torch.Tensor,
                 true_keys: torch.Tensor, pool_keys: torch.Tensor, folds: int) -> None:
    """Raise a GanforgeError unless shapes line up: (N, D), (N, D), (M, D), (N,), (M,)."""
    n = len(image_codes)
    if image_codes.ndim != 2 or true_codes.shape != image_codes.shape:
        raise GanforgeError(
            f"r_precision needs image codes and true text codes of one shape (N, D); got "
            f"{tuple(image_codes.shape)} and {tuple(true_codes.shape)}. Encode each image's own "
            "caption, in the images' order."
        )
    if pool.ndim != 2 or pool.shape[1] != image_codes.shape[1]:
        raise GanforgeError(
            f"r_precision's pool codes must be (M, {image_codes.shape[1]}); got "
            f"{tuple(pool.shape)}. Encode the pool with the same matcher as the images."
        )
    if true_keys.shape != (n,) or pool_keys.shape != (len(pool),):
        raise GanforgeError(
            f"r_precision needs one caption key per true caption ({n}) and per pool caption "
            f"({len(pool)}); got {tuple(true_keys.shape)} and {tuple(pool_keys.shape)}. "
            "Make them with metrics.text.caption_keys(true_texts, pool_texts)."
        )
    if n < folds:
        raise GanforgeError(
            f"r_precision reports {folds} folds and needs at least {folds} images; got {n}. "
            "Score more images (AttnGAN scores 30,000)."
        )


def draw_mismatches(
    true_keys: torch.Tensor, pool_keys: torch.Tensor, mismatched: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """(N, mismatched) pool indices: for each image a uniform random subset (no repeats) of
    the pool entries whose key differs from its own caption's key."""
    rows = []
    for keys in true_keys.split(CHUNK):
        scores = torch.rand(len(keys), len(pool_keys), generator=generator)
        same = keys[:, None] == pool_keys[None, :]
        short = int((~same).sum(1).min()) if len(keys) else mismatched
        if short < mismatched:
            raise GanforgeError(
                f"r_precision draws {mismatched} mismatched captions per image, but an image "
                f"has only {short} pool captions that differ from its own. Use a larger pool "
                "of captions (e.g. the whole test split) or fewer mismatches."
            )
        scores = scores.masked_fill(same, 2.0)  # never among the smallest
        rows.append(scores.topk(mismatched, dim=1, largest=False).indices)
    return torch.cat(rows) if rows else torch.empty(0, mismatched, dtype=torch.int64)


def r_precision_hits(
    image_codes: torch.Tensor,
    true_text_codes: torch.Tensor,
    pool_text_codes: torch.Tensor,
    mismatch_index: torch.Tensor,
) -> torch.Tensor:
    """(N,) bool: whether each image's true caption beats all its mismatches (cosine)."""
    image = F.normalize(image_codes.double(), dim=1)
    true = F.normalize(true_text_codes.double(), dim=1)
    pool = F.normalize(pool_text_codes.double(), dim=1)
    true_sim = (image * true).sum(1)  # (N,)
    mismatch_sim = torch.einsum("nd,nkd->nk", image, pool[mismatch_index])  # (N, K)
    return (true_sim[:, None] > mismatch_sim).all(1)


def r_precision(
    image_codes: torch.Tensor,
    true_text_codes: torch.Tensor,
    pool_text_codes: torch.Tensor,
    *,
    true_keys: torch.Tensor,
    pool_keys: torch.Tensor,
    mismatched: int = MISMATCHED,
    folds: int = FOLDS,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """(mean, std over `folds` folds) of R-precision at R = 1, AttnGAN's protocol.

    image_codes (N, D): codes of the images; true_text_codes (N, D): each image's own caption;
    pool_text_codes (M, D): captions to draw mismatches from; true_keys (N,), pool_keys (M,):
    caption identity (equal keys = the same caption, never drawn as a mismatch). Codes need
    not be normalized. The folds are consecutive, as equal as N allows; std is over folds
    (ddof 0, numpy's default, as AttnGAN). generator: the mismatch draw (default seed 0).
    """
    _check_codes(image_codes, true_text_codes, pool_text_codes, true_keys, pool_keys, folds)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    index = draw_mismatches(true_keys.cpu(), pool_keys.cpu(), mismatched, generator)
    hits = r_precision_hits(
        image_codes.detach().cpu(), true_text_codes.detach().cpu(),
        pool_text_codes.detach().cpu(), index,
    ).double()
    shares = torch.stack([part.mean() for part in hits.tensor_split(folds)])
    return float(hits.mean()), float(shares.std(unbiased=False))


def attribute_accuracy(
    images: torch.Tensor, brightness: torch.Tensor, size: torch.Tensor
) -> dict[str, float]:
    """Shares of images whose measured brightness, size, and both, equal the requested ones.

    images: uint8 (N, C, H, W); brightness (N,) in 0..2 and size (N,) in 0..1, the attribute
    indices the captions asked for (data.fashion_captions's scale).
    """
    from ganforge.data.fashion_captions import measure

    if images.dtype != torch.uint8 or images.ndim != 4:
        raise GanforgeError(
            f"attribute_accuracy expects uint8 images (N, C, H, W); got {images.dtype} "
            f"{tuple(images.shape)}. Convert samples with ganforge.images.to_uint8 first."
        )
    if brightness.shape != (len(images),) or size.shape != (len(images),):
        raise GanforgeError(
            f"attribute_accuracy needs one brightness and one size per image ({len(images)}); "
            f"got {tuple(brightness.shape)} and {tuple(size.shape)}."
        )
    if len(images) == 0:
        raise GanforgeError("attribute_accuracy got no images; pass at least one.")
    got_brightness, got_size = measure(images)
    bright_ok = got_brightness.cpu() == brightness.cpu()
    size_ok = got_size.cpu() == size.cpu()
    return {
        "brightness_acc": float(bright_ok.double().mean()),
        "size_acc": float(size_ok.double().mean()),
        "attr_acc": float((bright_ok & size_ok).double().mean()),
    }
