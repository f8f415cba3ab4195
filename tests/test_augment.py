"""data.augment: flip, crop, rotate, color on image batches in [-1, 1] (data/augment.py)."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import AUGMENTS, augment_images
from ganforge.data import augment as aug
from ganforge.errors import GanforgeError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 16, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Random images in [-1, 1], asymmetric (so a flip or shift always shows)."""
    return torch.rand(n, c, size, size, generator=gen(seed)) * 2 - 1


def test_augments_names_every_op_in_order():
    assert AUGMENTS == ("jitter", "flip", "crop", "rotate", "color")


@pytest.mark.parametrize("ops", [[name] for name in AUGMENTS] + [list(AUGMENTS)])
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_and_range_are_kept(ops, channels):
    x = images(c=channels)
    out = augment_images(x, ops, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= -1 and out.max() <= 1
    assert not torch.equal(out, x)  # every op changes a batch of 16 random images


def test_no_ops_returns_the_batch_itself():
    x = images()
    assert augment_images(x, [], gen()) is x


def test_same_seed_same_output_other_seed_differs():
    x = images()
    ops = list(AUGMENTS)
    first = augment_images(x, ops, gen(7))
    assert torch.equal(first, augment_images(x, ops, gen(7)))
    assert not torch.equal(first, augment_images(x, ops, gen(8)))


def test_order_of_ops_in_the_list_does_not_matter():
    x = images()
    a = augment_images(x, ["color", "flip"], gen(3))
    b = augment_images(x, ["flip", "color"], gen(3))
    assert torch.equal(a, b)


def test_flip_mirrors_exactly_the_images_the_draw_picks():
    x = images(n=64)
    out = augment_images(x, ["flip"], gen(2))
    flipped = torch.tensor([torch.equal(out[i], torch.flip(x[i], dims=[2])) for i in range(64)])
    kept = torch.tensor([torch.equal(out[i], x[i]) for i in range(64)])
    assert bool((flipped ^ kept).all())  # each image is exactly one of the two
    assert 16 < int(flipped.sum()) < 48  # p = 0.5
    # the draw is one uniform per image below 0.5: the same generator reproduces it
    assert torch.equal(flipped, torch.rand(64, generator=gen(2)) < 0.5)


def test_flip_images_kernel_is_torch_flip():
    x = images(n=3)
    mask = torch.tensor([True, False, True])
    out = aug.flip_images(x, mask)
    assert torch.equal(out[0], torch.flip(x[0], dims=[2])) and torch.equal(out[1], x[1])


def test_crop_is_a_translation_of_at_most_pad_pixels():
    size = 32
    pad = aug.crop_pad(size)
    assert pad == 4 and aug.crop_pad(28) == 3 and aug.crop_pad(4) == 1
    x = images(n=24, size=size)
    out = augment_images(x, ["crop"], gen(5))
    inner = slice(pad, size - pad)  # pixels whose source lies inside the image for any shift
    shifts = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(-pad, pad + 1)
            for dx in range(-pad, pad + 1)
            if torch.equal(
                out[i, :, inner, inner],
                x[i, :, pad - dy : size - pad - dy, pad - dx : size - pad - dx],
            )
        ]
        assert len(found) == 1, f"image {i} is not one translation of its source"
        shifts.add(found[0])
    assert len(shifts) > 5  # shifts vary between images


def test_translate_fills_borders_by_reflection():
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    out = aug.translate(x, torch.tensor([0]), torch.tensor([1]), pad=1)  # one pixel right
    assert torch.equal(out[0, 0, :, 1:], x[0, 0, :, :3])
    assert torch.equal(out[0, 0, :, 0], x[0, 0, :, 1])  # reflected, not zero


def test_rotate_keeps_the_center_pixel_and_stays_small():
    x = images(n=8, size=15)  # odd: pixel (7, 7) is the rotation center
    out = augment_images(x, ["rotate"], gen(4))
    torch.testing.assert_close(out[:, :, 7, 7], x[:, :, 7, 7], atol=1e-5, rtol=0)  # grid rounding
    assert not torch.allclose(out, x)


def test_rotate_by_90_degrees_is_rot90_counter_clockwise():
    x = images(n=2, size=9)
    out = aug.rotate_degrees(x, torch.tensor([90.0, 0.0]))
    torch.testing.assert_close(out[0], torch.rot90(x[0], 1, dims=(1, 2)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1], atol=1e-5, rtol=0)  # grid rounding


def test_rotation_angles_stay_within_ten_degrees():
    draws = aug.uniform(10_000, -aug.MAX_DEGREES, aug.MAX_DEGREES, gen())
    assert draws.abs().max() <= 10.0 and draws.min() < -9.9 and draws.max() > 9.9


def test_color_on_gray_keeps_one_channel_and_is_brightness_and_contrast():
    x = images(n=8, c=1)
    out = augment_images(x, ["color"], gen(6))
    assert out.shape == (8, 1, 16, 16)
    # brightness + contrast is affine per image: out = a * x + b (before clamping)
    for i in range(8):
        xi, oi = x[i].flatten(), out[i].flatten()
        inside = (oi > -1) & (oi < 1)
        design = torch.stack([xi[inside], torch.ones(int(inside.sum()))], dim=1)
        solution = torch.linalg.lstsq(design, oi[inside].unsqueeze(1)).solution
        torch.testing.assert_close(design @ solution, oi[inside].unsqueeze(1), atol=1e-5, rtol=0)
        assert 0.79 < float(solution[0]) < 1.21  # the contrast factor


def chroma(x: torch.Tensor) -> torch.Tensor:
    """Mean distance of the channels from their per-pixel mean (0 for gray)."""
    return (x - x.mean(dim=1, keepdim=True)).abs().mean()


def test_color_saturation_only_moves_rgb_away_from_gray():
    gray = torch.full((4, 3, 8, 8), 0.1)  # an achromatic image: saturation has no effect
    out = aug.adjust_color(gray, torch.zeros(4), torch.ones(4), torch.tensor([0.8, 1.0, 1.2, 1.1]))
    torch.testing.assert_close(out, gray)
    x = images(n=1)
    less = aug.adjust_color(x, torch.zeros(1), torch.ones(1), torch.tensor([0.5]))
    assert chroma(less) < chroma(x)


def test_results_keep_the_input_dtype():
    x = images(n=4).double()
    assert augment_images(x, list(AUGMENTS), gen()).dtype == torch.float64


def test_vector_data_is_refused_with_a_clear_error():
    with pytest.raises(GanforgeError, match="data.augment only applies to images"):
        augment_images(torch.zeros(8, 2), ["flip"], gen())


def test_unknown_op_names_the_choices():
    with pytest.raises(GanforgeError, match="flip, crop, rotate, color"):
        augment_images(images(), ["flop"], gen())
