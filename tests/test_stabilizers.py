"""Stabilizers inside the training step: each one's effect, exact resume with all of them on,
and the combinations that must be refused."""

import json

import pytest
import torch
from safetensors.torch import save_file
from tests.test_training import TINY_DCGAN, TINY_MLP, assert_resume_is_exact, newest_tensors

from ganforge import config as configlib
from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.fileio import file_digest
from ganforge.tasks import get
from ganforge.tasks.base import resolve_hyper
from ganforge.tasks.dview import DView, instance_noise_std
from ganforge.training import checkpoint
from ganforge.training.generator import load_run
from ganforge.training.logger import read_metrics
from ganforge.training.loop import resume, train

EVERY_MLP_STABILIZER = [
    "model.pack=2", "model.mbstd_group=4", "model.minibatch_disc=8", "model.spectral_norm=both",
    "loss.r1_gamma=1", "loss.r1_every=2", "loss.dragan_weight=1", "loss.feature_matching=0.5",
    "loss.mix=[lsgan:0.5]", "loss.label_smoothing=0.1", "optim.preset=ttur",
    "stabilize.instance_noise=0.1", "stabilize.instance_noise_steps=8", "stabilize.replay=0.5", "stabilize.replay_size=96",
    "stabilize.ema=0.99", "stabilize.d_skip_above=0.97", "stabilize.g_skip_below=0.03",
]
EVERY_IMAGE_STABILIZER = [
    "model.mbstd_group=4", "model.spectral_norm=d", "loss.r1_gamma=1", "loss.r1_every=3",
    "stabilize.diffaugment=[color,translation,cutout]", "data.augment=[flip,crop,rotate,color]",
    "stabilize.instance_noise=0.05", "stabilize.instance_noise_steps=8",
    "stabilize.replay=0.25", "stabilize.replay_size=40",
    "stabilize.ema=0.9", "loss.feature_matching=1", "loss.label_smoothing=0.1",
]


@pytest.mark.parametrize(
    "base, extra",
    [
        (TINY_MLP, EVERY_MLP_STABILIZER),
        (TINY_DCGAN, EVERY_IMAGE_STABILIZER),
        (TINY_DCGAN, ["task.name=conditional", "model.condition=acgan", *EVERY_IMAGE_STABILIZER]),
    ],
    ids=["mlp-all", "dcgan-all", "acgan-all"],
)
def test_resume_is_bitwise_exact_with_every_stabilizer_on(tmp_path, base, extra):
    tensors = assert_resume_is_exact(tmp_path, base + extra)
    # the replay buffer and the EMA generator are part of the checkpoint
    assert "task.replay.filled" in tensors and int(tensors["task.replay.filled"]) > 0
    assert any(k.startswith("G_ema.") for k in tensors)


def tiny_task(*sets):
    config = configlib.load(None, [*TINY_MLP, *sets])
    dataset = build_dataset(config.data)
    torch.manual_seed(0)
    task = get(config.task.name)(config, dataset.info(), torch.device("cpu"),
                                  torch.Generator().manual_seed(1))
    batch = {"x": dataset.to_model(dataset.x[:64])}
    return task, batch


def test_lazy_r1_and_dragan_on_a_linear_d_match_hand_computation():
    # d_hidden=[] makes D a single Linear(2, 1): grad_x D = w for every input
    task, batch = tiny_task("model.d_hidden=[]", "loss.r1_gamma=4", "loss.r1_every=3",
                            "loss.dragan_weight=2")
    seen = [task.d_step(batch, keep_fake_for_g=False) for _ in range(4)]
    assert [("r1" in s) for s in seen] == [True, False, False, True]  # D updates 0 and 3
    task2, _ = tiny_task("model.d_hidden=[]", "loss.r1_gamma=4", "loss.r1_every=3")
    w0 = task2.D.head.weight.detach().flatten().clone()
    first = task2.d_step(batch, keep_fake_for_g=False)
    assert first["r1"].item() == pytest.approx(4 / 2 * 3 * w0.pow(2).sum().item(), rel=1e-5)
    task3, _ = tiny_task("model.d_hidden=[]", "loss.dragan_weight=2")
    w0 = task3.D.head.weight.detach().flatten().clone()
    stats = task3.d_step(batch, keep_fake_for_g=False)
    assert stats["dragan"].item() == pytest.approx(2 * (w0.norm().item() - 1) ** 2, rel=1e-5)


def test_feature_matching_alone_is_g_s_whole_loss():
    task, batch = tiny_task("loss.g_adversarial=0", "loss.feature_matching=1")
    task.d_step(batch, keep_fake_for_g=True)
    stats = task.g_step(batch)
    assert stats["g_loss"].item() == pytest.approx(stats["feature_matching"].item())
    assert stats["feature_matching"].item() > 0


def test_label_smoothing_reaches_the_d_loss():
    plain, batch = tiny_task()
    smooth, _ = tiny_task("loss.label_smoothing=0.2")
    a = plain.d_step(batch, keep_fake_for_g=False)
    b = smooth.d_step(batch, keep_fake_for_g=False)
    assert b["d_real"].item() == a["d_real"].item()  # same nets, same noise, same scores
    # t sp(-r) + (1 - t) sp(r) - sp(-r) = (1 - t) r, since sp(r) - sp(-r) = r
    difference = (b["d_loss"] - a["d_loss"]).item()
    assert difference == pytest.approx(0.2 * a["d_real"].item(), rel=1e-4, abs=1e-7)


def test_balance_rules_skip_and_count_every_skip(tmp_path):
    config = configlib.load(None, [*TINY_MLP, "train.steps=6", "stabilize.d_skip_above=0",
                                   "loss.name=hinge"])
    train(config, tmp_path / "d", progress=False)
    rows = [r for r in read_metrics(tmp_path / "d" / "metrics.jsonl") if "d_skips" in r]
    assert [r["d_skips"] for r in rows] == [2, 4, 6]  # D was right on some input every step
    tensors = newest_tensors(tmp_path / "d")
    start = configlib.load(None, [*TINY_MLP, "train.steps=1", "stabilize.d_skip_above=0",
                                  "loss.name=hinge", "train.checkpoint_every=1"])
    train(start, tmp_path / "d1", progress=False)
    d_after_one = newest_tensors(tmp_path / "d1")
    for key in (k for k in tensors if k.startswith("D.")):
        assert torch.equal(tensors[key], d_after_one[key]), key  # D never stepped
    config = configlib.load(None, [*TINY_MLP, "train.steps=4", "stabilize.g_skip_below=1"])
    train(config, tmp_path / "g", progress=False)
    assert read_metrics(tmp_path / "g" / "metrics.jsonl")[-1]["g_skips"] == 4


def test_ema_generator_is_what_users_sample(tmp_path):
    config = configlib.load(None, [*TINY_MLP, "train.steps=6", "stabilize.ema=0.9"])
    train(config, tmp_path / "run", progress=False)
    tensors = newest_tensors(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    state = loaded.sampler.G.state_dict()
    assert all(torch.equal(v, tensors[f"G_ema.{k}"]) for k, v in state.items())
    assert not all(torch.equal(v, tensors[f"G.{k}"]) for k, v in state.items())


def test_instance_noise_schedule_anneals_linearly_to_zero():
    assert instance_noise_std(0.2, 0, 100) == pytest.approx(0.2)
    assert instance_noise_std(0.2, 50, 100) == pytest.approx(0.1)
    assert instance_noise_std(0.2, 100, 100) == 0.0
    assert instance_noise_std(0.2, 150, 100) == 0.0
    assert instance_noise_std(0.0, 0, 100) == 0.0


def test_one_view_augments_real_and_fake_alike_and_noise_has_the_scheduled_std():
    gen = torch.Generator().manual_seed(0)
    view = DView(["translation", "cutout"], 0.0, 10, gen).draw(torch.zeros(4, 1, 8, 8), step=0)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(view(x), view(x.clone()))  # the same parameters for both sides
    assert not torch.equal(view(x), x)
    noisy = DView([], 0.5, 100, gen).draw(torch.zeros(1), step=50)
    sample = noisy(torch.zeros(20000, 2))
    assert sample.std().item() == pytest.approx(0.25, rel=0.03)


def test_ttur_preset_fills_unset_learning_rates_only():
    config = configlib.load(None, ["optim.preset=ttur"])
    assert (resolve_hyper(config, "image").g_lr, resolve_hyper(config, "image").d_lr) == (
        1e-4, 4e-4)
    config = configlib.load(None, ["optim.preset=ttur", "optim.g_lr=3e-4"])
    assert resolve_hyper(config, "image").g_lr == 3e-4


@pytest.mark.parametrize(
    "sets, message",
    [
        (["model.pack=3"], "multiple of it"),
        (["stabilize.diffaugment=[color]"], "augments images"),
        (["data.augment=[flip]"], "transforms images"),
        (["stabilize.diffaugment=[colour]"], "Did you mean 'color'"),
        (["loss.name=wgan", "stabilize.d_skip_above=0.9"], "decision threshold"),
        (["stabilize.d_skip_above=0.5", "stabilize.g_skip_below=0.6"], "must be below"),
        (["model.mbstd_group=5"], "must divide"),
    ],
)
def test_impossible_combinations_are_refused_before_training(tmp_path, sets, message):
    with pytest.raises(GanforgeError, match=message):
        config = configlib.load(None, [*TINY_MLP, *sets])
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_checkpoints_from_before_the_stabilizers_still_resume(tmp_path):
    """A checkpoint written before this change (no task state, no augment RNG, no stabilizer
    keys in its config) resumes, with the counters starting from zero."""
    train(configlib.load(None, [*TINY_MLP, "train.steps=4"]), tmp_path / "run", progress=False)
    json_path = checkpoint.resolve(tmp_path / "run")
    tensors, meta = checkpoint.load(json_path)
    assert "task.counters" in tensors and "rng.augment" in tensors
    old = {k: v for k, v in tensors.items() if not k.startswith(("task.", "rng.augment"))}
    tensor_path = json_path.with_name(meta["tensors_file"])
    save_file(old, str(tensor_path))
    meta["tensors_sha256"] = file_digest(tensor_path)
    del meta["most_modes"], meta["config"]["stabilize"]
    for key in ("spectral_norm", "pack", "mbstd_group", "minibatch_disc"):
        del meta["config"]["model"][key]
    json_path.write_text(json.dumps(meta))
    result = resume(tmp_path / "run", ["train.steps=6"], progress=False)
    assert result.step == 6
    counters = newest_tensors(tmp_path / "run")["task.counters"].tolist()
    assert counters == [2, 2, 0, 0]  # d_steps, g_updates since the resume


@pytest.mark.parametrize("change", ["model.pack=2", "model.spectral_norm=d", "stabilize.ema=0.9"])
def test_resume_that_changes_d_s_shape_or_ema_is_refused(tmp_path, change):
    train(configlib.load(None, [*TINY_MLP, "train.steps=2"]), tmp_path / "run", progress=False)
    with pytest.raises(GanforgeError, match="Cannot resume"):
        resume(tmp_path / "run", ["train.steps=4", change], progress=False)
