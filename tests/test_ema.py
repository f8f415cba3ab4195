"""EMA of G's weights: the update formula, the ramp-up, buffers, spectral norm, resume."""

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.tasks.ema import EMA, ema_decay


def _linear(seed: int) -> nn.Linear:
    """A tiny Linear with seeded weights."""
    torch.manual_seed(seed)
    return nn.Linear(3, 2)


def _perturb(model: nn.Module, seed: int) -> None:
    """Move every parameter by seeded noise, as an optimizer step would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))


def test_ramp_up_values():
    """Step 0 decays with 0.1, the ramp grows with the step and is capped by decay."""
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.999, 10**6) == 0.999
    assert ema_decay(0.5, 100) == 0.5
    ramp = [ema_decay(0.9999, s) for s in range(0, 5000, 100)]
    assert ramp == sorted(ramp)


@pytest.mark.parametrize("step", [0, 1000])
def test_update_matches_hand_computation(step):
    """p_ema = d * p_ema + (1 - d) * p with d = min(decay, (1 + step) / (10 + step))."""
    source = _linear(0)
    ema = EMA(source, decay=0.99)
    start = {k: v.clone().double() for k, v in ema.model.state_dict().items()}
    _perturb(source, 1)
    ema.update(source, step)
    d = 0.1 if step == 0 else 0.99  # (1 + 1000) / (10 + 1000) > 0.99
    for name, p in source.named_parameters():
        want = d * start[name] + (1 - d) * p.detach().double()
        torch.testing.assert_close(ema.model.state_dict()[name].double(), want, rtol=1e-6, atol=0)
        assert not torch.equal(ema.model.state_dict()[name], p.detach())


def test_copy_is_frozen_in_eval_mode_and_shares_no_storage():
    """The average is a deep copy: eval mode, no grads, separate memory from the source."""
    source = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(source, decay=0.9)
    assert not ema.model.training and source.training
    assert all(not p.requires_grad for p in ema.model.parameters())
    for (_, a), (_, b) in zip(ema.model.state_dict().items(), source.state_dict().items()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    with torch.no_grad():
        source[0].weight.zero_()
    assert not torch.equal(ema.model[0].weight, source[0].weight)
    ema.update(source, 0)  # the source's tensors are read, never aliased
    with torch.no_grad():
        source[0].weight.fill_(5.0)
    assert ema.model[0].weight.abs().max() < 5.0


def test_buffers_are_copied_not_averaged():
    """BatchNorm running statistics and its batch counter are taken from the source."""
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(source, decay=0.9)
    for _ in range(3):
        source(torch.randn(8, 3))
    ema.update(source, 0)
    for name, buf in source.named_buffers():
        assert torch.equal(dict(ema.model.named_buffers())[name], buf)
    assert int(ema.model[1].num_batches_tracked) == 3


def test_own_statistics_are_the_averages_on_the_live_nets_latest_inputs():
    """With own_statistics, BatchNorm statistics come from the average run on G's inputs."""
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    ema = EMA(source, decay=0.5, own_statistics=True)
    _perturb(source, 1)  # the average now differs from the live net
    source(torch.randn(8, 3))  # an earlier training batch: not the one used
    x = torch.randn(8, 3)
    source(x)
    source.eval()(torch.randn(8, 3))  # eval-mode calls (sampling) are not remembered
    source.train()
    expected = _perturbed_average(source, ema)  # what the average is after the update
    before = ema.model[1].running_mean.clone()
    state = torch.get_rng_state()
    ema.update(source, 10**6)
    assert torch.equal(torch.get_rng_state(), state)  # dropout stayed off: no draws
    mean = expected(x).mean(0)  # batch mean of the averaged Linear's outputs on x
    momentum = ema.model[1].momentum
    assert torch.allclose(ema.model[1].running_mean, (1 - momentum) * before + momentum * mean)
    assert not torch.allclose(ema.model[1].running_mean, source[1].running_mean)
    assert not ema.model.training and not ema.model[1].training


def _perturbed_average(source: nn.Sequential, ema: EMA):
    """The averaged first Linear after ema.update(source, huge step), as a function."""
    d = ema.decay
    weight = d * ema.model[0].weight + (1 - d) * source[0].weight
    bias = d * ema.model[0].bias + (1 - d) * source[0].bias
    return lambda x: (x @ weight.T + bias).detach()


def test_own_statistics_without_batchnorm_adds_nothing():
    source = _linear(0)
    ema = EMA(source, decay=0.9, own_statistics=True)
    assert not ema.own_statistics and not source._forward_pre_hooks


def test_spectral_norm_original_averaged_and_u_v_copied():
    """A spectral-norm G: the raw weight is averaged, the power-iteration vectors copied."""
    torch.manual_seed(0)
    source = nn.Sequential(spectral_norm(nn.Linear(3, 4)), nn.ReLU(), nn.Linear(4, 2))
    ema = EMA(source, decay=0.9)
    start = ema.model[0].parametrizations.weight.original.clone()
    source(torch.randn(5, 3))  # train mode: one power iteration moves u and v
    _perturb(source, 2)
    ema.update(source, 1000)
    original = source[0].parametrizations.weight.original.detach()
    torch.testing.assert_close(
        ema.model[0].parametrizations.weight.original, 0.9 * start + 0.1 * original
    )
    mine, theirs = ema.model[0].parametrizations.weight[0], source[0].parametrizations.weight[0]
    assert torch.equal(mine._u, theirs._u) and torch.equal(mine._v, theirs._v)
    out = ema.model(torch.randn(5, 3))  # eval mode: no power iteration, u and v unchanged
    assert torch.isfinite(out).all() and torch.equal(mine._u, theirs._u)


def test_state_dict_round_trip_continues_bitwise():
    """Saving the average, loading it into a fresh EMA and continuing = never stopping."""
    source = nn.Sequential(spectral_norm(nn.Linear(3, 4)), nn.BatchNorm1d(4))
    torch.manual_seed(1)
    steady = EMA(source, decay=0.95)
    for step in range(5):
        source(torch.randn(6, 3))
        _perturb(source, step)
        steady.update(source, step)
    saved = {k: v.clone() for k, v in steady.state_dict().items()}
    resumed = EMA(nn.Sequential(spectral_norm(nn.Linear(3, 4)), nn.BatchNorm1d(4)), decay=0.95)
    resumed.load_state_dict(saved)
    for step in range(5, 10):
        source(torch.randn(6, 3))
        _perturb(source, step)
        steady.update(source, step)
        resumed.update(source, step)
    a, b = steady.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_mismatched_source_is_refused():
    """Updating from a different net says so instead of silently skipping tensors."""
    ema = EMA(nn.Linear(3, 2), decay=0.9)
    with pytest.raises(ValueError, match="same net"):
        ema.update(nn.Sequential(nn.Linear(3, 2)), 0)
