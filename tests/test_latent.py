"""Latent walks: slerp against its closed form, and `ganforge sample --interpolate` writing
walks between the latents its seed draws (grid rows, .npy, an animated GIF)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from tests.test_training import TINY_DCGAN

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.latent import slerp, walks
from ganforge.tasks.sampling import generate
from ganforge.training.generator import load_run
from ganforge.training.loop import train


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    got = slerp(a, b, torch.tensor([0.0, 1 / 3, 0.5, 1.0]))
    angles = [0.0, math.pi / 6, math.pi / 4, math.pi / 2]
    want = torch.tensor([[math.cos(t), math.sin(t)] for t in angles])
    assert torch.allclose(got, want, atol=1e-6)


def test_slerp_interpolates_the_norm_and_keeps_the_ends():
    torch.manual_seed(0)
    a, b = torch.randn(64), 3 * torch.randn(64)
    t = torch.linspace(0, 1, 9)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), (1 - t) * a.norm() + t * b.norm(), rtol=1e-5)
    # a straight line dips in norm through the middle; the great circle does not
    assert (0.5 * (a + b)).norm() < path[4].norm()


def test_slerp_of_parallel_latents_is_linear():
    a = torch.tensor([1.0, 2.0])
    assert torch.allclose(slerp(a, 2 * a, torch.tensor([0.5])), torch.tensor([[1.5, 3.0]]))


def test_walks_are_row_by_row():
    starts, ends = torch.eye(3)[:2], torch.eye(3)[1:]
    out = walks(starts, ends, 4)
    assert out.shape == (8, 3)
    assert torch.equal(out[0], starts[0]) and torch.allclose(out[3], ends[0], atol=1e-6)
    assert torch.equal(out[4], starts[1]) and torch.allclose(out[7], ends[1], atol=1e-6)
    with pytest.raises(ValueError):
        walks(starts, ends, 1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("walk") / "run"
    # a high learning rate for 4 steps: DCGAN's first outputs are all near 0 (nothing to see)
    sets = TINY_DCGAN + ["train.steps=4", "optim.g_lr=0.02", "optim.d_lr=0.02"]
    train(configlib.load(None, sets), out, progress=False)
    return out


def test_sample_interpolate_writes_walks_between_the_seeds_latents(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", run, "-n", "13", "--interpolate", "4", "--seed",
                           "5", "--out", tmp_path / "w.npy")
    assert code == 0, err
    x = torch.from_numpy(np.load(tmp_path / "w.npy"))
    assert x.shape[0] == 12  # 3 walks of 4 (13 rounded down to whole walks)
    G = load_run(run).sampler.G
    ends = torch.randn(2, 3, G.z_dim, generator=torch.Generator().manual_seed(5))
    want = (generate(G, walks(ends[0], ends[1], 4)).permute(0, 2, 3, 1) + 1) / 2  # [0, 1] NHWC
    assert torch.allclose(x, want.clamp(0, 1), atol=1e-5)
    starts = (generate(G, ends[0]).permute(0, 2, 3, 1) + 1) / 2
    assert torch.allclose(x[0::4], starts.clamp(0, 1), atol=1e-5)  # each row starts at a draw
    assert (x[1::4] - x[0::4]).abs().amax() > 0.01  # and really moves away from it


def test_sample_interpolate_grid_and_gif(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", run, "-n", "8", "--interpolate", "4", "--out",
                           tmp_path / "w.png")
    assert code == 0, err
    side = 16 + 2  # TINY_DCGAN images are 16x16; grids pad by 2
    assert Image.open(tmp_path / "w.png").size == (4 * side + 2, 2 * side + 2)  # 2 rows of 4
    code, _, err = run_cli(capsys, "sample", run, "-n", "3", "--interpolate", "5", "--out",
                           tmp_path / "w.gif")
    assert code == 0, err
    gif = Image.open(tmp_path / "w.gif")
    assert gif.n_frames == 8  # 0..4 then back 3..1, looping
    assert gif.size == (2 * side + 2, 2 * side + 2)  # 3 walks per frame: a 2x2 grid


def test_sample_interpolate_bad_input(run, tmp_path, capsys):
    assert "at least 2 steps" in user_error(capsys, "sample", run, "--interpolate", "1",
                                            "--out", tmp_path / "a.png")
    assert "fewer than one walk" in user_error(capsys, "sample", run, "-n", "3",
                                               "--interpolate", "4", "--out", tmp_path / "a.png")
    assert ".gif with --interpolate" in user_error(capsys, "sample", run, "--out",
                                                    tmp_path / "a.gif")
    assert not list(tmp_path.iterdir())
