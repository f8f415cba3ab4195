"""The `classifier` feature extractor: training, file format, loading errors, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from ganforge.errors import GanforgeError
from ganforge.fileio import file_digest
from ganforge.metrics import classifier as clf
from ganforge.metrics.extract import extract
from ganforge.training import classifier as train_clf

CLASSES = ["rows", "columns", "blob", "diagonal"]


def patterns(n_per_class: int, seed: int, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes of noisy synthetic uint8 images (N, 1, size, size): stripes, blob, diagonal."""
    gen = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    images, labels = [], []
    for label in range(len(CLASSES)):
        for _ in range(n_per_class):
            phase = float(torch.rand(1, generator=gen)) * 6.28
            center = 8 + 12 * torch.rand(2, generator=gen)
            base = [
                torch.sin(yy * 0.9 + phase),
                torch.sin(xx * 0.9 + phase),
                torch.exp(-((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / 20) * 2 - 1,
                torch.sin((xx + yy) * 0.6 + phase),
            ][label]
            noisy = base + 0.4 * torch.randn(size, size, generator=gen)
            images.append(((noisy + 1) * 127.5).clamp(0, 255).to(torch.uint8))
            labels.append(label)
    return torch.stack(images).unsqueeze(1), torch.tensor(labels)


def train_toy(seed: int = 0, epochs: int = 2) -> clf.ClassifierExtractor:
    """A classifier trained on the synthetic patterns (a couple of seconds on a CPU)."""
    x_train, y_train = patterns(80, seed=1)
    x_test, y_test = patterns(25, seed=2)
    return train_clf.train_on_tensors(
        x_train,
        y_train,
        x_test,
        y_test,
        num_classes=4,
        class_names=CLASSES,
        source="synthetic-patterns",
        epochs=epochs,
        batch_size=32,
        seed=seed,
        progress=False,
    )


@pytest.fixture(scope="module")
def toy() -> clf.ClassifierExtractor:
    """One trained toy classifier shared by the tests that only read it."""
    return train_toy()


@pytest.fixture(scope="module")
def toy_file(toy, tmp_path_factory) -> Path:
    """The toy classifier saved to a file."""
    path = tmp_path_factory.mktemp("clf") / "toy.safetensors"
    clf.save_classifier(toy, path)
    return path


@pytest.fixture(scope="module")
def held_out_images() -> torch.Tensor:
    """Held-out synthetic images (labels dropped)."""
    return patterns(25, seed=3)[0]


def test_learns_synthetic_classes_well_above_chance(toy):
    x, y = patterns(25, seed=3)
    assert toy.meta["test_accuracy"] > 0.9
    assert clf.accuracy(toy, x, y) > 0.9  # chance is 0.25


def test_extractor_contract(toy, held_out_images):
    features, logits = toy(held_out_images)
    assert toy.name == "classifier"
    assert toy.num_classes == 4 and toy.class_names == CLASSES
    assert features.shape == (100, toy.feature_dim) and logits.shape == (100, 4)
    assert features.dtype == torch.float32 and logits.dtype == torch.float32
    assert "synthetic-patterns" in toy.description and "1x28x28" in toy.description
    assert not toy.net.training


def test_save_load_round_trip_gives_identical_outputs(toy, toy_file, held_out_images):
    loaded = clf.load_classifier(toy_file)
    before, after = toy(held_out_images), loaded(held_out_images)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert loaded.meta == json.loads(json.dumps(toy.meta))
    assert loaded.description == toy.description


def test_digest_is_sha256_of_the_file(toy, toy_file):
    loaded = clf.load_classifier(toy_file)
    assert loaded.digest == file_digest(toy_file) == toy.digest
    assert len(loaded.digest) == 64


def test_file_is_safetensors_with_json_metadata(toy_file):
    from safetensors import safe_open

    with safe_open(str(toy_file), framework="pt") as handle:
        header = handle.metadata()
    assert list(header) == ["ganforge-classifier"]
    meta = json.loads(header["ganforge-classifier"])
    assert meta["arch"]["in_channels"] == 1 and meta["arch"]["input_size"] == 28
    assert meta["class_names"] == CLASSES and meta["source"] == "synthetic-patterns"
    assert len(meta["normalization"]["mean"]) == 1 and meta["ganforge_version"]
    assert 0.9 < meta["test_accuracy"] <= 1.0
    assert set(load_file(str(toy_file))) == set(clf.load_classifier(toy_file).net.state_dict())


@pytest.mark.parametrize("batch_size", [1, 3, 7, 16, 33, 100])
def test_features_independent_of_batch_size(toy, held_out_images, batch_size):
    whole = toy(held_out_images)
    batched = extract(toy, held_out_images, batch_size=batch_size)
    assert torch.equal(whole[0], batched[0]) and torch.equal(whole[1], batched[1])


def test_same_seed_same_weights_other_seed_other_weights(toy, toy_file, tmp_path):
    again = train_toy(seed=0)
    for key, value in toy.net.state_dict().items():
        assert torch.equal(value, again.net.state_dict()[key]), key
    assert clf.save_classifier(again, tmp_path / "again.safetensors") == file_digest(toy_file)
    other = train_toy(seed=1, epochs=1)
    assert not torch.equal(other.net.head[1].weight, toy.net.head[1].weight)


def test_training_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    x, y = patterns(4, seed=5)
    train_clf.train_on_tensors(x, y, x, y, num_classes=4, epochs=1, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_gray_tiled_to_rgb_gives_the_same_features(toy, held_out_images):
    gray = toy(held_out_images)[0]
    rgb = toy(held_out_images.expand(-1, 3, -1, -1).contiguous())[0]
    assert torch.equal(gray, rgb)  # luma of equal channels is the gray value itself


def test_other_sizes_are_resized(toy, held_out_images):
    big = held_out_images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 56x56
    features, logits = toy(big)
    assert features.shape == (100, toy.feature_dim)
    agree = (logits.argmax(1) == toy(held_out_images)[1].argmax(1)).double().mean()
    assert agree > 0.9


def test_rejects_non_uint8_images(toy):
    with pytest.raises(GanforgeError, match="uint8"):
        toy(torch.zeros(2, 1, 28, 28))
    with pytest.raises(GanforgeError, match="uint8"):
        toy(torch.zeros(2, 2, 28, 28, dtype=torch.uint8))


def test_missing_file_says_how_to_train_one(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist.*ganforge train-classifier"):
        clf.load_classifier(tmp_path / "nope.safetensors")


def corrupt_variants(toy_file: Path, tmp_path: Path) -> dict[str, Path]:
    """Files that must not load: garbage, truncated, foreign safetensors, bad metadata."""
    data = toy_file.read_bytes()
    tensors = load_file(str(toy_file))
    from safetensors import safe_open

    with safe_open(str(toy_file), framework="pt") as handle:
        header = handle.metadata()
    meta = json.loads(header["ganforge-classifier"])
    files = {
        "garbage": b"this is not a safetensors file at all",
        "truncated": data[: len(data) // 2],
        "empty": b"",
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.safetensors"
        paths[name].write_bytes(content)
    wider = dict(meta, arch=dict(meta["arch"], hidden=64))
    no_norm = {k: v for k, v in meta.items() if k != "normalization"}
    variants = {
        "foreign": (tensors, None),
        "bad-json": (tensors, {"ganforge-classifier": "{oops"}),
        "wrong-shapes": (tensors, {"ganforge-classifier": json.dumps(wider)}),
        "no-norm": (tensors, {"ganforge-classifier": json.dumps(no_norm)}),
        "missing-tensor": ({k: v for k, v in tensors.items() if not k.startswith("head")}, header),
    }
    for name, (weights, metadata) in variants.items():
        paths[name] = tmp_path / f"{name}.safetensors"
        save_file(weights, str(paths[name]), metadata=metadata)
    return paths


def test_corrupt_or_foreign_files_give_a_clear_error(toy_file, tmp_path):
    for name, path in corrupt_variants(toy_file, tmp_path).items():
        with pytest.raises(GanforgeError, match="not a ganforge classifier file") as info:
            clf.load_classifier(path)
        assert "ganforge train-classifier --data fashion-mnist --out PATH" in str(info.value), name


def test_newer_format_version_asks_for_an_upgrade(toy_file, tmp_path):
    from safetensors import safe_open

    with safe_open(str(toy_file), framework="pt") as handle:
        meta = json.loads(handle.metadata()["ganforge-classifier"])
    meta["format_version"] = 99
    path = tmp_path / "future.safetensors"
    save_file(
        load_file(str(toy_file)), str(path), metadata={"ganforge-classifier": json.dumps(meta)}
    )
    with pytest.raises(GanforgeError, match="Upgrade ganforge"):
        clf.load_classifier(path)


def test_bad_labels_are_rejected():
    x, y = patterns(3, seed=0)
    with pytest.raises(GanforgeError, match="labels must lie"):
        train_clf.train_on_tensors(x, y, x, y, num_classes=2, epochs=1, progress=False)
    with pytest.raises(GanforgeError, match="one label per image"):
        train_clf.train_on_tensors(x, y[:-1], x, y, num_classes=4, epochs=1, progress=False)


def test_holdout_split_is_stratified_deterministic_and_disjoint():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train, test = train_clf.holdout_split(y, 0.1, seed=0)
    again = train_clf.holdout_split(y, 0.1, seed=0)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])
    assert sorted(torch.cat([train, test]).tolist()) == list(range(100))
    assert torch.bincount(y[test]).tolist() == [5, 3, 2]


def test_random_shift_moves_each_image_at_most_max_shift():
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    shifted = train_clf.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(train_clf.random_shift(x, 0, torch.Generator()), x)
    rows, cols = torch.nonzero(shifted[:, 0] == 1.0)[:, 1:].T
    assert shifted.sum() == 64 and rows.sub(4).abs().max() <= 2 and cols.sub(4).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10


def write_class_folder(root: Path, per_class: int = 20) -> None:
    """Three classes of RGB 32x32 PNGs (red, green, blue noise), one subfolder each."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(["red", "green", "blue"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
            pixels[..., k] += 160
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")


def test_train_classifier_on_a_folder_holds_out_ten_percent(tmp_path):
    write_class_folder(tmp_path / "images")
    out = tmp_path / "out" / "folder.safetensors"
    source = f"folder:{tmp_path / 'images'}"
    result = train_clf.train_classifier(source, out, epochs=3, progress=False)
    assert result["train_examples"] == 54 and result["test_examples"] == 6
    assert result["sha256"] == file_digest(out) and result["path"] == str(out)
    loaded = clf.load_classifier(out)
    assert loaded.class_names == ["blue", "green", "red"]
    assert loaded.net.arch.in_channels == 3 and loaded.num_classes == 3
    assert loaded(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))[0].shape == (2, 128)
    assert result["test_accuracy"] == loaded.meta["test_accuracy"]


def test_input_size_sets_what_the_classifier_reads_and_the_protocol_names_any_resize(tmp_path):
    """--input-size 32: trained and evaluated on 32x32 images with no resize in between; the
    default 28 resizes them, and the evaluation protocol says so instead of "none"."""
    from ganforge.metrics.evaluate import evaluate

    write_class_folder(tmp_path / "images")
    source = f"folder:{tmp_path / 'images'}"
    out = tmp_path / "c32.safetensors"
    result = train_clf.train_classifier(source, out, epochs=3, input_size=32, progress=False)
    loaded = clf.load_classifier(out)
    assert result["input_size"] == 32 and loaded.input_size == 32
    assert loaded.net.arch.input_size == 32 and "3x32x32" in loaded.description
    x = torch.from_numpy(np.stack([
        np.asarray(Image.open(tmp_path / "images" / name / "000.png")).transpose(2, 0, 1)
        for name in ("blue", "green", "red")
    ]))
    labels = torch.arange(3)
    resizes = {}
    for size, path in ((32, out), (28, tmp_path / "c28.safetensors")):
        if size == 28:
            train_clf.train_classifier(source, path, epochs=1, progress=False)
        r = evaluate((x, labels), against=source, metrics=["cacc"],
                     features=f"classifier:{path}", n=3, progress=False,
                     cache_dir=tmp_path / "cache")
        resizes[size] = r["protocol"]["resize"]
    assert resizes == {32: "none", 28: "32x32 -> 28x28 antialiased bilinear"}
    with pytest.raises(GanforgeError, match="too small"):
        train_clf.train_classifier(source, tmp_path / "c4.safetensors", input_size=4)


def test_cli_input_size_reaches_the_classifier_file(tmp_path, capsys):
    from ganforge.cli import main

    write_class_folder(tmp_path / "images", per_class=4)
    out = tmp_path / "c16.safetensors"
    main(["train-classifier", "--data", f"folder:{tmp_path / 'images'}", "--out", str(out),
          "--epochs", "1", "--input-size", "16"])
    printed = capsys.readouterr().out  # epoch lines, then the result as JSON
    assert json.loads(printed[printed.index("{"):])["input_size"] == 16
    assert clf.load_classifier(out).input_size == 16


def test_unlabelled_sources_are_rejected(tmp_path):
    with pytest.raises(GanforgeError, match="labelled images"):
        train_clf.train_classifier("ring8", tmp_path / "x.safetensors", epochs=1, progress=False)


def test_fashion_mnist_slice_trains_well_above_chance(tmp_path):
    from ganforge.data.idx import FASHION_MNIST
    from ganforge.data.paths import locate

    if not locate(
        "fashion-mnist", FASHION_MNIST.files("train") + FASHION_MNIST.files("test"), None
    ):
        pytest.skip("Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "fm.safetensors"
    result = train_clf.train_classifier("fashion-mnist", out, epochs=1, limit=1500, progress=False)
    assert result["train_examples"] == 1500 and result["test_examples"] == 1500
    assert result["test_accuracy"] > 0.6  # chance is 0.1
    assert clf.load_classifier(out).class_names[0] == "T-shirt/top"
