"""Progressive and style-based nets in real runs: exact resume mid-fade, grids at the current
resolution, evaluation at the final resolution only, the truncation flag, bad input."""

import math

import pytest
from PIL import Image
from tests.test_training import TINY_DCGAN, assert_resume_is_exact

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.data.dataset import to_data_scale
from ganforge.training.classifier import train_classifier
from ganforge.training.generator import load_run
from ganforge.training.logger import read_metrics
from ganforge.training.loop import train

# 16x16 images: levels 4, 8, 16. 32 images per step and 96 per phase: step s shows
# (s - 1) * 32 images before it, so steps 4-6 fade 8x8 in, 7-9 hold it, 10-12 fade 16x16 in.
PROGRESSIVE = [*TINY_DCGAN, "model.arch=progressive", "model.phase_images=96",
               "model.mbstd_group=4", "loss.r1_gamma=1", "loss.r1_every=2",
               "stabilize.ema=0.9", "optim.betas=[0.0, 0.99]"]
STYLE = [*TINY_DCGAN, "model.arch=style", "model.w_dim=16", "model.mapping_layers=2",
         "model.style_mixing=0.9", "model.mbstd_group=4", "loss.r1_gamma=1",
         "loss.r1_every=2", "stabilize.ema=0.9"]


def test_progressive_resume_is_bitwise_exact_mid_fade(tmp_path):
    tensors = assert_resume_is_exact(tmp_path, PROGRESSIVE, n=5)  # split at step 5: mid-fade
    level, alpha = tensors["G.stage"].tolist()
    assert (level, alpha) == (2.0, 0.0)  # step 10 starts fading the 16x16 level in


def test_progressive_split_point_really_is_mid_fade(tmp_path, capsys):
    config = configlib.load(None, PROGRESSIVE + ["train.steps=5"])
    train(config, tmp_path / "run", progress=False)
    loaded = load_run(tmp_path / "run")
    level, alpha = loaded.sampler.G.stage.tolist()  # the EMA copy, as users sample it
    assert (level, alpha) == (1.0, pytest.approx(1 / 3))
    # `ganforge eval` of a checkpoint that is still growing says why it will not score it
    err = user_error(capsys, "eval", tmp_path / "run", "--metrics", "fid", "--n", "10")
    assert "still growing" in err and "8x8" in err


def test_style_resume_is_bitwise_exact(tmp_path):
    tensors = assert_resume_is_exact(tmp_path, STYLE, n=4)
    assert tensors["G.w_avg"].abs().sum() > 0 and "G_ema.w_avg" in tensors


def test_grids_show_the_current_resolution_and_eval_waits_for_the_last_level(tmp_path):
    features = tmp_path / "fm.safetensors"
    train_classifier("fashion-mnist", features, epochs=1, limit=256, progress=False)
    sets = PROGRESSIVE + ["train.steps=15", "train.sample_every=3", "eval.every=3",
                          "eval.metrics=[fid]", f"eval.features=classifier:{features}",
                          "eval.n=64", "data.limit=128"]
    train(configlib.load(None, sets), tmp_path / "run", progress=False)
    sizes = {int(p.stem.split("-")[-1]): Image.open(p).size
             for p in (tmp_path / "run" / "samples").glob("*.png")}
    # step 3: 4x4; 6: fading 8x8 in (grid at 8x8); 9: 8x8; 12: fading 16x16 in; 15: 16x16
    side = {3: 4, 6: 8, 9: 8, 12: 16, 15: 16}
    nrow = math.ceil(math.sqrt(configlib.load(None, sets).train.num_samples))
    assert sorted(sizes) == sorted(side)
    for step, (width, height) in sizes.items():  # save_grid pads each image by 2 pixels
        assert width == height == nrow * (side[step] + 2) + 2, (step, width)
    rows = {r["step"]: r for r in read_metrics(tmp_path / "run" / "metrics.jsonl")
            if "eval_skipped" in r or "eval/fid" in r}
    assert sorted(rows) == [3, 6, 9, 12, 15]
    # 16x16 is still fading in at step 12: skipped until then, scored at 16x16 from step 13
    assert all("eval_skipped" in rows[s] and "eval/fid" not in rows[s] for s in (3, 6, 9, 12))
    assert "final resolution 16x16 only, from step 13" in rows[3]["eval_skipped"]
    assert "eval_skipped" not in rows[15] and rows[15]["eval_resolution"] == 16


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("style") / "run"
    train(configlib.load(None, STYLE + ["train.steps=4"]), run, progress=False)
    return run


def test_sample_with_truncation_writes_the_truncated_samples(style_run, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "sample", style_run, "-n", "8", "--truncation", "0",
                           "--out", tmp_path / "mean.npy")
    assert code == 0, out
    import numpy as np

    mean = np.load(tmp_path / "mean.npy")
    assert np.abs(mean - mean[:1]).max() < 1e-4  # psi 0: every sample is w_avg's image
    run_cli(capsys, "sample", style_run, "-n", "8", "--out", tmp_path / "free.npy")
    free = np.load(tmp_path / "free.npy")
    assert np.abs(free - free[:1]).max() > 0.05


@pytest.mark.parametrize("psi", ["1.5", "-0.2"])
def test_truncation_outside_zero_one_is_a_clean_error(style_run, tmp_path, capsys, psi):
    err = user_error(capsys, "sample", style_run, "-n", "4", "--truncation", psi,
                     "--out", tmp_path / "x.png")
    assert "--truncation must be in [0, 1]" in err
    assert not (tmp_path / "x.png").exists()


def test_truncation_of_any_other_g_scales_its_noise(tmp_path, capsys):
    import numpy as np
    import torch

    run = tmp_path / "dcgan"
    train(configlib.load(None, TINY_DCGAN + ["train.steps=2"]), run, progress=False)
    code, out, _ = run_cli(capsys, "sample", run, "-n", "6", "--seed", "3", "--truncation",
                           "0.5", "--out", tmp_path / "half.npy")
    assert code == 0, out
    sampler = load_run(run).sampler
    z = torch.randn(6, sampler.G.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        by_hand = sampler.G.eval()(0.5 * z)  # psi 0.5: the same draw at half the scale
    by_hand = to_data_scale(by_hand, "image").permute(0, 2, 3, 1)  # as .npy holds images
    half = torch.from_numpy(np.load(tmp_path / "half.npy"))
    torch.testing.assert_close(half, by_hand, atol=1e-5, rtol=1e-5)
    run_cli(capsys, "sample", run, "-n", "6", "--truncation", "0", "--out", tmp_path / "z0.npy")
    zero = np.load(tmp_path / "z0.npy")
    assert np.abs(zero - zero[:1]).max() < 1e-6  # psi 0: every sample is G(0)


def test_eval_with_truncation_names_it_in_the_protocol(style_run, tmp_path):
    from ganforge.training.evaluation import evaluate_target

    features = tmp_path / "fm.safetensors"
    train_classifier("fashion-mnist", features, epochs=1, limit=256, progress=False)
    common = {"against": None, "metrics": ["fid"], "n": 32, "progress": False,
              "features": f"classifier:{features}"}
    result = evaluate_target(str(style_run), truncation=0.0, **common)
    assert result["protocol"]["fake"] == "generator (unconditional), truncation 0"
    plain = evaluate_target(str(style_run), **common)
    assert plain["protocol"]["fake"] == "generator (unconditional)"
    assert result["fid"] > plain["fid"]  # psi 0: one image repeated, far from the data


@pytest.mark.parametrize("arch", ["progressive", "style"])
def test_a_size_that_is_not_a_power_of_two_fails_before_any_write(tmp_path, capsys, arch):
    err = user_error(capsys, "train", "configs/fashion_mnist_progressive.yaml", "--set",
                     f"model.arch={arch}", "--set", "data.resolution=28", "--set",
                     "data.limit=64", "--out", tmp_path / "run", "--no-progress")
    assert "power of two from 16 to 256" in err and "data.resolution=32" in err
    assert not (tmp_path / "run").exists()


def test_spectral_norm_with_equalized_layers_is_refused(tmp_path, capsys):
    err = user_error(capsys, "train", "configs/fashion_mnist_style.yaml", "--set",
                     "model.spectral_norm=d", "--out", tmp_path / "run", "--no-progress")
    assert "equalized learning rate" in err and "model.spectral_norm" in err
