"""R-precision (AttnGAN's protocol) and attribute accuracy, against hand-computed cases."""

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data.fashion_captions import measure
from ganforge.errors import GanforgeError
from ganforge.metrics.text import (
    attribute_accuracy,
    caption_keys,
    draw_mismatches,
    r_precision,
)


def one_hot(n: int) -> torch.Tensor:
    """n orthogonal unit codes."""
    return torch.eye(n)


def test_codes_equal_to_their_texts_give_one():
    # 4 images, each code equal to its caption's; 3 mismatches from the other three captions
    codes = one_hot(4)
    keys = torch.arange(4)
    mean, std = r_precision(codes, codes, codes, true_keys=keys, pool_keys=keys,
                            mismatched=3, folds=2)
    assert (mean, std) == (1.0, 0.0)


def test_half_beaten_by_a_mismatch_gives_one_half():
    # images 0, 1 match their captions; images 2, 3 sit closer to caption 4 (a decoy in the
    # pool) than to their own. Pool = all 5 captions, 4 mismatches = every other caption.
    texts = one_hot(5)
    images = torch.stack([texts[0], texts[1], texts[4] + 0.5 * texts[2],
                          texts[4] + 0.5 * texts[3]])
    true_keys, pool_keys = torch.arange(4), torch.arange(5)
    mean, std = r_precision(images, texts[:4], texts, true_keys=true_keys, pool_keys=pool_keys,
                            mismatched=4, folds=2)
    assert mean == 0.5
    assert std == 0.5  # folds (0, 1) -> 1.0 and (2, 3) -> 0.0


def test_ties_count_as_misses():
    # a text encoder that gives every caption the same code must not score 1
    images = one_hot(4)
    texts = torch.ones(4, 4)
    keys = torch.arange(4)
    mean, _ = r_precision(images, texts, texts, true_keys=keys, pool_keys=keys, mismatched=3,
                          folds=2)
    assert mean == 0.0


def test_identical_captions_are_never_mismatches():
    # pool of 6 with two copies of each image's caption string; an identical caption drawn as
    # a "mismatch" would tie the true one (a miss), so the score stays 1 only if never drawn
    texts = ["a dark bag", "a light coat", "a big boot"] * 2
    codes = one_hot(3).repeat(2, 1)
    true_keys, pool_keys = caption_keys(texts[:3], texts)
    assert true_keys.tolist() == [0, 1, 2] and pool_keys.tolist() == [0, 1, 2] * 2
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        index = draw_mismatches(true_keys, pool_keys, 2, gen)
        assert not (pool_keys[index] == true_keys[:, None]).any()
        assert all(len(set(row)) == 2 for row in index.tolist())  # no pool entry twice
        mean, _ = r_precision(codes[:3], codes[:3], codes, true_keys=true_keys,
                              pool_keys=pool_keys, mismatched=2, folds=3,
                              generator=torch.Generator().manual_seed(seed))
        assert mean == 1.0


def test_mismatches_are_drawn_uniformly_and_seeded():
    keys = torch.arange(50)
    first = draw_mismatches(keys, keys, 10, torch.Generator().manual_seed(3))
    again = draw_mismatches(keys, keys, 10, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    counts = torch.bincount(
        draw_mismatches(keys.repeat(200), keys, 10, torch.Generator().manual_seed(4)).flatten(),
        minlength=50,
    )
    assert counts.min() > 0.7 * counts.float().mean()  # every caption gets drawn, evenly


def test_too_small_a_pool_is_refused_with_the_fix():
    keys = torch.arange(10)
    with pytest.raises(GanforgeError, match="larger pool"):
        r_precision(one_hot(10), one_hot(10), one_hot(10), true_keys=keys, pool_keys=keys)


def test_misaligned_codes_are_refused():
    keys = torch.arange(10)
    with pytest.raises(GanforgeError, match="one shape"):
        r_precision(one_hot(10), one_hot(10)[:9], one_hot(10), true_keys=keys, pool_keys=keys,
                    mismatched=3)
    with pytest.raises(GanforgeError, match="caption_keys"):
        r_precision(one_hot(10), one_hot(10), one_hot(10), true_keys=keys[:9], pool_keys=keys,
                    mismatched=3)


@pytest.fixture(scope="module")
def fashion():
    """The first 600 training images of fashion-mnist-captions."""
    return build_dataset(DataConfig(source="fashion-mnist-captions", limit=600))


def test_attribute_accuracy_of_real_images(fashion):
    brightness, size = measure(fashion.x)
    assert attribute_accuracy(fashion.x, brightness, size) == {
        "brightness_acc": 1.0, "size_acc": 1.0, "attr_acc": 1.0,
    }
    gen = torch.Generator().manual_seed(0)
    shuffled = attribute_accuracy(
        fashion.x, brightness[torch.randperm(600, generator=gen)],
        size[torch.randperm(600, generator=gen)],
    )
    # chance: about 1/3 for brightness, 1/2 for size, 1/6 for both
    assert shuffled["brightness_acc"] < 0.5 and shuffled["size_acc"] < 0.65
    assert shuffled["attr_acc"] < 0.3
    wrong = attribute_accuracy(fashion.x, (brightness + 1) % 3, size)
    assert wrong["brightness_acc"] == 0.0 and wrong["size_acc"] == 1.0
    assert wrong["attr_acc"] == 0.0


def test_attribute_accuracy_refuses_float_images(fashion):
    with pytest.raises(GanforgeError, match="to_uint8"):
        attribute_accuracy(fashion.x.float(), torch.zeros(600), torch.zeros(600))
