"""DiffAugment: shared parameters, exact geometry, identity at zero width, gradients."""

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.tasks import diffaugment as da


def _gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def _images(n: int = 4, c: int = 3, h: int = 16, w: int = 16, seed: int = 1) -> torch.Tensor:
    """Random float32 images in [-1, 1)."""
    return torch.rand(n, c, h, w, generator=_gen(seed)) * 2 - 1


def test_same_params_same_output_for_every_policy():
    """Applying one draw twice gives identical outputs; x itself is not modified."""
    x = _images()
    before = x.clone()
    p = da.draw(list(da.POLICIES), 4, 16, 16, 3, _gen())
    assert torch.equal(da.apply(x, p), da.apply(x, p))
    assert torch.equal(x, before)
    assert not torch.equal(da.apply(x, p), x)


def test_same_seed_same_params_and_policy_order_irrelevant():
    """Same seed, same parameters; the order policies are listed in does not matter."""
    a = da.draw(["color", "translation", "cutout"], 5, 12, 10, 1, _gen(3))
    b = da.draw(["cutout", "translation", "color"], 5, 12, 10, 1, _gen(3))
    assert (
        a.keys()
        == b.keys()
        == {"shape", "brightness", "saturation", "contrast", "translation", "cutout"}
    )
    for key in a:
        assert torch.equal(a[key], b[key])
    c = da.draw(["color", "translation", "cutout"], 5, 12, 10, 1, _gen(4))
    assert not torch.equal(a["brightness"], c["brightness"])


def test_draw_ranges():
    """Parameters stay in the paper's ranges (brightness doubled for [-1, 1] images)."""
    p = da.draw(list(da.POLICIES), 2000, 32, 24, 3, _gen())
    assert p["brightness"].min() >= -1 and p["brightness"].max() < 1
    assert p["brightness"].min() < -0.9 and p["brightness"].max() > 0.9
    assert p["saturation"].min() >= 0 and p["saturation"].max() < 2
    assert p["contrast"].min() >= 0.5 and p["contrast"].max() < 1.5
    t = p["translation"]
    assert t.dtype == torch.int64 and t.shape == (2000, 2)
    assert set(t[:, 0].tolist()) == set(range(-4, 5))  # 32 / 8
    assert set(t[:, 1].tolist()) == set(range(-3, 4))  # 24 / 8
    c = p["cutout"]
    assert set(c[:, 0].tolist()) == set(range(33))  # even side 16: centres 0..32
    assert set(c[:, 1].tolist()) == set(range(25))


def test_translation_equals_roll_with_zeroed_border():
    """A known shift equals torch.roll with the wrapped-around rows and columns zeroed."""
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).view(2, 1, 5, 6) + 1
    shifts = torch.tensor([[2, -1], [-1, 3]])
    y = da.apply(x, {"translation": shifts})
    for i, (dy, dx) in enumerate(shifts.tolist()):
        want = torch.roll(x[i], shifts=(dy, dx), dims=(1, 2))
        if dy > 0:
            want[:, :dy] = 0
        elif dy < 0:
            want[:, dy:] = 0
        if dx > 0:
            want[:, :, :dx] = 0
        elif dx < 0:
            want[:, :, dx:] = 0
        assert torch.equal(y[i], want)


def test_translation_gradient_is_analytic():
    """d sum(apply(x)) / dx is 1 where the pixel stays inside the image, else 0."""
    x = _images(n=2, c=2, h=6, w=7).requires_grad_(True)
    shifts = torch.tensor([[1, -2], [0, 3]])
    da.apply(x, {"translation": shifts}).sum().backward()
    want = torch.zeros_like(x)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        for h in range(6):
            for w in range(7):
                if 0 <= h + dy < 6 and 0 <= w + dx < 7:
                    want[i, :, h, w] = 1
    assert torch.equal(x.grad, want)


@pytest.mark.parametrize(
    ("centre", "rows", "cols"),
    [((4, 5), (2, 6), (3, 7)), ((0, 0), (0, 2), (0, 2)), ((8, 7), (6, 8), (5, 8))],
)
def test_cutout_zeroes_exactly_the_clipped_square(centre, rows, cols):
    """An 8x8 image loses the 4x4 square centred at `centre`, clipped at the borders."""
    x = torch.ones(1, 3, 8, 8)
    y = da.apply(x, {"cutout": torch.tensor([centre])})
    want = torch.ones(1, 3, 8, 8)
    want[:, :, rows[0] : rows[1], cols[0] : cols[1]] = 0
    assert torch.equal(y, want)


def test_drawn_cutout_is_half_size_square_inside_the_image():
    """Drawn cutouts zero a (H/2 x W/2) rectangle, clipped: a full one away from the borders."""
    n, h, w = 200, 12, 8
    p = da.draw(["cutout"], n, h, w, 1, _gen())
    zeros = da.apply(torch.ones(n, 1, h, w), p)[:, 0] == 0
    for i in range(n):
        rows = zeros[i].any(dim=1).nonzero().flatten()
        cols = zeros[i].any(dim=0).nonzero().flatten()
        assert zeros[i].sum() == len(rows) * len(cols)  # a rectangle
        assert len(rows) <= h // 2 and len(cols) <= w // 2
        cy, cx = p["cutout"][i].tolist()
        if 3 <= cy <= 9 and 2 <= cx <= 6:
            assert (len(rows), len(cols)) == (6, 4)


def test_color_with_zero_width_draws_is_identity():
    """Brightness 0, saturation 1, contrast 1 leave the images (numerically) unchanged."""
    x = _images()
    ones = torch.ones(4, 1, 1, 1)
    p = {"brightness": torch.zeros(4, 1, 1, 1), "saturation": ones, "contrast": ones}
    torch.testing.assert_close(da.apply(x, p), x, rtol=0, atol=1e-6)


def test_color_matches_the_definition():
    """Brightness adds, saturation scales around the channel mean, contrast the image mean."""
    x = _images(n=2)
    b = torch.tensor([0.3, -0.2]).view(2, 1, 1, 1)
    s = torch.tensor([1.5, 0.0]).view(2, 1, 1, 1)
    c = torch.tensor([0.5, 1.2]).view(2, 1, 1, 1)
    y = da.apply(x, {"brightness": b, "saturation": s, "contrast": c})
    want = x + b
    m = want.mean(dim=1, keepdim=True)
    want = m + s * (want - m)
    m = want.mean(dim=(1, 2, 3), keepdim=True)
    want = m + c * (want - m)
    torch.testing.assert_close(y, want)
    assert torch.allclose(y[1], y[1][:1].expand(3, -1, -1))  # saturation 0: grey


def test_gradient_flows_through_all_policies():
    """The full augmentation passes a non-zero gradient back to x."""
    x = _images().requires_grad_(True)
    p = da.draw(list(da.POLICIES), 4, 16, 16, 3, _gen())
    (da.apply(x, p) ** 2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_batch_of_one_float32():
    """Batch size 1, float32, single channel: works and keeps dtype and shape."""
    x = _images(n=1, c=1, h=7, w=9)
    y = da.augment(x, list(da.POLICIES), _gen())
    assert y.dtype == torch.float32 and y.shape == x.shape


def test_empty_policy_is_identity():
    """An empty policy returns x itself and draws nothing."""
    x = _images()
    g = _gen()
    state = g.get_state()
    assert da.augment(x, [], g) is x
    assert da.draw([], 4, 16, 16, 3, g) == {}
    assert da.apply(x, {}) is x
    assert torch.equal(g.get_state(), state)


def test_augment_equals_apply_of_draw():
    """augment(x, policy, g) = apply(x, draw(policy, ...)) with the same generator state."""
    x = _images()
    a = da.augment(x, ["translation", "color"], _gen(5))
    b = da.apply(x, da.draw(["translation", "color"], 4, 16, 16, 3, _gen(5)))
    assert torch.equal(a, b)


def test_unknown_policy_and_shape_mismatch_raise():
    """An unknown policy names the choices; params for another shape are refused."""
    with pytest.raises(GanforgeError, match="translation"):
        da.draw(["translate"], 2, 8, 8, 1, _gen())
    p = da.draw(["cutout"], 2, 8, 8, 1, _gen())
    with pytest.raises(ValueError, match="shape"):
        da.apply(torch.zeros(3, 1, 8, 8), p)
