"""The `ganforge` command as a user meets it: a smoke run, sampling, and every bad input."""

import numpy as np
import pytest
from PIL import Image

from clihelp import run_cli, user_error
from ganforge.cli import main

SMOKE = [
    "--set", "data.limit=256",
    "--set", "model.g_width=8",
    "--set", "model.d_width=8",
    "--set", "model.z_dim=16",
    "--set", "train.batch_size=32",
    "--set", "train.steps=6",
    "--set", "train.sample_every=3",
    "--set", "train.checkpoint_every=3",
    "--set", "log.every=2",
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A DCGAN smoke run on a small Fashion-MNIST slice, through the CLI."""
    run = tmp_path_factory.mktemp("cli") / "fm"
    code = main(["train", "configs/fashion_mnist_dcgan.yaml", "--out", str(run), *SMOKE])
    assert code == 0
    return run


def test_dcgan_smoke_run_leaves_a_complete_run_dir(trained_run):
    assert (trained_run / "config.yaml").is_file()
    assert (trained_run / "losses.png").is_file()
    assert (trained_run / "checkpoints" / "step-00000006.safetensors").is_file()
    grid = Image.open(trained_run / "samples" / "step-00000006.png")
    # train.num_samples = 64 images of 28x28: 8 per row (ceil(sqrt(64))), 8 rows, 2 px padding
    assert grid.mode == "L" and grid.size == (8 * (28 + 2) + 2, 8 * (28 + 2) + 2)
    pixels = np.asarray(grid)
    lines = [i * 30 + j for i in range(9) for j in range(2)]  # the padding rows and columns
    assert not pixels[lines].any() and not pixels[:, lines].any()
    cells = pixels[2:, 2:].reshape(8, 30, 8, 30)[:, :28, :, :28].transpose(0, 2, 1, 3)
    assert all(cell.std() > 0 for row in cells for cell in row)  # 64 images, none blank
    lines = (trained_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # steps 2, 4, 6


def test_sample_png_and_npy(trained_run, tmp_path, capsys):
    from ganforge.training.generator import load_run

    code, out, _ = run_cli(capsys, "sample", trained_run, "-n", 10, "--out", tmp_path / "g.png",
                           "--seed", 4)
    assert code == 0 and "step 6" in out
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (3 * 30 + 2, 4 * 30 + 2)  # 10 images: 4 per row (ceil(sqrt(10))), 3 rows
    expected = load_run(trained_run).sampler.eval_fn()(10, 4)[:, 0].numpy()  # uint8 (10, 28, 28)
    for i, image in enumerate(expected):  # image i in row i // 4, column i % 4, row-major
        top, left = 2 + 30 * (i // 4), 2 + 30 * (i % 4)
        assert np.array_equal(grid[top : top + 28, left : left + 28], image), i
    assert not grid[62:, 62:].any()  # the two unused cells of the last row stay black
    code, _, _ = run_cli(capsys, "sample", trained_run, "-n", 5, "--out", tmp_path / "s.npy",
                         "--seed", 3)
    samples = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert samples.shape == (5, 28, 28, 1) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    again = tmp_path / "again.npy"
    run_cli(capsys, "sample", trained_run, "-n", 5, "--out", again, "--seed", 3)
    assert np.array_equal(samples, np.load(again))  # same seed, same samples
    message = user_error(capsys, "sample", trained_run, "-n", 5, "--out", tmp_path / "s.npy")
    assert "exists" in message and "--overwrite" in message


def test_sample_npy_loads_back_as_a_data_source(trained_run, tmp_path, capsys):
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset

    run_cli(capsys, "sample", trained_run, "-n", 8, "--out", tmp_path / "s.npy")
    dataset = build_dataset(DataConfig(source=f"npy:{tmp_path / 's.npy'}"))
    assert dataset.shape == (1, 28, 28) and len(dataset) == 8


def test_ring8_samples_are_points_in_data_scale(tmp_path, capsys):
    run = tmp_path / "ring"
    main(["train", "configs/ring8.yaml", "--out", str(run), "--set", "train.steps=3",
          "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]", "--no-progress"])
    run_cli(capsys, "sample", run, "-n", 7, "--out", tmp_path / "p.npy")
    assert np.load(tmp_path / "p.npy").shape == (7, 2)


def test_existing_run_dir_is_refused(trained_run, capsys):
    message = user_error(capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out",
                         trained_run, *SMOKE)
    assert "already holds a run" in message and "--resume" in message
    assert "--overwrite" in message


def test_missing_dataset_says_where_to_put_files(tmp_path, capsys, monkeypatch):
    from ganforge.data import paths

    monkeypatch.setattr(paths, "SYSTEM_DATA_DIRS", [])
    message = user_error(
        capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out", tmp_path / "r",
        "--set", "data.source=mnist", "--set", f"data.dir={tmp_path / 'empty'}",
        "--set", "data.download=false", *SMOKE,
    )
    assert "train-images-idx3-ubyte" in message
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_unreadable_images_fail_in_strict_mode(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((20, 20, 3), i * 40, np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    message = user_error(
        capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out", tmp_path / "r",
        "--set", f"data.source=folder:{folder}", "--set", "data.resolution=16",
        "--set", "data.strict=true", *SMOKE,
    )
    assert "broken.jpg" in message


def test_image_size_the_architecture_cannot_make(tmp_path, capsys):
    message = user_error(
        capsys, "train", "configs/fashion_mnist_dcgan.yaml", "--out", tmp_path / "r",
        "--set", "data.resolution=20", *SMOKE,
    )
    assert "20" in message and "data.resolution" in message and "64" in message


def test_resume_with_other_architecture(trained_run, capsys):
    message = user_error(capsys, "train", "--resume", trained_run, "--set", "train.steps=9",
                         "--set", "model.g_width=16")
    assert "model.g_width" in message


def test_bad_config_key_and_missing_config(tmp_path, capsys):
    message = user_error(capsys, "train", "configs/ring8.yaml", "--out", tmp_path / "r",
                         "--set", "train.batchsize=3")
    assert "Did you mean 'batch_size'" in message
    message = user_error(capsys, "train", tmp_path / "nope.yaml")
    assert "does not exist" in message


def test_debug_shows_the_traceback(tmp_path):
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError):
        main(["--debug", "train", str(tmp_path / "nope.yaml")])


def test_datasets_lists_sources(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0
    for name in ("fashion-mnist", "mnist", "ring8", "grid25", "folder:"):
        assert name in out


def test_every_verb_has_help(capsys):
    for verb in ("train", "sample", "eval", "datasets", "train-classifier", "classify",
                 "export-classifier", "translate", "export", "report", "search"):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
        assert "usage: ganforge" in capsys.readouterr().out


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from ganforge.training import checkpoint

    run = tmp_path / "run"
    command = [sys.executable, "-m", "ganforge.cli", "train", "configs/ring8.yaml", "--out",
               str(run), "--set", "train.steps=1000000", "--set", "log.every=10",
               "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]",
               "--set", "train.batch_size=64", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Stopped at step" in out and "--resume" in out
    step = checkpoint.load(checkpoint.resolve(run))[1]["step"]
    assert step >= 10
    assert main(["train", "--resume", str(run), "--set", f"train.steps={step + 5}",
                 "--no-progress"]) == 0
    assert checkpoint.load(checkpoint.resolve(run))[1]["step"] == step + 5


@pytest.mark.parametrize("verb", [["sample", "nowhere", "--out", "x.png"],
                                  ["eval", "nowhere", "--against", "ring8"],
                                  ["train-classifier", "--data", "mnist", "--out", "c.st"]])
def test_device_option_refuses_a_bad_device_clearly(verb, capsys):
    from ganforge.cli import main

    assert main([*verb, "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "--device is 'gpu'" in err and "cuda:N" in err and "Traceback" not in err


def test_device_cpu_on_eval_of_a_run(tmp_path, capsys):
    from ganforge import config as configlib
    from ganforge.cli import main
    from ganforge.training.loop import train

    config = configlib.load(None, [
        "data.source=ring8", "model.arch=mlp", "model.z_dim=8", "model.g_hidden=[16]",
        "model.d_hidden=[16]", "train.steps=2", "log.progress=false",
    ])
    train(config, tmp_path / "run", progress=False)
    assert main(["eval", str(tmp_path / "run"), "--metrics", "modes", "--n", "100",
                 "--device", "cpu", "--no-progress"]) == 0
    assert "modes" in capsys.readouterr().out
