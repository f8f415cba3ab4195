"""Class-conditional nets: concat, projection and AC-GAN wrappers around any architecture."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import (
    CONDITIONS,
    ConditionalBatchNorm,
    ConditionalDiscriminator,
    ConditionalGenerator,
    build_nets,
    dcgan,
    mlp,
)
from ganforge.nets.conditional import attach_labels, bind_labels

K = 3
Z = 16
CASES = [
    ("mlp", (2,)), ("mlp", (1, 28, 28)), ("mlp", (3, 16, 16)),
    ("dcgan", (1, 28, 28)), ("dcgan", (3, 16, 16)),
]


def model(arch, **kw):
    """A tiny model config: two hidden layers so the MLP G has a BatchNorm."""
    tiny = {"z_dim": Z, "g_width": 4, "d_width": 4, "g_hidden": [8, 8], "d_hidden": [8, 8]}
    return ModelConfig(arch=arch, **{**tiny, **kw})


def build(arch, shape, condition, num_classes=K, seed=0, **kw):
    """Seeded conditional pair with tanh output and batch-norm D."""
    torch.manual_seed(seed)
    return build_nets(model(arch, **kw), shape, d_norm="batch", out_act="tanh",
                      num_classes=num_classes, condition=condition)


def labels(n, value=None):
    """(n,) int64 labels: all `value`, or cycling through the classes."""
    if value is None:
        return torch.arange(n) % K
    return torch.full((n,), value, dtype=torch.long)


def perturb_class_params(net):
    """Give every class its own gamma and beta, as training would (init may be identical)."""
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, ConditionalBatchNorm):
                layer.gamma.weight.normal_(1.0, 0.3)
                layer.beta.weight.normal_(0.0, 0.3)


def differ(a, b):
    """True when two tensors are clearly not equal."""
    return (a - b).abs().max().item() > 1e-4


# ---------------------------------------------------------------------------------------------
# shapes and wiring


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("arch, shape", CASES)
def test_shapes(arch, shape, condition):
    G, D = build(arch, shape, condition)
    assert isinstance(G, ConditionalGenerator) and isinstance(D, ConditionalDiscriminator)
    assert G.z_dim == Z and G.num_classes == K and D.num_classes == K
    n, y = 4, labels(4)
    x = G(torch.randn(n, Z), y)
    assert x.shape == (n, *shape) and x.abs().max() <= 1
    h = D.features(x, y)
    assert h.shape == (n, D.feature_dim) and D.feature_dim == D.base.feature_dim
    assert D(x, y).shape == (n,)
    torch.testing.assert_close(D(x, y), D.score(h, y))
    assert D.has_classifier == (condition == "acgan")
    if D.has_classifier:
        assert D.class_logits(h).shape == (n, K)
    else:
        with pytest.raises(RuntimeError, match="acgan"):
            D.class_logits(h)


@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("dcgan", (3, 16, 16))])
def test_concat_bases_read_the_label(arch, shape):
    G, D = build(arch, shape, "concat")
    assert G.base.z_dim == Z + K
    first = next(m for m in D.base.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert (first.in_channels if arch == "dcgan" else first.in_features) == shape[0] + K
    G, D = build(arch, shape, "acgan")
    assert G.base.z_dim == Z + K  # AC-GAN's G reads the label, its D does not
    first = next(m for m in D.base.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert (first.in_channels if arch == "dcgan" else first.in_features) == shape[0]


def test_attach_labels_builds_one_hot_maps():
    x, y = torch.zeros(2, 1, 3, 3), torch.tensor([2, 0])
    out = attach_labels(x, y, 3)
    assert out.shape == (2, 4, 3, 3)
    assert (out[0, 3] == 1).all() and (out[0, 1:3] == 0).all()
    assert (out[1, 1] == 1).all() and (out[1, 2:] == 0).all()
    assert attach_labels(torch.zeros(2, 5), y, 3).tolist()[0] == [0] * 5 + [0, 0, 1]


# ---------------------------------------------------------------------------------------------
# labels actually condition


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("dcgan", (1, 16, 16))])
def test_labels_condition_generator(arch, shape, condition, train):
    G, _ = build(arch, shape, condition)
    perturb_class_params(G)
    G.train(train)
    z = torch.randn(6, Z)
    assert differ(G(z, labels(6, 0)), G(z, labels(6, 1)))
    torch.testing.assert_close(G(z, labels(6, 2)), G(z, labels(6, 2)))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("dcgan", (1, 16, 16))])
def test_labels_condition_discriminator(arch, shape, condition, train):
    _, D = build(arch, shape, condition)
    D.train(train)
    x = torch.randn(6, *shape)
    s0, s1 = D(x, labels(6, 0)), D(x, labels(6, 1))
    if condition == "acgan":  # the label reaches D only through the auxiliary classifier
        torch.testing.assert_close(s0, s1, rtol=0, atol=0)
        h = D.features(x, labels(6, 1))
        torch.testing.assert_close(h, D.features(x, labels(6, 0)), rtol=0, atol=0)
        assert D.class_logits(h).shape == (6, K)
    else:
        assert differ(s0, s1)


def test_projection_generator_differs_per_class_from_init_with_dcgan():
    G, _ = build("dcgan", (1, 16, 16), "projection")  # gamma ~ N(1, 0.02) per class
    z = torch.randn(4, Z)
    assert differ(G(z, labels(4, 0)), G(z, labels(4, 1)))


# ---------------------------------------------------------------------------------------------
# projection: conditional batch norm


@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("dcgan", (1, 28, 28))])
def test_projection_replaces_every_batchnorm(arch, shape):
    plain, _ = build(arch, shape, "none")
    n_bn = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in plain.modules())
    assert n_bn >= 1
    G, _ = build(arch, shape, "projection")
    cbns = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm)]
    assert len(cbns) == n_bn
    bns = [m for m in G.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert {id(m) for m in bns} == {id(c.bn) for c in cbns}  # every BN left is a CBN's core
    assert all(not m.affine for m in bns)
    for c in cbns:
        assert c.gamma.weight.shape == c.beta.weight.shape == (K, c.bn.num_features)
        assert (c.beta.weight == 0).all()
        if arch == "mlp":
            assert (c.gamma.weight == 1).all()
        else:
            assert (c.gamma.weight - 1).abs().max() < 0.15 and c.gamma.weight.std() > 0


@pytest.mark.parametrize("dims", [(6, 5), (6, 5, 3, 3)], ids=["1d", "2d"])
def test_conditional_batchnorm_uses_each_class_gamma_and_beta(dims):
    bn = nn.BatchNorm1d(5) if len(dims) == 2 else nn.BatchNorm2d(5)
    layer = ConditionalBatchNorm(bn, K)
    with torch.no_grad():
        layer.gamma.weight[1] = 2.0
        layer.beta.weight[2] = 0.5
    x, y = 3 * torch.randn(*dims) + 1, torch.tensor([0, 1, 2, 0, 1, 2])
    reduce = [0, *range(2, len(dims))]
    mean = x.mean(reduce, keepdim=True)
    ref = (x - mean) / torch.sqrt(x.var(reduce, unbiased=False, keepdim=True) + bn.eps)
    with bind_labels(layer, y):
        out = layer(x)
    torch.testing.assert_close(out[y == 0], ref[y == 0])
    torch.testing.assert_close(out[y == 1], 2 * ref[y == 1])
    torch.testing.assert_close(out[y == 2], ref[y == 2] + 0.5)


@pytest.mark.parametrize("init_std", [None, 0.02])
def test_conditional_batchnorm_on_codes_is_one_plus_a_linear_map_of_the_code(init_std):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(5)
    layer = ConditionalBatchNorm(bn, 3, init_std, codes=True)
    x, codes = 3 * torch.randn(4, 5, 2, 2) + 1, torch.randn(4, 3)
    ref = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
        x.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps)
    if init_std is None:  # starts as plain BatchNorm: the code's maps are zero
        with bind_labels(layer, codes):
            torch.testing.assert_close(layer(x), ref)
    with torch.no_grad():
        w_gamma, w_beta = torch.randn(5, 3), torch.randn(5, 3)
        layer.gamma.weight.copy_(w_gamma)
        layer.beta.weight.copy_(w_beta)
    with bind_labels(layer, codes):
        out = layer(x)
    gamma = (1 + codes @ w_gamma.T).view(4, 5, 1, 1)  # gamma's bias starts at 1, beta's at 0
    torch.testing.assert_close(out, ref * gamma + (codes @ w_beta.T).view(4, 5, 1, 1))


def test_label_binding_is_cleared_after_forward_and_after_errors():
    G, _ = build("mlp", (2,), "projection")
    cbns = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm)]
    G(torch.randn(4, Z), labels(4))
    assert all(c.labels is None for c in cbns)
    with pytest.raises(RuntimeError, match="bind_labels"):
        cbns[0](torch.randn(4, cbns[0].bn.num_features))
    with pytest.raises(RuntimeError):
        G(torch.randn(4, Z + 1), labels(4))  # fails inside the bound forward
    assert all(c.labels is None for c in cbns)


def test_projection_generator_survives_deepcopy():
    G, _ = build("dcgan", (1, 16, 16), "projection")
    ema = copy.deepcopy(G).eval()
    G.eval()
    z, y = torch.randn(4, Z), labels(4)
    torch.testing.assert_close(ema(z, y), G(z, y))
    assert all(c.labels is None for c in G.modules() if isinstance(c, ConditionalBatchNorm))


# ---------------------------------------------------------------------------------------------
# unconditional path: bitwise what it always was


@pytest.mark.parametrize("kwargs", [{}, {"num_classes": 10, "condition": "none"}])
@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_unconditional_path_is_bitwise_unchanged(arch, kwargs):
    cfg, shape = model(arch), (1, 16, 16)
    torch.manual_seed(7)
    G, D = build_nets(cfg, shape, d_norm="layer", out_act="tanh", **kwargs)
    after = torch.get_rng_state()
    torch.manual_seed(7)
    if arch == "mlp":
        G0, D0 = mlp.build(Z, shape, cfg.g_hidden, cfg.d_hidden, "layer", "tanh", cfg.g_norm)
    else:
        G0, D0 = dcgan.build(Z, shape, cfg.g_width, cfg.d_width, "layer", "tanh")
    assert torch.equal(after, torch.get_rng_state())  # same number of draws
    for net, ref in ((G, G0), (D, D0)):
        assert type(net) is type(ref)
        assert list(net.state_dict()) == list(ref.state_dict())
        for a, b in zip(net.state_dict().values(), ref.state_dict().values(), strict=True):
            assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------
# gradients and initialization of the new layers


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("dcgan", (1, 16, 16))])
def test_gradients_reach_the_conditioning_parameters(arch, shape, condition):
    G, D = build(arch, shape, condition)
    y = labels(6)
    x = G(torch.randn(6, Z), y)
    h = D.features(x, y)
    loss = D.score(h, y).square().mean()
    if D.has_classifier:
        loss = loss + F.cross_entropy(D.class_logits(h), y)
    loss.backward()
    new = []
    if condition == "projection":
        cbns = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm)]
        new = [D.embed.weight] + [p for m in cbns for p in (m.gamma.weight, m.beta.weight)]
    elif condition == "acgan":
        new = [D.classifier.weight, D.classifier.bias]
    for p in new:
        assert p.grad is not None and p.grad.abs().sum() > 0
    if condition != "projection":  # G's weights on the one-hot label inputs learn
        first = next(m for m in G.base.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d)))
        label_w = first.weight[:, Z:] if arch == "mlp" else first.weight[Z:]
        label_g = first.weight.grad[:, Z:] if arch == "mlp" else first.weight.grad[Z:]
        assert label_w.numel() > 0 and label_g.abs().sum() > 0


def test_dcgan_init_of_new_layers():
    _, D = build("dcgan", (1, 16, 16), "acgan", num_classes=10, d_width=8)
    assert D.classifier.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert (D.classifier.bias == 0).all()
    _, D = build("dcgan", (1, 16, 16), "projection", num_classes=10, d_width=8)
    assert D.embed.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_mlp_projection_embedding_is_xavier_uniform():
    _, D = build("mlp", (2,), "projection", num_classes=10, d_hidden=[64, 256])
    bound = (6 / (10 + 256)) ** 0.5
    assert D.embed.weight.abs().max() <= bound and D.embed.weight.abs().max() > 0.9 * bound


# ---------------------------------------------------------------------------------------------
# errors a user can cause


def test_unknown_condition_lists_choices():
    with pytest.raises(GanforgeError, match="'model.condition'.*'film'.*none, concat, "
                                            "projection, acgan"):
        build("mlp", (2,), "film")


@pytest.mark.parametrize("num_classes", [0, 1])
@pytest.mark.parametrize("condition", CONDITIONS)
def test_too_few_classes(condition, num_classes):
    with pytest.raises(GanforgeError, match=f"model.condition.*num_classes={num_classes}"):
        build("mlp", (2,), condition, num_classes=num_classes)


def test_projection_needs_batchnorm_in_the_generator():
    with pytest.raises(GanforgeError) as info:
        build("mlp", (2,), "projection", g_norm="none")
    message = str(info.value)
    for part in ("'model.condition'", "BatchNorm", "model.g_norm=batch",
                 "model.condition=concat"):
        assert part in message
