"""`ganforge classify` and `ganforge export-classifier`: a semi-supervised run's D labels image
files and becomes a classifier file for --features classifier:PATH."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.data.transforms import match_channels, resize_square
from ganforge.errors import GanforgeError
from ganforge.images import from_uint8
from ganforge.metrics import classifier as clf
from ganforge.metrics.classifier_net import ClassifierArch, ClassifierNet
from ganforge.training.generator import load_run
from ganforge.training.loop import train

CLASSES, SIZE = 3, 8
TINY = [
    "model.arch=mlp", "model.g_hidden=[32]", "model.d_hidden=[32]", "model.z_dim=8",
    "train.steps=30", "train.batch_size=16", "train.sample_every=30",
    "train.checkpoint_every=30", "log.every=10", "log.progress=false",
]


def labelled_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 gray images whose brightness gives the class, (N, H, W) uint8 and labels."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(CLASSES), n_per_class)
    x = rng.integers(0, 70, (len(y), SIZE, SIZE)) + y[:, None, None] * 90
    return x.astype(np.uint8), y


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "three.npz"
    x, y = labelled_images(20, seed=0)
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def ssl_run(data_file, tmp_path_factory) -> Path:
    """A tiny semi-supervised run; k+1 logits and weight norm exercise the export's rebuild."""
    run = tmp_path_factory.mktemp("ssl") / "run"
    config = configlib.load(None, [
        *TINY, "task.name=semi-supervised", f"data.source=npz:{data_file}",
        "data.labels_per_class=4", "loss.ssl_form=k+1", "model.weight_norm=d",
    ])
    train(config, run, progress=False)
    return run


@pytest.fixture(scope="module")
def plain_run(data_file, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("plain") / "run"
    config = configlib.load(None, [*TINY, "train.steps=2", f"data.source=npz:{data_file}"])
    train(config, run, progress=False)
    return run


@pytest.fixture(scope="module")
def d_classifier(ssl_run):
    return load_run(ssl_run).sampler.classifier


def held_out() -> torch.Tensor:
    """uint8 (N, 1, 8, 8) images of all three classes, not the training ones."""
    x, _ = labelled_images(4, seed=1)
    return torch.from_numpy(x).unsqueeze(1)


def write_pngs(folder: Path, images: torch.Tensor, prefix: str = "img") -> list[str]:
    """Each uint8 (C, H, W) image as folder/PREFIXnn.png; returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images):
        array = img.permute(1, 2, 0).numpy()
        name = f"{prefix}{i:02d}.png"
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(folder / name)
        names.append(name)
    return names


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def probabilities_of(rows: list[dict[str, str]], names: list[str]) -> torch.Tensor:
    return torch.tensor([[float(row[f"p_{n}"]) for n in names] for row in rows])


# ---------------------------------------------------------------------------------------------
# classify


def test_classify_a_folder_gives_one_row_per_image_as_D_predicts(ssl_run, d_classifier,
                                                                  tmp_path, capsys):
    images = held_out()
    folder = tmp_path / "in"
    names = write_pngs(folder, images.flip(0))  # file order differs from array order
    (folder / ".hidden.png").write_bytes(b"not read")
    (folder / "notes.txt").write_text("not an image")
    write_pngs(folder / "sub", images[:2])  # not searched
    out = tmp_path / "classes.csv"
    code, stdout, _ = run_cli(capsys, "classify", ssl_run, folder, "--out", out,
                              "--device", "cpu")
    assert code == 0
    header, rows = read_csv(out)
    assert header == ["file", "class", "class_index", "p_0", "p_1", "p_2"]
    assert [row["file"] for row in rows] == sorted(names)
    probs = probabilities_of(rows, d_classifier.class_names)
    assert torch.allclose(probs.sum(1), torch.ones(len(rows)), atol=1e-5)
    index = [int(row["class_index"]) for row in rows]
    assert index == probs.argmax(1).tolist()
    assert [row["class"] for row in rows] == [d_classifier.class_names[k] for k in index]
    expected = d_classifier.probabilities(images.flip(0))
    assert torch.allclose(probs, expected, atol=1e-6)
    assert index == expected.argmax(1).tolist()
    assert len(set(index)) > 1  # a D that predicts one class for all would hide order bugs
    assert f"Classified {len(images)} images" in stdout and str(out) in stdout


def test_classify_one_file_names_it_and_refuses_to_overwrite(ssl_run, d_classifier, tmp_path,
                                                             capsys):
    images = held_out()
    write_pngs(tmp_path, images[-1:], prefix="digit")
    out = tmp_path / "one.csv"
    assert run_cli(capsys, "classify", ssl_run, tmp_path / "digit00.png", "--out", out)[0] == 0
    _, rows = read_csv(out)
    assert [row["file"] for row in rows] == ["digit00.png"]
    assert int(rows[0]["class_index"]) == int(d_classifier.probabilities(images[-1:]).argmax())
    before = out.read_bytes()
    err = user_error(capsys, "classify", ssl_run, tmp_path / "digit00.png", "--out", out)
    assert "exists" in err and "--overwrite" in err
    assert out.read_bytes() == before
    out.write_text("stale")
    assert run_cli(capsys, "classify", ssl_run, tmp_path / "digit00.png", "--out", out,
                   "--overwrite")[0] == 0
    assert out.read_bytes() == before


def test_other_sizes_and_channels_are_refused_unless_resize(ssl_run, d_classifier, tmp_path,
                                                            capsys):
    folder = tmp_path / "mixed"
    images = held_out()
    write_pngs(folder, images[:3], prefix="a")
    rgb = match_channels(images[3:4], 3)
    write_pngs(folder, rgb, prefix="b")
    big = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (1, 1, 16, 12),
                                                              dtype=np.uint8))
    write_pngs(folder, big, prefix="c")
    out = tmp_path / "mixed.csv"
    err = user_error(capsys, "classify", ssl_run, folder, "--out", out)
    assert "2 of 5 images" in err and "'b00.png' (3x8x8)" in err and "'c00.png' (1x16x12)" in err
    assert "1x8x8" in err and "--resize" in err
    assert not out.exists()

    code, _, stderr = run_cli(capsys, "classify", ssl_run, folder, "--out", out, "--resize")
    assert code == 0
    assert "warning: converted 2 of 5 images" in stderr
    _, rows = read_csv(out)
    assert [row["file"] for row in rows] == ["a00.png", "a01.png", "a02.png", "b00.png",
                                             "c00.png"]
    converted = torch.cat([images[:4], resize_square(big, SIZE)])  # RGB back to luma is exact
    expected = d_classifier.probabilities(converted)
    assert torch.allclose(probabilities_of(rows, d_classifier.class_names), expected, atol=1e-6)


def test_missing_empty_or_unreadable_input_is_a_clear_error(ssl_run, tmp_path, capsys):
    out = tmp_path / "x.csv"
    err = user_error(capsys, "classify", ssl_run, tmp_path / "nowhere", "--out", out)
    assert "'" + str(tmp_path / "nowhere") + "' does not exist" in err
    empty = tmp_path / "empty"
    write_pngs(empty / "nested", held_out()[:1])
    err = user_error(capsys, "classify", ssl_run, empty, "--out", out)
    assert "No images" in err and "subfolders are not searched" in err
    bad = tmp_path / "bad"
    write_pngs(bad, held_out()[:2])
    (bad / "broken.png").write_bytes(b"\x89PNG but truncated")
    err = user_error(capsys, "classify", ssl_run, bad, "--out", out)
    assert "Cannot read 'broken.png'" in err
    assert not out.exists()


def test_runs_that_are_not_semi_supervised_are_refused(plain_run, tmp_path, capsys):
    write_pngs(tmp_path / "in", held_out()[:1])
    err = user_error(capsys, "classify", plain_run, tmp_path / "in", "--out", tmp_path / "c.csv")
    assert "task 'unconditional'" in err and "task.name=semi-supervised" in err
    err = user_error(capsys, "export-classifier", plain_run, "--out", tmp_path / "c.st")
    assert "task 'unconditional'" in err and "task.name=semi-supervised" in err
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "c.st").exists()


def test_vector_runs_are_refused(tmp_path, capsys):
    run = tmp_path / "ring"
    config = configlib.load(None, [
        "task.name=semi-supervised", "data.source=ring8", "data.limit=200",
        "data.labels_per_class=2", "model.arch=mlp", "model.g_hidden=[8]",
        "model.d_hidden=[8]", "model.z_dim=4", "train.steps=1", "train.batch_size=16",
        "log.progress=false",
    ])
    train(config, run, progress=False)
    write_pngs(tmp_path / "in", held_out()[:1])
    err = user_error(capsys, "classify", run, tmp_path / "in", "--out", tmp_path / "c.csv")
    assert "works on images" in err and "vector data" in err and "--metrics accuracy" in err
    err = user_error(capsys, "export-classifier", run, "--out", tmp_path / "c.st")
    assert "works on images" in err


# ---------------------------------------------------------------------------------------------
# export-classifier


@pytest.fixture(scope="module")
def exported(ssl_run, tmp_path_factory) -> Path:
    from ganforge.cli import main

    path = tmp_path_factory.mktemp("export") / "d.safetensors"
    assert main(["export-classifier", str(ssl_run), "--out", str(path)]) == 0
    return path


def test_exported_classifier_predicts_as_D(exported, d_classifier):
    state = torch.random.get_rng_state()
    extractor = clf.load_classifier(exported)
    assert torch.equal(torch.random.get_rng_state(), state)  # rebuilding D draws nothing
    images = held_out()
    features, logits = extractor(images)
    D = d_classifier.D
    assert features.shape == (len(images), D.feature_dim) == (len(images), 32)
    assert logits.shape == (len(images), CLASSES)  # the k+1 fake logit is dropped
    assert logits.argmax(1).tolist() == d_classifier.probabilities(images).argmax(1).tolist()
    with torch.no_grad():
        x = from_uint8(images)
        assert torch.allclose(features, D.features(x), atol=1e-6)
        assert torch.allclose(logits, D(x)[:, :CLASSES], atol=1e-6)
    assert torch.allclose(logits.softmax(1), d_classifier.probabilities(images), atol=1e-6)
    assert extractor.class_names == d_classifier.class_names
    assert extractor.feature_dim == 32 and extractor.num_classes == CLASSES
    assert "semi-supervised D" in extractor.description and "step 30" in extractor.description
    # other channels and sizes go through the extractor's usual preprocessing
    rgb_big = match_channels(resize_square(images, 16), 3)
    assert extractor(rgb_big)[0].shape == (len(images), 32)


def test_exported_file_metadata(exported, ssl_run, d_classifier, tmp_path, capsys):
    meta = clf.read_meta(exported)
    loaded = load_run(ssl_run)
    assert meta["format_version"] == 2
    assert meta["arch"] == {"in_channels": 1, "num_classes": 3, "input_size": 8, "hidden": 32}
    assert meta["normalization"] == {"mean": [0.5], "std": [0.5]}
    assert meta["class_names"] == ["0", "1", "2"] and meta["source"].startswith("npz:")
    disc = meta["discriminator"]
    assert disc["task"] == "semi-supervised" and disc["data"] == loaded.meta["data"]
    assert disc["config"] == json.loads(json.dumps(loaded.config.to_dict()))
    assert load_file(str(exported)).keys() == d_classifier.D.state_dict().keys()
    # the same run exports byte-identical files; an existing file needs --overwrite
    again = tmp_path / "again.safetensors"
    assert run_cli(capsys, "export-classifier", ssl_run, "--out", again)[0] == 0
    assert again.read_bytes() == exported.read_bytes()
    err = user_error(capsys, "export-classifier", ssl_run, "--out", again)
    assert "--overwrite" in err
    assert run_cli(capsys, "export-classifier", ssl_run, "--out", again, "--overwrite")[0] == 0


def rewrite(source: Path, dest: Path, edit=None, drop: str | None = None) -> Path:
    """A copy of a classifier file with its metadata edited and/or one tensor dropped."""
    with safe_open(str(source), framework="pt") as handle:
        meta = json.loads(handle.metadata()["ganforge-classifier"])
    if edit:
        edit(meta)
    tensors = {k: v for k, v in load_file(str(source)).items() if k != drop}
    save_file(tensors, str(dest), metadata={"ganforge-classifier": json.dumps(meta)})
    return dest


def test_newer_versions_ask_for_an_upgrade_and_broken_files_are_refused(exported, tmp_path):
    future = rewrite(exported, tmp_path / "v3.safetensors",
                     lambda m: m.update(format_version=3))
    with pytest.raises(GanforgeError, match="version 3.*Upgrade ganforge"):
        clf.load_classifier(future)
    head = next(k for k in load_file(str(exported)) if k.startswith("head."))
    missing = rewrite(exported, tmp_path / "missing.safetensors", drop=head)
    with pytest.raises(GanforgeError, match="not a ganforge classifier file.*weights"):
        clf.load_classifier(missing)
    no_task = rewrite(exported, tmp_path / "no-task.safetensors",
                      lambda m: m["discriminator"].pop("task"))
    with pytest.raises(GanforgeError, match="discriminator entry lacks"):
        clf.load_classifier(no_task)
    wrong = rewrite(exported, tmp_path / "wrong.safetensors",
                    lambda m: m["discriminator"].update(task="nope"))
    with pytest.raises(GanforgeError, match="cannot rebuild its discriminator"):
        clf.load_classifier(wrong)


@pytest.mark.parametrize("version", [1, 2])
def test_cnn_classifier_files_of_version_1_and_2_load(tmp_path, version):
    torch.manual_seed(0)
    arch = ClassifierArch(in_channels=1, num_classes=3, input_size=8, widths=[4], hidden=6)
    meta = {"format_version": version, "arch": arch.to_dict(), "class_names": ["a", "b", "c"],
            "normalization": {"mean": [0.3], "std": [0.2]}, "source": "toy"}
    extractor = clf.ClassifierExtractor(ClassifierNet(arch), meta)
    path = tmp_path / "cnn.safetensors"
    clf.save_classifier(extractor, path)
    loaded = clf.load_classifier(path)
    assert isinstance(loaded.net, ClassifierNet)
    images = held_out()
    assert torch.equal(loaded(images)[1], extractor(images)[1])


def test_eval_reads_the_exported_classifier(ssl_run, exported, data_file, tmp_path, capsys):
    report = tmp_path / "eval.json"
    code, out, _ = run_cli(capsys, "eval", ssl_run, "--against", f"npz:{data_file}",
                           "--features", f"classifier:{exported}", "--metrics", "fid,is",
                           "--n", 40, "--no-progress", "--json", report)
    assert code == 0, out
    assert "semi-supervised D's penultimate features 32-d" in out
    assert "FID" in out and "IS" in out


def test_both_verbs_have_help(capsys):
    from ganforge.cli import main

    for verb in ("classify", "export-classifier"):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: ganforge {verb}" in capsys.readouterr().out
