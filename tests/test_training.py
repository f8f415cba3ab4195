"""The training loop end to end: exact resume, checkpoint safety, divergence, run-dir rules."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import config as configlib
from ganforge.errors import GanforgeError
from ganforge.training import checkpoint
from ganforge.training.loop import resume, train

TINY_DCGAN = [
    "data.source=fashion-mnist",
    "data.limit=256",
    "data.resolution=16",
    "model.arch=dcgan",
    "model.z_dim=16",
    "model.g_width=8",
    "model.d_width=8",
    "train.batch_size=32",
    "train.sample_every=3",
    "train.checkpoint_every=2",
    "log.every=1",
    "log.progress=false",
]
TINY_MLP = [
    "data.source=ring8",
    "model.arch=mlp",
    "model.z_dim=8",
    "model.g_hidden=[32, 32]",
    "model.d_hidden=[32, 32]",
    "train.batch_size=64",
    "train.sample_every=5",
    "train.checkpoint_every=4",
    "log.every=2",
    "log.progress=false",
]


def newest_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = checkpoint.load(checkpoint.resolve(run_dir))
    return tensors


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ after resume: {different[:5]}"


@pytest.mark.parametrize(
    "base, extra",
    [
        (TINY_MLP, ["loss.name=non-saturating"]),
        (TINY_DCGAN, ["loss.name=wgan-gp", "optim.n_critic=2"]),  # GP draws random eps
        (TINY_DCGAN, ["loss.name=wgan", "train.d_warmup_steps=2"]),  # clipping + warm-up
    ],
    ids=["mlp-ns", "dcgan-wgan-gp", "dcgan-wgan-warmup"],
)
def test_resume_is_bitwise_exact(tmp_path, base, extra):
    assert_resume_is_exact(tmp_path, base + extra)


def assert_resume_is_exact(tmp_path: Path, sets: list[str], n: int = 5) -> dict:
    """Train 2n steps straight and n + n with a resume: same tensors; returns the resumed ones."""
    straight = configlib.load(None, sets + [f"train.steps={2 * n}"])
    train(straight, tmp_path / "straight", progress=False)
    first = configlib.load(None, sets + [f"train.steps={n}"])
    train(first, tmp_path / "split", progress=False)
    result = resume(tmp_path / "split", [f"train.steps={2 * n}"], progress=False)
    assert result.step == 2 * n
    resumed = newest_tensors(tmp_path / "split")
    assert_same_state(newest_tensors(tmp_path / "straight"), resumed)
    # the log has each step once, in order, across the resume
    from ganforge.training.logger import read_metrics

    steps = [r["step"] for r in read_metrics(tmp_path / "split" / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 2 * n
    return resumed


def test_run_dir_layout_and_keep_last(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=12", "train.keep_checkpoints=2"])
    result = train(config, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "losses.png").is_file()
    assert configlib.load(run / "config.yaml") == config
    kept = [step for step, _ in checkpoint.list_checkpoints(run / "checkpoints")]
    assert kept == [8, 12]
    assert max(p.name for p in (run / "samples").iterdir()) == "step-00000012.png"
    assert result.checkpoint.name == "step-00000012.json"
    from ganforge.training.logger import read_metrics

    row = read_metrics(run / "metrics.jsonl")[-1]
    for key in ("step", "d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm",
                "img_per_s"):
        assert key in row, key


def test_same_seed_same_weights(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=4"])
    train(config, tmp_path / "a", progress=False)
    train(config, tmp_path / "b", progress=False)
    assert_same_state(newest_tensors(tmp_path / "a"), newest_tensors(tmp_path / "b"))


def test_torn_checkpoint_is_ignored_and_damaged_one_refused(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=8"])
    train(config, tmp_path / "run", progress=False)
    ckpts = tmp_path / "run" / "checkpoints"
    # a crash after the tensors but before the JSON: the pair is not a checkpoint
    (ckpts / "step-00000009.safetensors").write_bytes(b"partial")
    assert checkpoint.resolve(tmp_path / "run").name == "step-00000008.json"
    newest = ckpts / "step-00000008.safetensors"
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(GanforgeError, match="damaged"):
        resume(tmp_path / "run", ["train.steps=10"], progress=False)


def test_existing_run_dir_is_refused_unless_overwrite(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=2"])
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(GanforgeError, match="already holds a run"):
        train(config, tmp_path / "run", progress=False)
    marker = tmp_path / "run" / "notes.txt"
    marker.write_text("mine")
    train(config, tmp_path / "run", overwrite=True, progress=False)
    assert marker.read_text() == "mine"  # only ganforge's own files are replaced


def test_failed_start_leaves_no_run_behind(tmp_path):
    config = configlib.load(None, TINY_MLP + ["data.limit=100", "train.batch_size=1000"])
    with pytest.raises(GanforgeError, match="batch_size"):  # more than the data holds
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    fixed = configlib.load(None, TINY_MLP + ["train.steps=1"])
    train(fixed, tmp_path / "run", progress=False)  # not refused as 'already holds a run'


def test_resume_with_other_architecture_is_refused(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=2"])
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(GanforgeError, match="model.g_hidden"):
        resume(tmp_path / "run", ["train.steps=4", "model.g_hidden=[64, 64]"], progress=False)


def poison_g_step(monkeypatch, at_call: int, spoil) -> None:
    """Make the unconditional task's g_step call `spoil(task, stats)` on its at_call-th call."""
    from ganforge.tasks import unconditional

    original = unconditional.UnconditionalTask.g_step
    calls = {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        stats = original(self, batch)
        if calls["n"] == at_call:
            spoil(self, stats)
        return stats

    monkeypatch.setattr(unconditional.UnconditionalTask, "g_step", poisoned)


def test_divergence_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    config = configlib.load(None, TINY_MLP + ["train.steps=20"])
    poison_g_step(monkeypatch, 7, lambda task, stats: stats.update(g_loss=torch.tensor(np.nan)))
    with pytest.raises(GanforgeError) as err:
        train(config, tmp_path / "run", progress=False)
    message = str(err.value)
    assert "step 7" in message and "step-00000004" in message
    assert checkpoint.resolve(tmp_path / "run").name == "step-00000004.json"


def test_resume_past_the_end_explains_how_to_continue(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=2"])
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(GanforgeError, match="train.steps=N"):
        resume(tmp_path / "run", progress=False)


def test_evaluation_during_training_logs_and_keeps_best(tmp_path):
    config = configlib.load(None, TINY_MLP + [
        "train.steps=6", "eval.every=2", "eval.metrics=[modes]", "eval.n=200",
        "eval.primary=hq_percent", "train.keep_checkpoints=1",
    ])
    train(config, tmp_path / "run", progress=False)
    from ganforge.training.logger import read_metrics

    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "eval/hq_percent" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert all(r["eval/modes_total"] == 8 for r in evals)
    best = configlib.yaml.safe_load((tmp_path / "run" / "checkpoints" / "best.json").read_text())
    best_value = max(r["eval/hq_percent"] for r in evals)
    assert best["best"]["value"] == best_value
    best_step = next(r["step"] for r in evals if r["eval/hq_percent"] == best_value)
    assert best["best"]["step"] == best_step
    tensors, meta = checkpoint.load(tmp_path / "run" / "checkpoints" / "best.json")
    assert "G.net.0.weight" in tensors and meta["tensors_file"] == "best.safetensors"
    from ganforge.training.generator import load_run

    assert load_run(tmp_path / "run" / "checkpoints" / "best.json").step == best["step"]


def test_resume_after_a_crash_continues_the_lr_schedule_exactly(tmp_path):
    import shutil

    config = configlib.load(None, TINY_MLP + [
        "train.steps=8", "train.checkpoint_every=3", "optim.lr_decay=linear",
    ])
    train(config, tmp_path / "straight", progress=False)
    shutil.copytree(tmp_path / "straight", tmp_path / "crashed")
    for step in (8, 6):  # as if the process died after step 7, its last checkpoint at 3
        for suffix in (".json", ".safetensors"):
            (tmp_path / "crashed" / "checkpoints" / f"step-{step:08d}{suffix}").unlink()
    resume(tmp_path / "crashed", progress=False)
    assert_same_state(newest_tensors(tmp_path / "straight"), newest_tensors(tmp_path / "crashed"))
    _, meta = checkpoint.load(checkpoint.resolve(tmp_path / "crashed"))
    group = meta["optimizers"]["opt_g"]["param_groups"][0]
    assert group["lr"] == pytest.approx(group["initial_lr"] * (1 - 7 / 8))


def test_resume_before_the_first_checkpoint_starts_from_step_0(tmp_path, capsys):
    config = configlib.load(None, TINY_MLP + ["train.steps=6"])
    train(config, tmp_path / "straight", progress=False)
    run = tmp_path / "killed"
    (run / "checkpoints").mkdir(parents=True)  # killed before its first checkpoint
    (run / "config.yaml").write_text(configlib.dump(config))
    capsys.readouterr()
    result = resume(run, progress=False)
    assert result.step == 6
    lines = [line for line in capsys.readouterr().out.splitlines() if "step 0" in line]
    assert len(lines) == 1 and "no checkpoint" in lines[0]
    assert_same_state(newest_tensors(tmp_path / "straight"), newest_tensors(run))


def test_stale_temp_files_of_a_killed_checkpoint_write_are_removed(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=4"])
    train(config, tmp_path / "run", progress=False)
    ckpts = tmp_path / "run" / "checkpoints"
    stale = ckpts / ".step-00000008.safetensors.abc123.tmp"  # atomic_write's temp name
    stale.write_bytes(b"\0" * 1000)
    mine = ckpts / "notes.tmp"
    mine.write_text("not ganforge's")
    resume(tmp_path / "run", ["train.steps=6"], progress=False)
    assert not stale.exists() and mine.exists()


def test_nan_weights_are_never_checkpointed(tmp_path, monkeypatch):
    config = configlib.load(None, TINY_MLP + ["train.steps=20"])

    def spoil_weights(task, stats):  # weights go bad after the losses of checkpoint step 8
        with torch.no_grad():
            next(task.G.parameters()).fill_(float("inf"))

    poison_g_step(monkeypatch, 8, spoil_weights)
    with pytest.raises(GanforgeError, match="diverged") as err:
        train(config, tmp_path / "run", progress=False)
    assert "step-00000004" in str(err.value)
    assert checkpoint.resolve(tmp_path / "run").name == "step-00000004.json"


@pytest.mark.parametrize(
    "device, log_now, checkpoint_due, expected",
    [("cpu", False, False, True), ("cuda", False, False, False),
     ("cuda", True, False, True), ("cuda", False, True, True)],
)
def test_finite_check_is_exact_on_cpu_and_on_log_or_checkpoint_steps_on_cuda(
    device, log_now, checkpoint_due, expected
):
    from ganforge.training.guards import check_losses_now

    assert check_losses_now(torch.device(device), log_now, checkpoint_due) is expected


def test_resume_overrides_of_lr_and_betas_take_effect_and_are_logged(tmp_path, capsys):
    config = configlib.load(None, TINY_MLP + ["train.steps=4"])
    train(config, tmp_path / "run", progress=False)
    capsys.readouterr()
    resume(tmp_path / "run", ["train.steps=8", "optim.d_lr=1e-6", "optim.betas=[0.0, 0.9]"],
           progress=False)
    out = capsys.readouterr().out
    assert "opt_d" in out and "1e-06" in out and "betas" in out
    _, meta = checkpoint.load(checkpoint.resolve(tmp_path / "run"))
    group_d = meta["optimizers"]["opt_d"]["param_groups"][0]
    group_g = meta["optimizers"]["opt_g"]["param_groups"][0]
    assert group_d["lr"] == 1e-6 and group_d["betas"] == [0.0, 0.9]
    assert group_g["lr"] == 2e-4 and group_g["betas"] == [0.0, 0.9]


def test_resume_with_another_optimizer_type_is_refused_with_the_way_out(tmp_path):
    config = configlib.load(None, TINY_MLP + ["train.steps=2"])
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(GanforgeError, match="optim.name") as err:
        resume(tmp_path / "run", ["train.steps=4", "optim.name=rmsprop"], progress=False)
    assert "--out" in str(err.value)


def test_raising_steps_with_a_linear_schedule_warns(tmp_path, capsys):
    config = configlib.load(None, TINY_MLP + ["train.steps=4", "optim.lr_decay=linear"])
    train(config, tmp_path / "run", progress=False)
    capsys.readouterr()
    resume(tmp_path / "run", ["train.steps=8"], progress=False)
    out = capsys.readouterr().out
    assert "re-planned" in out and "train.steps" in out


def test_raising_steps_with_instance_noise_annealed_over_the_run_warns(tmp_path, capsys):
    sets = TINY_MLP + ["train.steps=4", "stabilize.instance_noise=0.2"]
    train(configlib.load(None, sets), tmp_path / "run", progress=False)
    capsys.readouterr()
    resume(tmp_path / "run", ["train.steps=8"], progress=False)
    out = capsys.readouterr().out
    # at step 4 of 4 the std had reached 0; over 8 steps it is back at half of 0.2
    assert "std goes from 0 to 0.1 at step 5" in out
    assert "stabilize.instance_noise_steps=4" in out and "re-planned" not in out
    pinned = tmp_path / "pinned"
    train(configlib.load(None, [*sets, "stabilize.instance_noise_steps=4"]), pinned,
          progress=False)
    capsys.readouterr()
    resume(pinned, ["train.steps=8"], progress=False)
    assert "instance_noise" not in capsys.readouterr().out  # a pinned schedule is kept


@pytest.mark.parametrize(
    "decay, step, expected",
    [("none", 7, 1.0), ("linear", 1, 1.0), ("linear", 6, 0.5),
     ("constant_linear", 1, 1.0), ("constant_linear", 6, 1.0), ("constant_linear", 7, 0.8),
     ("constant_linear", 10, 0.2)],
)
def test_lr_factor_schedules(decay, step, expected):
    from ganforge.training.schedule import lr_factor

    assert lr_factor(decay, step, total=10, decay_start=0.5) == pytest.approx(expected)


def test_constant_linear_schedule_is_used_by_the_loop(tmp_path):
    config = configlib.load(None, TINY_MLP + [
        "train.steps=8", "optim.lr_decay=constant_linear", "optim.decay_start=0.5",
    ])
    train(config, tmp_path / "run", progress=False)
    _, meta = checkpoint.load(checkpoint.resolve(tmp_path / "run"))
    group = meta["optimizers"]["opt_g"]["param_groups"][0]
    assert group["lr"] == pytest.approx(group["initial_lr"] * (1 - 3 / 4))
