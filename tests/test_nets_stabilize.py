"""D stabilizers (spectral norm, PacGAN, minibatch std/discrimination) and SNGAN ResNets."""

import math

import pytest
import torch
from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import (
    ARCHS,
    ConditionalBatchNorm,
    ConditionalDiscriminator,
    ConditionalGenerator,
    MinibatchDiscrimination,
    MinibatchStd,
    StabilizedDiscriminator,
    build_nets,
    dcgan,
    mlp,
    pack_inputs,
    packed_shape,
    resnet,
    spectral_norm_,
)

K = 3
Z = 8


def model(arch="dcgan", **kw):
    """A tiny model config."""
    tiny = {"z_dim": Z, "g_width": 4, "d_width": 4, "g_hidden": [8, 8], "d_hidden": [8, 8]}
    return ModelConfig(arch=arch, **{**tiny, **kw})


def build(cfg, shape, d_norm="none", seed=0, **kw):
    """Seeded pair with tanh output."""
    torch.manual_seed(seed)
    return build_nets(cfg, shape, d_norm=d_norm, out_act="tanh", **kw)


def weight_matrix(layer):
    """The (out, -1) matrix spectral norm normalizes (transposed convs hold (in, out, ...))."""
    w = layer.weight
    if isinstance(layer, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


def assert_same_state(a, b):
    """Same keys, same values."""
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------------------------------------
# spectral norm


def test_spectral_norm_brings_every_layer_to_unit_sigma():
    """Catches: a layer type skipped, the wrong dim for transposed convs, no normalization."""
    torch.manual_seed(0)
    G, D = build(model("dcgan"), (1, 16, 16))
    layers = []
    for net in (D, G):
        with torch.no_grad():
            for layer in net.modules():
                if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    layer.weight.mul_(10.0)
                    layers.append(layer)
        spectral_norm_(net).train()
    for kind in (nn.Linear, nn.Conv2d, nn.ConvTranspose2d):
        assert any(isinstance(layer, kind) for layer in layers)
    for _ in range(5):
        D(G(torch.randn(4, Z)))
    for layer in layers:
        assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
        sigma = torch.linalg.matrix_norm(weight_matrix(layer).detach(), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05, type(layer).__name__


@pytest.mark.parametrize("setting, g_too", [("none", False), ("d", False), ("both", True)])
def test_spectral_norm_setting_picks_the_nets(setting, g_too):
    """Catches: "d" normalizing G, "both" forgetting G, the head or the projection embedding."""
    G, D = build(model("dcgan", spectral_norm=setting), (1, 16, 16), num_classes=K,
                 condition="projection")
    parametrized = torch.nn.utils.parametrize.is_parametrized
    assert parametrized(D.base.head, "weight") == (setting != "none")
    assert parametrized(D.embed, "weight") == (setting != "none")
    assert parametrized(G.base.net[0], "weight") == g_too
    for layer in G.modules():  # per-class BN scales are not weight matrices: left alone
        if isinstance(layer, ConditionalBatchNorm):
            assert not parametrized(layer.gamma, "weight")


def test_unknown_spectral_norm_setting_is_refused():
    with pytest.raises(GanforgeError, match="model.spectral_norm"):
        build(model(spectral_norm="g"), (1, 16, 16))


# ---------------------------------------------------------------------------------------------
# PacGAN packing


def test_pack_inputs_shapes_and_order():
    """Catches: interleaved packs (sample i with i + N/m) or a wrong shape."""
    x = torch.randn(8, 3, 4, 4)
    packed = pack_inputs(x, 2)
    assert packed.shape == (4, 6, 4, 4)
    torch.testing.assert_close(packed[0, :3], x[0])
    torch.testing.assert_close(packed[0, 3:], x[1])
    torch.testing.assert_close(packed[3, 3:], x[7])
    v = torch.randn(8, 5)
    assert pack_inputs(v, 4).shape == (2, 20)
    torch.testing.assert_close(pack_inputs(v, 4)[1], v[4:].reshape(-1))
    assert pack_inputs(v, 1) is v
    assert packed_shape((3, 4, 4), 2) == (6, 4, 4) and packed_shape((2,), 4) == (8,)
    with pytest.raises(ValueError, match="multiple of model.pack=3"):
        pack_inputs(v, 3)


def test_packed_discriminator_scores_one_per_pack():
    """Catches: D built for the unpacked shape, or packs that mix the wrong samples."""
    _, D = build(model("dcgan", pack=2), (1, 16, 16))
    D.eval()
    x = torch.randn(8, 1, 16, 16)
    scores = D(x)
    assert scores.shape == (4,)
    changed = x.clone()
    changed[2] += 1.0  # sample 2 is in pack 1 only
    after = D(changed)
    assert after[0] == scores[0] and after[1] != scores[1]
    changed = x.clone()
    changed[1] += 1.0  # sample 1 is in pack 0
    assert D(changed)[0] != scores[0]


def test_mlp_pack_four_on_2d_data():
    """Catches: the MLP D not reading the m*D packed vector."""
    G, D = build(model("mlp", pack=4), (2,))
    assert isinstance(D, StabilizedDiscriminator)
    assert D.base.body[1].in_features == 8
    assert D(G(torch.randn(8, Z))).shape == (2,)
    assert D(torch.randn(12, 2)).shape == (3,)


# ---------------------------------------------------------------------------------------------
# minibatch standard deviation


def test_mbstd_hand_computation():
    """Catches: consecutive instead of strided groups, unbiased std, std of the wrong axis."""
    x = torch.tensor([[0.0, 0, 0], [1, 2, 3], [2, 4, 6], [5, 5, 5]])
    out = MinibatchStd(2)(x)
    # groups (StyleGAN layout, i % 2): {0, 2}: |diff| / 2 = 1, 2, 3 -> 2; {1, 3}: 2, 1.5, 1 -> 1.5
    assert out.shape == (4, 4)
    torch.testing.assert_close(out[:, :3], x)
    torch.testing.assert_close(out[:, 3], torch.tensor([2.0, 1.5, 2.0, 1.5]))


def test_mbstd_group_larger_than_batch_and_identical_samples():
    """Catches: a missing epsilon, or a group larger than N not falling back to N."""
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    out = MinibatchStd(8)(x)
    torch.testing.assert_close(out[:, 2], torch.full((3,), math.sqrt(1e-8)))
    y = torch.tensor([[0.0], [2.0]])
    torch.testing.assert_close(MinibatchStd(4)(y)[:, 1], torch.ones(2))  # one group of 2


def test_mbstd_refuses_an_indivisible_batch():
    with pytest.raises(ValueError, match="mbstd_group=3"):
        MinibatchStd(3)(torch.randn(4, 2))


# ---------------------------------------------------------------------------------------------
# minibatch discrimination


def test_minibatch_discrimination_hand_computation():
    """Catches: L2 instead of L1, the self term counted, kernels mixed up, a wrong view."""
    layer = MinibatchDiscrimination(2, kernels=2, kernel_dim=2)
    with torch.no_grad():
        layer.T.copy_(torch.tensor([[1.0, 0, 0, 3], [0, 1, 1, 0]]))
    f = torch.tensor([[0.0, 0], [1, 0], [0, 2]])
    # M: sample 0: b0 (0, 0), b1 (0, 0); 1: b0 (1, 0), b1 (0, 3); 2: b0 (0, 2), b1 (2, 0)
    # L1 distances b0: d01 1, d02 2, d12 3; b1: d01 3, d02 2, d12 5
    e = math.exp
    expected = torch.tensor([
        [e(-1) + e(-2), e(-3) + e(-2)],
        [e(-1) + e(-3), e(-3) + e(-5)],
        [e(-2) + e(-3), e(-2) + e(-5)],
    ])
    out = layer(f)
    assert out.shape == (3, 4)
    torch.testing.assert_close(out[:, :2], f)
    torch.testing.assert_close(out[:, 2:], expected)


def test_minibatch_discrimination_flags_identical_samples():
    """Catches: a sign error in the exponent (far samples would score higher)."""
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(6, kernels=4)
    same = layer.statistic(torch.randn(1, 6).expand(5, 6))
    far = layer.statistic(100.0 * torch.randn(5, 6))
    torch.testing.assert_close(same, torch.full((5, 4), 4.0))
    assert (same > far).all() and far.max() < 0.5


# ---------------------------------------------------------------------------------------------
# StabilizedDiscriminator in build_nets, alone and with the conditional wrappers


def test_stabilized_discriminator_features_and_head():
    """Catches: an extra computed but not fed to the head, or a head of the wrong width."""
    _, D = build(model("dcgan", mbstd_group=2, minibatch_disc=3), (1, 16, 16))
    assert isinstance(D, StabilizedDiscriminator)
    assert not hasattr(D.base, "head")  # no unused parameters
    assert D.feature_dim == D.head.in_features == 4 * 2 * 4 * 4 + 3 + 1
    assert D.init_std == dcgan.INIT_STD and D.head.bias.abs().max() == 0
    x = torch.randn(4, 1, 16, 16)
    assert D.features(x).shape == (4, D.feature_dim)
    D.eval()
    changed = x.clone()
    changed[2] += 1.0  # same mbstd group as sample 0 (i % 2), and in sample 0's minibatch
    assert D(changed)[0] != D(x)[0]


@pytest.mark.parametrize("condition", ["projection", "acgan"])
def test_conditional_wrappers_read_the_stabilized_features(condition):
    """Catches: the conditional D bypassing the wrapper's features/head, or a width mismatch."""
    G, D = build(model("dcgan", mbstd_group=4, minibatch_disc=2), (1, 16, 16),
                 d_norm="batch", num_classes=K, condition=condition)
    assert isinstance(D, ConditionalDiscriminator)
    assert isinstance(D.base, StabilizedDiscriminator)
    y = torch.arange(8) % K
    x = G(torch.randn(8, Z), y)
    assert D(x, y).shape == (8,)
    assert D.features(x, y).shape == (8, D.base.feature_dim)
    if condition == "acgan":
        assert D.class_logits(D.features(x, y)).shape == (8, K)


@pytest.mark.parametrize("condition", ["projection", "acgan"])
def test_per_sample_label_conditions_refuse_packing(condition):
    with pytest.raises(GanforgeError, match=r"model\.condition.*model\.pack") as info:
        build(model("dcgan", pack=2), (1, 16, 16), num_classes=K, condition=condition)
    assert "model.condition=concat" in str(info.value) and "model.pack=1" in str(info.value)


def test_concat_packs_labels_with_their_samples():
    """Catches: labels attached after packing (a shape error) or to the wrong pack."""
    _, D = build(model("dcgan", pack=2), (1, 16, 16), num_classes=K, condition="concat")
    D.eval()
    x, y = torch.randn(8, 1, 16, 16), torch.zeros(8, dtype=torch.long)
    scores = D(x, y)
    assert scores.shape == (4,)
    y2 = y.clone()
    y2[1] = 2
    after = D(x, y2)
    assert after[0] != scores[0] and torch.equal(after[1:], scores[1:])


# ---------------------------------------------------------------------------------------------
# everything off: exactly the nets of before


def _direct(arch, shape):
    """The unconditional pair built by the architecture's own classes, as before stabilizers."""
    if arch == "mlp":
        return mlp.build(Z, shape, [8, 8], [8, 8], "batch", "tanh")
    if arch == "dcgan":
        return dcgan.build(Z, shape, 4, 4, "batch", "tanh")
    return resnet.build(Z, shape, 4, 4, "tanh")


@pytest.mark.parametrize("arch, shape", [
    ("mlp", (2,)), ("dcgan", (1, 28, 28)), ("resnet", (3, 16, 16)),
])
def test_all_off_builds_the_same_nets(arch, shape):
    """Catches: a wrapper, a parametrization or an extra RNG draw when every option is off."""
    G, D = build(model(arch), shape, d_norm="batch")
    after = torch.randn(3)
    torch.manual_seed(0)
    G0, D0 = _direct(arch, shape)
    assert torch.equal(torch.randn(3), after)  # no extra draws
    assert type(G) is type(G0) and type(D) is type(D0)
    assert_same_state(G, G0)
    assert_same_state(D, D0)


def test_all_off_conditional_builds_the_same_nets():
    G, D = build(model("dcgan"), (1, 16, 16), d_norm="batch", num_classes=K,
                 condition="projection")
    torch.manual_seed(0)
    base_g, base_d = dcgan.build(Z, (1, 16, 16), 4, 4, "batch", "tanh")
    G0 = ConditionalGenerator(base_g, K, "projection", dcgan.INIT_STD)
    D0 = ConditionalDiscriminator(base_d, K, "projection", dcgan.INIT_STD)
    assert type(D.base) is dcgan.DCGANDiscriminator
    assert_same_state(G, G0)
    assert_same_state(D, D0)


# ---------------------------------------------------------------------------------------------
# SNGAN ResNets


@pytest.mark.parametrize("resolution, base", [(28, 7), (32, 4), (64, 4)])
def test_resnet_shapes(resolution, base):
    """Catches: a wrong number of levels, D not reaching the base size, non-(N,) scores."""
    G, D = build(model("resnet"), (3, resolution, resolution), d_norm="batch")
    x = G(torch.randn(4, Z))
    assert x.shape == (4, 3, resolution, resolution)
    assert x.abs().max() <= 1.0
    assert D(x).shape == (4,)
    assert D.features(x).shape == (4, D.feature_dim) == (4, 4)
    assert D.body(x).shape[-2:] == (base, base)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in D.modules())
    levels = 2 if resolution == 28 else int(math.log2(resolution)) - 2
    assert sum(isinstance(m, resnet.UpBlock) for m in G.modules()) == levels
    assert sum(isinstance(m, nn.AvgPool2d) for m in D.modules()) == 2 * levels


@pytest.mark.parametrize("resolution", [28, 32])
def test_resnet_with_spectral_norm_and_packing(resolution):
    G, D = build(model("resnet", spectral_norm="d", pack=2), (1, resolution, resolution))
    x = G(torch.randn(4, Z))
    assert x.shape == (4, 1, resolution, resolution)
    assert D(x).shape == (2,)
    assert torch.nn.utils.parametrize.is_parametrized(D.head, "weight")


def test_resnet_blocks_and_registry():
    """Catches: an up block without the upsampled shortcut, or a missing registry entry."""
    assert ARCHS["resnet"].reads == ("g_width", "d_width")
    block = resnet.UpBlock(2, 3)
    assert block(torch.randn(1, 2, 4, 4)).shape == (1, 3, 8, 8)
    plain = resnet.DownBlock(3, 3, down=False)
    assert len(plain.shortcut) == 0  # identity shortcut
    assert plain(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)
    first = resnet.DownBlock(1, 3, first=True)
    assert not isinstance(first.residual[0], nn.ReLU)  # reads the image directly
    assert isinstance(first.shortcut[0], nn.AvgPool2d)


def test_resnet_conditional_projection():
    G, D = build(model("resnet", spectral_norm="both"), (1, 16, 16), num_classes=K,
                 condition="projection")
    y = torch.arange(4) % K
    assert D(G(torch.randn(4, Z), y), y).shape == (4,)


@pytest.mark.parametrize("shape", [(3, 20, 20), (2,)])
def test_resnet_rejects_unsupported_shapes(shape):
    with pytest.raises(GanforgeError, match="ResNet"):
        build(model("resnet"), shape)
