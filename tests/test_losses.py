"""Adversarial losses: closed forms, numerical stability, gradient signs, registry defaults."""

import dataclasses
import math

import pytest
import torch

from ganforge import losses
from ganforge.errors import GanforgeError
from ganforge.losses import LOSSES

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# Expected values written from the papers' formulas with D(x) = sigmoid(score), plain math.
EXPECTED_D = {
    "minimax": -mean(math.log(sigmoid(r)) for r in REAL)
    - mean(math.log(1 - sigmoid(f)) for f in FAKE),
    "lsgan": 0.5 * mean((r - 1) ** 2 for r in REAL) + 0.5 * mean(f**2 for f in FAKE),
    "wgan": mean(FAKE) - mean(REAL),
    "hinge": mean(max(0.0, 1 - r) for r in REAL) + mean(max(0.0, 1 + f) for f in FAKE),
}
EXPECTED_D["non-saturating"] = EXPECTED_D["minimax"]
EXPECTED_D["wgan-gp"] = EXPECTED_D["wgan"]

EXPECTED_G = {
    "minimax": mean(math.log(1 - sigmoid(f)) for f in FAKE),
    "non-saturating": -mean(math.log(sigmoid(f)) for f in FAKE),
    "lsgan": 0.5 * mean((f - 1) ** 2 for f in FAKE),
    "wgan": -mean(FAKE),
    "wgan-gp": -mean(FAKE),
    "hinge": -mean(FAKE),
}


def scores(values, grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("name", tuple(LOSSES))
def test_d_loss_matches_closed_form(name):
    value = losses.get_loss(name).d_loss(scores(REAL), scores(FAKE))
    assert value.shape == ()
    assert value.item() == pytest.approx(EXPECTED_D[name], rel=1e-12)


@pytest.mark.parametrize("name", tuple(LOSSES))
def test_g_loss_matches_closed_form(name):
    value = losses.get_loss(name).g_loss(scores(FAKE))
    assert value.shape == ()
    assert value.item() == pytest.approx(EXPECTED_G[name], rel=1e-12)


@pytest.mark.parametrize("name", tuple(LOSSES))
@pytest.mark.parametrize("big", [100.0, 1000.0])
def test_losses_and_gradients_finite_on_large_logits(name, big):
    spec = losses.get_loss(name)
    real = torch.tensor([big, -big], requires_grad=True)  # float32, the training dtype
    fake = torch.tensor([-big, big], requires_grad=True)
    d = spec.d_loss(real, fake)
    g = spec.g_loss(fake)
    d.backward()
    assert torch.isfinite(d) and torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    fake.grad = None
    g.backward()
    assert torch.isfinite(g) and torch.isfinite(fake.grad).all()


def test_sigmoid_losses_are_exact_far_in_the_tails():
    # log(sigmoid(-100)) = -100 - log1p(e^-100) ~ -100: a naive log(sigmoid) in float32 gives -inf
    # at -200 and loses the value well before; softplus keeps it.
    fake = torch.tensor([-200.0])
    assert losses.nonsaturating_g_loss(fake).item() == pytest.approx(200.0)
    assert losses.minimax_d_loss(torch.tensor([200.0]), torch.tensor([200.0])).item() == (
        pytest.approx(200.0)
    )


@pytest.mark.parametrize("name", tuple(LOSSES))
def test_g_loss_decreases_as_fake_score_increases(name):
    fake = scores([0.3, -0.2], grad=True)  # below 1, so LSGAN's target is above as well
    losses.get_loss(name).g_loss(fake).backward()
    assert (fake.grad < 0).all()


@pytest.mark.parametrize("name", tuple(LOSSES))
def test_d_loss_pushes_real_up_and_fake_down(name):
    real = scores([0.5], grad=True)  # inside the hinge margin, below LSGAN's target 1
    fake = scores([0.3], grad=True)  # inside the hinge margin, above LSGAN's target 0
    losses.get_loss(name).d_loss(real, fake).backward()
    assert real.grad.item() < 0 < fake.grad.item()


def test_minimax_generator_saturates_and_non_saturating_does_not():
    # When D confidently rejects the fakes (score -> -inf), log(1 - D(G(z))) goes flat.
    fake = scores([-20.0], grad=True)
    losses.minimax_g_loss(fake).backward()
    minimax_grad = fake.grad.item()
    fake.grad = None
    losses.nonsaturating_g_loss(fake).backward()
    assert abs(minimax_grad) < 1e-8  # = -sigmoid(-20) ~ -2e-9
    assert fake.grad.item() == pytest.approx(-1.0, abs=1e-8)  # = -(1 - sigmoid(-20))


def test_losses_accept_any_score_shape():
    patch_scores = torch.zeros(2, 1, 3, 3)  # e.g. a PatchGAN's map: averaged over everything
    for spec in losses.LOSSES.values():
        assert spec.d_loss(patch_scores, patch_scores).shape == ()
        assert spec.g_loss(patch_scores).shape == ()


# ---------------------------------------------------------------------------------------------
# registry


def test_config_takes_its_loss_choices_from_the_registry(monkeypatch):
    from ganforge import config as configlib

    for name, spec in losses.LOSSES.items():
        assert spec.name == name and spec.reference
        assert configlib.from_dict({"loss": {"name": name}}).loss.name == name
    extra = dataclasses.replace(losses.LOSSES["hinge"], name="hinge-2")
    monkeypatch.setitem(losses.LOSSES, "hinge-2", extra)  # one registry line adds a loss
    assert configlib.from_dict({"loss": {"name": "hinge-2"}}).loss.name == "hinge-2"
    monkeypatch.delitem(losses.LOSSES, "hinge-2")
    with pytest.raises(GanforgeError, match="hinge-2"):
        configlib.from_dict({"loss": {"name": "hinge-2"}})


DEFAULTS = {
    "minimax": ("adam", 2e-4, (0.5, 0.999), 1, 0.0, None, "batch"),
    "non-saturating": ("adam", 2e-4, (0.5, 0.999), 1, 0.0, None, "batch"),
    "lsgan": ("adam", 2e-4, (0.5, 0.999), 1, 0.0, None, "batch"),
    "wgan": ("rmsprop", 5e-5, None, 5, 0.0, 0.01, "batch"),
    "wgan-gp": ("adam", 1e-4, (0.0, 0.9), 5, 10.0, None, "layer"),
    "hinge": ("adam", 2e-4, (0.5, 0.999), 1, 0.0, None, "batch"),
}


@pytest.mark.parametrize("name", tuple(LOSSES))
def test_registry_defaults(name):
    optimizer, lr, betas, n_critic, gp_weight, clip, d_norm = DEFAULTS[name]
    spec = losses.get_loss(name)
    assert spec.optimizer == optimizer and spec.lr == lr and spec.n_critic == n_critic
    assert spec.gp_weight == gp_weight and spec.clip == clip and spec.d_norm == d_norm
    if betas is not None:  # RMSprop ignores betas
        assert spec.betas == betas
    assert len(spec.betas) == 2


def test_unknown_loss_lists_choices():
    with pytest.raises(GanforgeError) as info:
        losses.get_loss("wgan_gp")
    message = str(info.value)
    assert "wgan_gp" in message and "Did you mean 'wgan-gp'" in message
    assert all(name in message for name in tuple(LOSSES))


def test_one_sided_label_smoothing_matches_cross_entropy_against_the_target():
    t = 0.9
    value = losses.get_loss("non-saturating").d_loss(scores(REAL), scores(FAKE), real_target=t)
    expected = -mean(t * math.log(sigmoid(r)) + (1 - t) * math.log(1 - sigmoid(r)) for r in REAL)
    expected -= mean(math.log(1 - sigmoid(f)) for f in FAKE)  # fake side keeps target 0
    assert value.item() == pytest.approx(expected, rel=1e-12)
    lsgan = losses.get_loss("lsgan").d_loss(scores(REAL), scores(FAKE), real_target=t)
    assert lsgan.item() == pytest.approx(
        0.5 * mean((r - t) ** 2 for r in REAL) + 0.5 * mean(f**2 for f in FAKE), rel=1e-12
    )


def test_mixed_loss_is_the_weighted_sum():
    mixed = losses.adversarial_loss("non-saturating", [("lsgan", 0.5), ("hinge", 2.0)])
    d = mixed.d_loss(scores(REAL), scores(FAKE)).item()
    g = mixed.g_loss(scores(FAKE)).item()
    assert d == pytest.approx(
        EXPECTED_D["non-saturating"] + 0.5 * EXPECTED_D["lsgan"] + 2 * EXPECTED_D["hinge"]
    )
    assert g == pytest.approx(
        EXPECTED_G["non-saturating"] + 0.5 * EXPECTED_G["lsgan"] + 2 * EXPECTED_G["hinge"]
    )
    assert losses.adversarial_loss("hinge", []) is LOSSES["hinge"]


def test_label_smoothing_and_mix_bad_input():
    from ganforge import config as configlib

    with pytest.raises(GanforgeError, match="real target"):
        configlib.load(None, ["loss.label_smoothing=0.1", "loss.mix=[hinge:1]"])
    with pytest.raises(GanforgeError, match="LOSS:WEIGHT"):
        configlib.load(None, ["loss.mix=[lsgan:-1]"])
    with pytest.raises(GanforgeError, match="without an objective"):
        configlib.load(None, ["loss.g_adversarial=0"])
