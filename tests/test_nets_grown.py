"""Progressive growing and the style-based generator: the layers, the schedule, the nets."""

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge import nets
from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets.equalized import EqualizedConv2d, EqualizedLinear, check_resolution
from ganforge.nets.progressive import (
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    current_resolution,
    growing,
    growth_images,
    growth_stage,
)
from ganforge.nets.style import (
    ModulatedConv2d,
    StyleGenerator,
    check_truncation,
    set_truncation,
)


def test_equalized_linear_scales_weights_by_lr_mul_over_sqrt_fan_in():
    torch.manual_seed(0)
    layer = EqualizedLinear(400, 300, bias_init=0.5, lr_mul=0.01)
    # stored N(0, 1 / lr_mul^2), so that the effective weight is N(0, 1 / fan_in)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.02)
    x = torch.randn(8, 400)
    expected = F.linear(x, layer.weight * (0.01 / 20.0), layer.bias * 0.01)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.allclose(layer.bias * 0.01, torch.full((300,), 0.5))
    # the gradient reaching the stored weight is the effective one's times the same scale
    layer(x).sum().backward()
    effective = torch.ones(8, 300).t() @ x  # d(sum y) / dW_effective
    assert torch.allclose(layer.weight.grad, effective * (0.01 / 20.0), atol=1e-5)


def test_equalized_conv_has_unit_output_variance_on_unit_input():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.02)
    x = torch.randn(16, 64, 12, 12)
    y = conv(x)
    reference = F.conv2d(x, conv.weight / math.sqrt(64 * 9), conv.bias, padding=1)
    assert torch.allclose(y, reference, atol=1e-5)
    assert y[:, :, 1:-1, 1:-1].var().item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("upsample", [False, True])
def test_demodulation_keeps_unit_output_variance_on_unit_input(upsample):
    torch.manual_seed(0)
    conv = ModulatedConv2d(128, 64, 3, w_dim=32, upsample=upsample)
    x, w = torch.randn(32, 128, 8, 8), torch.randn(32, 32)
    with torch.no_grad():  # styles far from 1 and different per sample: demodulation matters
        conv.affine.bias.fill_(3.0)
        conv.affine.weight.mul_(2.0)
        y = conv(x, w)[:, :, 2:-2, 2:-2]  # interior: no zero padding in the receptive field
        per_sample = y.var(dim=(1, 2, 3))
        assert per_sample.min() > 0.85 and per_sample.max() < 1.15
        conv.demodulate = False
        raw = conv(x, w)[:, :, 2:-2, 2:-2].var().item()
    assert raw > 4.0  # the same layer without demodulation is far from unit variance


def test_growth_schedule_fades_each_level_in_then_holds_it():
    p, levels = 100, 3
    assert growth_stage(0, p, levels) == (0, 1.0)
    assert growth_stage(99, p, levels) == (0, 1.0)
    assert growth_stage(100, p, levels) == (1, 0.0)
    assert growth_stage(125, p, levels) == (1, 0.25)
    assert growth_stage(200, p, levels) == (1, 1.0)
    assert growth_stage(550, p, levels) == (3, 0.5)
    assert growth_images(p, levels) == 600
    assert growth_stage(600, p, levels) == (3, 1.0)
    assert growth_stage(10**9, p, levels) == (3, 1.0)


def grown_pair(resolution=32, mbstd=4):
    torch.manual_seed(0)
    G = ProgressiveGenerator(16, 1, resolution, 8, "tanh").eval()
    D = ProgressiveDiscriminator(1, resolution, 8, mbstd).eval()
    return G, D


@pytest.mark.parametrize("level", [1, 2, 3])
def test_fade_in_starts_at_the_previous_resolution_upsampled(level):
    G, D = grown_pair()
    z, x = torch.randn(8, 16), torch.rand(8, 1, 32, 32) * 2 - 1
    G.set_stage(level - 1, 1.0)
    D.set_stage(level - 1, 1.0)
    before_g, before_d = G(z), D(x)
    side = 4 * 2 ** (level - 1)
    # the previous level's image really is at its own resolution, upsampled to 32
    small = before_g[..., :: 32 // side, :: 32 // side]
    assert torch.equal(F.interpolate(small, scale_factor=32 // side), before_g)
    G.set_stage(level, 0.0)
    D.set_stage(level, 0.0)
    assert torch.equal(G(z), before_g)
    assert torch.allclose(D(x), before_d, atol=1e-5)
    G.set_stage(level, 0.5)  # and the new level does change the output once alpha > 0
    assert not torch.allclose(G(z), before_g, atol=1e-3)


def test_current_resolution_and_growing_follow_the_stage():
    G, _ = grown_pair()
    G.set_stage(1, 0.5)
    assert current_resolution(G) == 8 and growing(G)
    G.set_stage(3, 1.0)
    assert current_resolution(G) == 32 and not growing(G)
    assert current_resolution(torch.nn.Linear(2, 2)) is None


@pytest.mark.parametrize("resolution", [28, 48, 8, 512])
def test_resolutions_that_are_not_powers_of_two_in_range_are_refused(resolution):
    with pytest.raises(GanforgeError, match="power of two from 16 to 256.*data.resolution"):
        check_resolution(resolution, "progressive")
    for arch in ("progressive", "style"):
        with pytest.raises(GanforgeError, match=f"{arch}.*power of two"):
            nets.build_nets(ModelConfig(arch=arch), (1, resolution, resolution),
                            d_norm="none", out_act="tanh")


def style_g(**kwargs):
    torch.manual_seed(0)
    options = {"w_dim": 32, "mapping_layers": 2, "mixing": 0.0} | kwargs
    return StyleGenerator(16, 1, 16, 8, "tanh", **options)


def test_truncation_zero_gives_the_mean_style_s_image_for_every_z():
    G = style_g()
    G.train()
    for _ in range(5):  # w_avg follows the mapping's output while training
        G(torch.randn(16, 16))
    assert G.w_avg.abs().sum() > 0
    G.eval()
    z = torch.randn(6, 16)
    free = G(z)
    set_truncation(G, 0.0)
    images = G(z)
    mean_image = G.synthesize(G.w_avg.expand(1, G.num_ws, -1))
    assert (images - mean_image).abs().max() < 1e-5
    assert not torch.allclose(free, images, atol=1e-3)
    set_truncation(G, 0.5)  # psi: halfway between w_avg and w
    w = G.mapping(z)
    halfway = G.synthesize((G.w_avg + 0.5 * (w - G.w_avg)).unsqueeze(1).expand(-1, G.num_ws, -1))
    assert torch.allclose(G(z), halfway, atol=1e-5)


def test_style_mixing_switches_to_a_second_style_at_one_crossover():
    G = style_g(mixing=1.0)
    G.train()
    seen = []
    original = G.synthesize
    G.synthesize = lambda ws: seen.append(ws.detach().clone()) or original(ws)
    z = torch.randn(4, 16)
    crossovers = set()
    for _ in range(12):
        G(z)
        ws, w = seen[-1], G.mapping(z).detach()
        first = [torch.allclose(ws[:, i], w, atol=1e-6) for i in range(G.num_ws)]
        cut = first.index(False)  # layers before the crossover read z's style ...
        assert all(first[:cut]) and not any(first[cut:]) and cut >= 1
        second = ws[:, cut]  # ... and every layer from it on one other style
        assert all(torch.equal(ws[:, i], second) for i in range(cut, G.num_ws))
        crossovers.add(cut)
    assert len(crossovers) > 1  # the crossover is drawn, not fixed
    G.eval()  # never while sampling
    G(z)
    assert all(torch.equal(seen[-1][:, i], G.mapping(z)) for i in range(G.num_ws))


def test_style_mixing_keeps_the_class_label_columns_of_a_conditional_g():
    cfg = ModelConfig(arch="style", z_dim=16, g_width=8, d_width=8, w_dim=32, mapping_layers=2)
    G, _ = nets.build_nets(cfg, (1, 16, 16), d_norm="none", out_act="tanh", num_classes=3,
                           condition="concat")
    base = G.base
    assert base.label_dims == 3 and base.z_dim == 19
    z = torch.cat([torch.randn(5, 16), F.one_hot(torch.arange(5) % 3, 3).float()], dim=1)
    second = base.second_latent(z)
    assert torch.equal(second[:, 16:], z[:, 16:]) and not torch.equal(second[:, :16], z[:, :16])


def test_style_g_in_eval_mode_is_a_function_of_z_alone():
    G = style_g(mixing=0.9)
    with torch.no_grad():  # make the noise inputs matter
        for layer in G.layers:
            layer.noise.strength.fill_(0.5)
    z = torch.randn(4, 16)
    G.eval()
    assert torch.equal(G(z), G(z))
    G.train()
    assert not torch.equal(G(z), G(z))  # fresh noise (and mixing) while training


@pytest.mark.parametrize("psi", [-0.1, 1.5, float("nan")])
def test_truncation_outside_zero_one_is_refused(psi):
    with pytest.raises(GanforgeError, match=r"--truncation must be in \[0, 1\]"):
        check_truncation(psi)


def test_truncation_needs_a_style_based_generator():
    G, _ = grown_pair()
    with pytest.raises(GanforgeError, match="model.arch=style"):
        set_truncation(G, 0.7)


@pytest.mark.parametrize("arch", ["progressive", "style"])
@pytest.mark.parametrize("condition", ["none", "concat", "acgan"])
def test_both_archs_train_a_step_under_every_usable_condition(arch, condition):
    cfg = ModelConfig(arch=arch, z_dim=16, g_width=8, d_width=8, w_dim=32, mapping_layers=2,
                      mbstd_group=4)
    kwargs = {} if condition == "none" else {"num_classes": 3, "condition": condition}
    torch.manual_seed(0)
    G, D = nets.build_nets(cfg, (3, 16, 16), d_norm="none", out_act="tanh", **kwargs)
    z, y = torch.randn(8, 16), torch.randint(0, 3, (8,))
    cond = () if condition == "none" else (y,)
    fake = G(z, *cond)
    assert fake.shape == (8, 3, 16, 16)
    score = D(fake, *cond)
    assert score.shape == (8,) and torch.isfinite(score).all()
    score.mean().backward()
    unused = {n for n, p in G.named_parameters() if p.grad is None}
    # a grown G at its last level no longer reads the lower levels' toRGB layers
    levels = 2 if arch == "progressive" else 0
    assert unused == {f"{prefix}to_rgb.{k}.{w}" for k in range(levels) for w in ("weight", "bias")
                      for prefix in (["base."] if condition != "none" else [""])}


@pytest.mark.parametrize("arch", ["progressive", "style"])
def test_projection_is_refused_with_a_way_out(arch):
    cfg = ModelConfig(arch=arch, z_dim=16, g_width=8, d_width=8, w_dim=32, mapping_layers=2)
    with pytest.raises(GanforgeError, match="BatchNorm.*model.condition=concat"):
        nets.build_nets(cfg, (1, 16, 16), d_norm="none", out_act="tanh", num_classes=3,
                        condition="projection")
