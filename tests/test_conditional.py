"""Class-conditional GANs end to end: mode switching, exact resume, sampling by class, and
every bad input a user can give them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.data import MIXTURES
from ganforge.errors import GanforgeError
from ganforge.training import checkpoint
from ganforge.training.generator import load_run
from ganforge.training.loop import resume, train

TINY_CGAN = [
    "task.name=conditional", "data.source=fashion-mnist", "data.limit=256",
    "data.resolution=16", "model.arch=dcgan", "model.z_dim=8", "model.g_width=8",
    "model.d_width=8", "train.batch_size=32", "train.sample_every=3",
    "train.checkpoint_every=2", "train.num_samples=20", "log.every=1", "log.progress=false",
]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """A tiny class-conditional DCGAN (projection) on a Fashion-MNIST slice."""
    run = tmp_path_factory.mktemp("cgan") / "run"
    config = configlib.load(None, [*TINY_CGAN, "model.condition=projection", "train.steps=4"])
    train(config, run, progress=False)
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("plain") / "run"
    config = configlib.load(None, [*TINY_CGAN[1:], "train.steps=2"])
    train(config, run, progress=False)
    return run


@pytest.mark.parametrize("condition", ["concat", "projection", "acgan"])
def test_conditional_resume_is_bitwise_exact(tmp_path, condition):
    base = [*TINY_CGAN, f"model.condition={condition}"]
    train(configlib.load(None, [*base, "train.steps=6"]), tmp_path / "a", progress=False)
    train(configlib.load(None, [*base, "train.steps=3"]), tmp_path / "b", progress=False)
    resume(tmp_path / "b", ["train.steps=6"], progress=False)
    a, _ = checkpoint.load(checkpoint.resolve(tmp_path / "a"))
    b, _ = checkpoint.load(checkpoint.resolve(tmp_path / "b"))
    assert a.keys() == b.keys()
    assert not [k for k in a if not torch.equal(a[k], b[k])]
    if condition == "acgan":  # its class loss is trained and logged
        from ganforge.training.logger import read_metrics

        row = read_metrics(tmp_path / "b" / "metrics.jsonl")[-1]
        assert row["d_class"] > 0 and row["g_class"] > 0


def test_training_grid_has_one_row_per_class(cgan_run):
    grid = Image.open(cgan_run / "samples" / "step-00000004.png")
    # 20 samples over 10 classes: 2 columns of 16-pixel images, 10 rows, 2-pixel padding
    assert grid.size == (2 + 2 * 18, 2 + 10 * 18)


def test_sample_one_class_by_name_or_index_and_all(cgan_run, tmp_path, capsys):
    run = load_run(cgan_run)
    assert run.sampler.class_names == FASHION
    by_name = run.sampler.draw(5, 0, {"class": "sandal"})
    by_index = run.sampler.draw(5, 0, {"class": "5"})
    assert torch.equal(by_name.x, by_index.x) and by_name.labels.tolist() == [5] * 5
    other = run.sampler.draw(5, 0, {"class": "Bag"})
    assert not torch.allclose(other.x, by_name.x)  # the class changes the image, z fixed
    every = run.sampler.draw(3, 0, {"class": "all"})
    assert every.labels.tolist() == [k for k in range(10) for _ in range(3)] and every.nrow == 3

    code, out, _ = run_cli(capsys, "sample", cgan_run, "-n", 4, "--class", "Sandal,Bag",
                           "--out", tmp_path / "two.npy")
    assert code == 0 and "two.labels.npy" in out
    assert np.load(tmp_path / "two.npy").shape == (8, 16, 16, 1)
    assert np.load(tmp_path / "two.labels.npy").tolist() == [5] * 4 + [8] * 4
    code, _, _ = run_cli(capsys, "sample", cgan_run, "-n", 3, "--class", "all",
                         "--out", tmp_path / "all.png")
    assert code == 0 and Image.open(tmp_path / "all.png").size == (2 + 3 * 18, 2 + 10 * 18)


def test_unknown_class_and_index_out_of_range(cgan_run, tmp_path, capsys):
    err = user_error(capsys, "sample", cgan_run, "--class", "Sandle", "--out", tmp_path / "a.png")
    assert "'Sandle' is not a class" in err and "Sandal" in err and "Ankle boot" in err
    err = user_error(capsys, "sample", cgan_run, "--class", "10", "--out", tmp_path / "a.png")
    assert "out of range" in err and "0 to 9" in err


def test_class_on_an_unconditional_run(plain_run, tmp_path, capsys):
    err = user_error(capsys, "sample", plain_run, "--class", "1", "--out", tmp_path / "a.png")
    assert "--class does not apply" in err and "'unconditional'" in err


def test_resume_with_a_config_of_another_task(plain_run):
    with pytest.raises(GanforgeError, match="task.name was 'unconditional', now 'conditional'"):
        resume(plain_run, ["train.steps=4", "task.name=conditional"], progress=False)


def write_pngs(folder, n: int, value: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8), (value + 7 * i) % 256, np.uint8)).save(folder / f"{i}.png")


def test_folder_classes_are_subfolders_and_one_class_is_refused(tmp_path, capsys):
    write_pngs(tmp_path / "one" / "cats", 40, 10)
    err = user_error(capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out",
                     tmp_path / "r1", "--set", "task.name=conditional", "--set",
                     f"data.source=folder:{tmp_path / 'one'}", "--set", "data.resolution=16")
    assert "single subfolder 'cats'" in err and "one subfolder per class" in err
    assert not (tmp_path / "r1").exists()

    write_pngs(tmp_path / "two" / "dark", 40, 10)
    write_pngs(tmp_path / "two" / "light", 40, 200)
    code, _, err = run_cli(capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out",
                           tmp_path / "r2", "--no-progress", "--set", "task.name=conditional",
                           "--set", f"data.source=folder:{tmp_path / 'two'}", "--set",
                           "data.resolution=16", "--set", "train.steps=2", "--set",
                           "train.batch_size=16", "--set", "model.g_width=8", "--set",
                           "model.d_width=8")
    assert code == 0, err
    assert load_run(tmp_path / "r2").sampler.class_names == ["dark", "light"]


def test_conditional_on_unlabelled_folder_names_the_layout(tmp_path, capsys):
    write_pngs(tmp_path / "flat", 20, 10)
    err = user_error(capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out",
                     tmp_path / "r", "--set", "task.name=conditional", "--set",
                     f"data.source=folder:{tmp_path / 'flat'}")
    assert "do not sit in a direct subfolder" in err and "CLASS_NAME" in err


@pytest.mark.slow
def test_conditional_ring8_puts_each_class_on_its_mode(tmp_path):
    """Mode switching, exactly: class k's samples land on mode k (PacGAN ring, 3 sigma)."""
    config = configlib.load("configs/ring8_conditional.yaml", ["log.progress=false"])
    train(config, tmp_path / "run", progress=False)
    sampler = load_run(tmp_path / "run").sampler
    ring = MIXTURES["ring8"]
    for k in range(8):
        x = sampler.draw(1000, seed=k, request={"class": str(k)}).x.double()
        on_mode = (x - ring.centers[k]).norm(dim=1) < 3 * ring.sigma
        assert on_mode.double().mean() >= 0.90, (k, float(on_mode.double().mean()))


def test_evaluation_labels_are_balanced_or_follow_the_data(cgan_run):
    sampler = load_run(cgan_run).sampler
    fake = sampler.eval_fn("uniform")
    x, y = fake(105, 3)
    assert x.dtype == torch.uint8 and x.shape == (105, 1, 16, 16)
    assert torch.bincount(y, minlength=10).tolist() == [11] * 5 + [10] * 5  # n/K, rest first
    assert "balanced" in fake.label_description
    counts = sampler.info.class_counts  # the 256 training images' classes
    y_data = sampler.eval_fn("data")(20_000, 0)[1]
    expected = torch.tensor(counts, dtype=torch.float64) / sum(counts)
    observed = torch.bincount(y_data, minlength=10).double() / 20_000
    assert (observed - expected).abs().max() < 0.015
    again = sampler.eval_fn("uniform")(105, 3)
    assert torch.equal(again[0], x) and torch.equal(again[1], y)  # seeded: reproducible


def test_cas_needs_a_conditional_run(plain_run, tmp_path, capsys):
    err = user_error(capsys, "eval", plain_run, "--metrics", "cas", "--features",
                     "classifier:none.safetensors")
    assert "needs a class-conditional run" in err and "'unconditional'" in err
    write_pngs(tmp_path / "imgs", 4, 10)
    err = user_error(capsys, "eval", tmp_path / "imgs", "--against", "fashion-mnist:test",
                     "--metrics", "fid,cas")
    assert "needs a class-conditional run directory" in err
