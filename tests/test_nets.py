"""Architectures: shapes, features, norms, DCGAN init and sizes, errors a user can cause."""

import pytest
import torch
from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import build_nets

SIZES = "16, 28, 32, 64, 128, 256"


def model(arch="dcgan", width=8, **kw):
    return ModelConfig(arch=arch, z_dim=16, g_width=width, d_width=width, **kw)


def build(cfg, shape, d_norm="batch", out_act="tanh", seed=0):
    torch.manual_seed(seed)
    return build_nets(cfg, shape, d_norm=d_norm, out_act=out_act)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def check_pair(G, D, shape, n=3, feature_dim=None):
    z = torch.randn(n, G.z_dim)
    x = G(z)
    assert x.shape == (n, *shape)
    assert D(x).shape == (n,)
    features = D.features(x)
    assert features.dim() == 2 and features.shape[0] == n
    if feature_dim is not None:
        assert features.shape[1] == feature_dim
    torch.testing.assert_close(D(x), D.head(features).squeeze(1))  # forward = head(features)
    return x


# ---------------------------------------------------------------------------------------------
# MLP


@pytest.mark.parametrize("shape", [(2,), (1, 28, 28)], ids=["vector-2d", "image-1x28x28"])
@pytest.mark.parametrize("d_norm", ["batch", "layer", "none"])
def test_mlp_shapes(shape, d_norm):
    cfg = model("mlp", g_hidden=[32, 64], d_hidden=[64, 16])
    G, D = build(cfg, shape, d_norm=d_norm, out_act="none")
    assert G.z_dim == 16
    check_pair(G, D, shape, feature_dim=16)


def test_mlp_default_widths_and_norm_placement():
    G, D = build(model("mlp"), (2,), d_norm="layer", out_act="none")
    g_linears = [m.out_features for m in G.modules() if isinstance(m, nn.Linear)]
    d_linears = [m.out_features for m in D.modules() if isinstance(m, nn.Linear)]
    assert g_linears == [256, 512, 1024, 2] and d_linears == [512, 256, 1]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 2  # none on the first
    assert sum(isinstance(m, nn.LayerNorm) for m in D.modules()) == 1  # none at D's input
    assert not any(isinstance(m, nn.Tanh) for m in G.modules())


def test_mlp_tanh_output_is_bounded():
    G, _ = build(model("mlp", g_hidden=[8]), (1, 4, 4))
    x = G(100 * torch.randn(5, 16))
    assert x.abs().max() <= 1


# ---------------------------------------------------------------------------------------------
# DCGAN


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [16, 28, 32, 64])
def test_dcgan_shapes(resolution, channels):
    G, D = build(model(width=8), (channels, resolution, resolution))
    base = 7 if resolution == 28 else 4
    levels = 2 if resolution == 28 else resolution.bit_length() - 3
    base_channels = 8 * min(2 ** (levels - 1), 8)
    x = check_pair(G, D, (channels, resolution, resolution), feature_dim=base_channels * base**2)
    assert x.abs().max() <= 1  # tanh


@pytest.mark.parametrize("resolution", [128, 256])
def test_dcgan_large_resolutions_shape_only(resolution):
    G, D = build(model(width=2), (3, resolution, resolution), d_norm="layer")
    check_pair(G, D, (3, resolution, resolution), n=2, feature_dim=16 * 16)  # 8x width, 4x4


def test_dcgan_64_matches_the_paper_architecture():
    G, D = build_nets(ModelConfig(), (3, 64, 64), d_norm="batch", out_act="tanh")
    # Radford et al. 2016, fig. 1: 100 -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3
    g_convs = [(m.in_channels, m.out_channels) for m in G.modules()
               if isinstance(m, nn.ConvTranspose2d)]
    assert g_convs == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    g_expected = (100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16
                  + 64 * 3 * 16 + 3 + 2 * (512 + 256 + 128 + 64))
    assert n_params(G) == g_expected  # 3,576,707
    d_convs = [(m.in_channels, m.out_channels) for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert d_convs == [(3, 64), (64, 128), (128, 256), (256, 512)]
    assert 2.5e6 < n_params(D) < 3e6


def test_dcgan_28_width_64_parameter_counts():
    G, D = build_nets(ModelConfig(), (1, 28, 28), d_norm="batch", out_act="tanh")
    # 100 -> 7x7x128 -> 14x14x64 -> 28x28x1
    assert n_params(G) == 100 * 128 * 49 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 16 + 1
    assert n_params(D) == 64 * 16 + 64 + 64 * 128 * 16 + 2 * 128 + 128 * 49 + 1


def test_dcgan_width_is_capped_at_eight_times():
    G, D = build(model(width=2), (3, 256, 256))
    assert max(m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)) == 16
    assert max(m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)) == 16


@pytest.mark.parametrize("d_norm, norm_type", [
    ("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm), ("none", None)
])
def test_dcgan_discriminator_norms(d_norm, norm_type):
    _, D = build(model(), (1, 32, 32), d_norm=d_norm)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in D.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert isinstance(D.body[1], nn.LeakyReLU)  # no norm right after the first conv
    assert len(norms) == (0 if norm_type is None else len(convs) - 1)
    assert all(isinstance(m, norm_type) for m in norms)
    if d_norm == "layer":
        assert all(m.num_groups == 1 for m in norms)  # statistics over (C, H, W)


def test_dcgan_init_statistics():
    G, D = build_nets(ModelConfig(), (3, 64, 64), d_norm="batch", out_act="tanh")
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 100_000:
                assert m.weight.mean().abs() < 1e-3
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.05)
            if isinstance(m, nn.BatchNorm2d) and m.num_features >= 256:
                assert m.weight.mean().item() == pytest.approx(1.0, abs=0.01)
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.25)
                assert (m.bias == 0).all()


def test_dcgan_out_act_none_is_unbounded():
    G, _ = build(model(), (1, 16, 16), out_act="none")
    assert isinstance(G.net[-1], nn.Identity)


# ---------------------------------------------------------------------------------------------
# batch independence and determinism


@pytest.mark.parametrize("arch, shape", [("dcgan", (3, 16, 16)), ("mlp", (2,))])
@pytest.mark.parametrize("d_norm", ["batch", "layer", "none"])
def test_discriminator_batch_independent_in_eval(arch, shape, d_norm):
    cfg = model(arch, g_hidden=[16], d_hidden=[16, 16])
    _, D = build(cfg, shape, d_norm=d_norm)
    x = torch.randn(6, *shape)
    D.train()
    D(x)  # move BatchNorm running stats away from the init
    D.eval()
    torch.testing.assert_close(D(x)[:2], D(x[:2]))
    if d_norm != "batch":  # layer and none never mix samples, as a gradient penalty needs
        D.train()
        torch.testing.assert_close(D(x)[:2], D(x[:2]))


def _state(G, D):
    """Every tensor of both nets (parameters and buffers), keyed 'G.name' / 'D.name'."""
    return {f"{tag}.{k}": v for tag, net in (("G", G), ("D", D)) for k, v in
            net.state_dict().items()}


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_same_seed_same_weights(arch):
    cfg = model(arch, g_hidden=[8], d_hidden=[8])
    a = _state(*build(cfg, (1, 16, 16), seed=3))
    torch.randn(100)  # the global RNG moves on between the builds; the seed alone decides
    b = _state(*build(cfg, (1, 16, 16), seed=3))
    assert a.keys() == b.keys() and any(k.startswith("D.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key  # G and D: every parameter and buffer
    other = _state(*build(cfg, (1, 16, 16), seed=4))
    drawn = [key for key in a if key.endswith("weight") and a[key].dim() >= 2]  # conv / linear
    assert {k[0] for k in drawn} == {"G", "D"}
    for key in drawn:  # another seed gives other random weights, in G and in D alike
        assert not torch.equal(a[key], other[key]), key


# ---------------------------------------------------------------------------------------------
# errors a user can cause


@pytest.mark.parametrize("size", [100, 20, 512])
def test_dcgan_unsupported_size(size):
    with pytest.raises(GanforgeError) as info:
        build(model(), (3, size, size))
    message = str(info.value)
    assert str(size) in message and SIZES in message and "data.resolution" in message


@pytest.mark.parametrize("shape", [(2,), (3, 32, 16)], ids=["vector", "not-square"])
def test_dcgan_rejects_non_square_images(shape):
    with pytest.raises(GanforgeError) as info:
        build(model(), shape)
    message = str(info.value)
    assert str(shape) in message and SIZES in message and "data.resolution" in message


def test_unknown_arch_lists_choices():
    with pytest.raises(GanforgeError, match="model.arch.*biggan.*mlp, dcgan, resnet"):
        build(model("biggan"), (3, 32, 32))


@pytest.mark.parametrize("key, kwargs", [
    ("model.d_norm", {"d_norm": "auto"}), ("model.out_act", {"out_act": "sigmoid"})
])
def test_unresolved_or_bad_choices(key, kwargs):
    with pytest.raises(GanforgeError, match=key):
        build(model(), (3, 32, 32), **kwargs)
