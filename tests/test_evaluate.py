"""Evaluation drivers with in-memory datasets and a tiny extractor (no downloads, no Inception)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import evaluate as ev
from ganforge.metrics import refstats, targets
from ganforge.metrics.conditional import conditional_accuracy, intra_fid
from ganforge.metrics.extract import extract


class ToyExtractor:
    """A small conv net in eval mode: features (N, 8) and 4-class logits."""

    name = "toy"
    digest = "0" * 64
    description = "toy conv net, no resize"
    num_classes = 4

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, stride=2),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
            torch.nn.Flatten(),
        ).eval()
        self.calls = 0

    def __call__(self, images: torch.Tensor):
        self.calls += images.shape[0]
        x = images.float() / 127.5 - 1
        features = self.net(x[:, :1])
        return features, features[:, :4] * 5


def _images(n: int, seed: int, shape=(1, 12, 12)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)


def _ring8() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1)


SOURCES = {
    ("toy", "test"): Dataset(_images(60, 1), None, "toy", "image"),
    ("toy", "train"): Dataset(_images(80, 2), None, "toy", "image"),
    ("stacked-toy", "test"): Dataset(_images(30, 3, (3, 12, 12)), None, "stacked", "image"),
    ("ring8", "test"): Dataset(_ring8().repeat(40, 1), None, "ring8", "vector"),
}


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """Route data and extractor look-ups to in-memory toys; cache in tmp_path."""
    built: list[DataConfig] = []
    extractor = ToyExtractor()

    def build(config: DataConfig):
        built.append(config)
        return SOURCES[(config.source, config.split)]

    monkeypatch.setattr(ev, "_build_dataset", build)
    monkeypatch.setattr(ev, "load_extractor", lambda features, device="cpu": extractor)
    mixtures = {"ring8": SimpleNamespace(centers=_ring8(), sigma=0.01)}
    monkeypatch.setattr(ev, "_mixture", mixtures.get)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return SimpleNamespace(built=built, extractor=extractor, cache=tmp_path / "cache")


def _run(toy, fake, metrics=("fid", "kid", "pr", "dc"), against="toy", **kwargs):
    kwargs.setdefault("n", 60)
    return ev.evaluate(
        fake,
        against,
        list(metrics),
        "classifier:toy",
        cache_dir=toy.cache,
        progress=False,
        **kwargs,
    )


def test_real_against_itself_gives_perfect_scores_and_a_full_protocol(toy):
    result = _run(toy, SOURCES[("toy", "test")].x, metrics=["fid", "kid", "pr", "dc", "is"])
    assert abs(result["fid"]) < 1e-6
    assert abs(result["kid"]) < 1e-2
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0
    protocol = result["protocol"]
    assert protocol["against"] == {"source": "toy", "split": "test", "resolution": "12x12"}
    assert protocol["features"]["digest"] == "0" * 64
    assert protocol["n_real"] == protocol["n_fake"] == 60 and protocol["seed"] == 0
    assert protocol["params"]["pr"] == {"k": 3} and protocol["params"]["dc"] == {"k": 5}
    assert protocol["params"]["is"] == {"splits": 10}
    assert json.loads(json.dumps(result)) == result  # JSON-ready


def test_sampler_gets_n_and_seed(toy):
    calls = []

    def sampler(n, seed):
        calls.append((n, seed))
        return _images(n, 9)

    result = _run(toy, sampler, metrics=["fid"], n=20, seed=5)
    assert calls == [(20, 5)]
    assert result["protocol"]["real_selection"] == "random 20 of 60 (seed 5)"


def test_reference_cache_hit_corrupt_and_stale(toy):
    fake = _images(60, 4)
    assert _run(toy, fake)["protocol"]["reference_cache"] == "miss"
    calls = toy.extractor.calls
    second = _run(toy, fake)
    assert second["protocol"]["reference_cache"] == "hit"
    assert toy.extractor.calls == calls + 60  # only the fakes were extracted again
    tensors = next(toy.cache.glob("*.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:-10])  # truncated
    third = _run(toy, fake)
    assert third["protocol"]["reference_cache"].startswith("rebuilt (corrupt")
    assert third["fid"] == pytest.approx(second["fid"], rel=1e-12)
    sidecar = next(toy.cache.glob("*.json"))
    meta = json.loads(sidecar.read_text())
    meta["key"]["digest"] = "other"
    sidecar.write_text(json.dumps(meta))
    assert _run(toy, fake)["protocol"]["reference_cache"].startswith("rebuilt (stale")
    sidecar.write_text("{not json")
    assert _run(toy, fake)["protocol"]["reference_cache"].startswith("rebuilt (corrupt")
    assert _run(toy, fake)["protocol"]["reference_cache"] == "hit"


def test_cache_key_depends_on_n_and_seed(toy):
    _run(toy, _images(60, 4), metrics=["fid"], n=30)
    _run(toy, _images(60, 4), metrics=["fid"], n=30, seed=1)
    _run(toy, _images(60, 4), metrics=["fid"], n=40)
    assert len(list(toy.cache.glob("*.safetensors"))) == 3


def test_default_cache_dir_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert refstats.default_cache_dir() == tmp_path / "ganforge" / "refstats"


def test_too_few_samples_and_too_many_asked(toy):
    with pytest.raises(GanforgeError, match="at least 2 samples"):
        _run(toy, _images(5, 0), metrics=["fid"], n=1)
    with pytest.raises(GanforgeError, match="at least 4 samples"):
        _run(toy, _images(5, 0), metrics=["pr"], n=3)
    with pytest.raises(GanforgeError, match="only 60 samples"):
        _run(toy, _images(100, 0), metrics=["fid"], n=100)
    with pytest.raises(GanforgeError, match="only 10 samples"):
        _run(toy, _images(10, 0), metrics=["fid"], n=20)


def test_mismatched_image_shapes_name_both(toy):
    with pytest.raises(GanforgeError) as info:
        _run(toy, _images(60, 0, (3, 64, 64)), metrics=["fid"])
    assert "(3, 64, 64)" in str(info.value) and "(1, 12, 12)" in str(info.value)
    with pytest.raises(GanforgeError, match="to_uint8"):
        _run(toy, torch.zeros(60, 1, 12, 12), metrics=["fid"])


def test_unknown_metric(toy):
    with pytest.raises(GanforgeError, match="choose from"):
        _run(toy, _images(60, 0), metrics=["fidd"])


def test_unknown_or_incomplete_extractor():
    with pytest.raises(GanforgeError, match="Unknown feature extractor"):
        ev.load_extractor("vgg")
    with pytest.raises(GanforgeError, match="needs a path"):
        ev.load_extractor("classifier")


def test_is_and_modes_need_class_logits(toy):
    toy.extractor.num_classes = None
    with pytest.raises(GanforgeError, match="classifier:PATH"):
        _run(toy, _images(60, 0), metrics=["is"])


class PixelClassExtractor:
    """Hand-made classifier: the class of an image is its first pixel // 64 (4 classes), with
    perfectly confident logits (or uniform ones), so IS and mode counts have closed forms."""

    name = "pixel-class"
    digest = "1" * 64
    description = "class = first pixel // 64"
    num_classes = 4

    def __init__(self, confident: bool = True) -> None:
        self.confident = confident

    def __call__(self, images: torch.Tensor):
        classes = images[:, 0, 0, 0].long() // 64
        logits = 100.0 * torch.nn.functional.one_hot(classes, 4).float()  # softmax: one-hot
        return images.float().flatten(1)[:, :8], logits if self.confident else logits * 0


def _class_images(classes: list[int] | list[tuple[int, ...]]) -> torch.Tensor:
    """Constant images (N, C, 12, 12) whose channel c holds 64 * classes[i][c] + 10."""
    table = torch.tensor(classes).view(len(classes), -1)
    return (64 * table + 10).to(torch.uint8)[:, :, None, None].expand(-1, -1, 12, 12).clone()


@pytest.mark.parametrize("classes, is_expected, covered", [
    ([0, 2] * 30, 2.0, 2),  # every split of 6 holds 3 + 3: IS = K = 2
    ([0] * 30 + [2] * 30, 1.0, 2),  # each split holds one class only: IS = 1 per split
    ([0, 1, 3] * 20, 3.0, 3),  # 2 + 2 + 2 per split: IS = 3
])
def test_class_modes_and_is_closed_forms(toy, monkeypatch, classes, is_expected, covered):
    monkeypatch.setattr(ev, "load_extractor", lambda features, device="cpu": PixelClassExtractor())
    result = _run(toy, _class_images(classes), metrics=["modes", "is"])
    assert result["modes_total"] == 4 and result["modes_covered"] == covered
    assert result["modes_kl"] == pytest.approx(math.log(4 / covered), rel=1e-12)
    assert result["is"] == pytest.approx(is_expected, rel=1e-12)  # exp(KL(p(y|x) || p(y)))
    assert result["is_std"] == pytest.approx(0.0, abs=1e-12)  # every split has the same IS


def test_is_of_uniform_predictions_is_one_end_to_end(toy, monkeypatch):
    extractor = PixelClassExtractor(confident=False)
    monkeypatch.setattr(ev, "load_extractor", lambda features, device="cpu": extractor)
    result = _run(toy, _class_images([0, 1, 2, 3] * 15), metrics=["is"])
    assert result["is"] == pytest.approx(1.0, abs=1e-12) and result["is_std"] < 1e-12


def test_stacked_modes_count_ordered_channel_triples(toy, monkeypatch):
    monkeypatch.setattr(ev, "load_extractor", lambda features, device="cpu": PixelClassExtractor())
    # (0, 1, 2) and (0, 2, 1) are two modes: a mode id that ignores channel order or reads one
    # channel only would merge them
    fake = _class_images([(0, 1, 2)] * 10 + [(0, 2, 1)] * 10 + [(3, 3, 3)] * 10)
    stacked = _run(toy, fake, metrics=["modes"], against="stacked-toy", n=30)
    assert stacked["modes_total"] == 64 and stacked["modes_covered"] == 3
    assert stacked["modes_kl"] == pytest.approx(math.log(64 / 3), rel=1e-12)
    assert stacked["protocol"]["params"]["modes"]["form"] == "stacked"


def test_ring8_modes_on_raw_points(toy):
    fake = _ring8()[:7].repeat(10, 1)
    result = _run(toy, fake, metrics=["modes"], against="ring8", n=70)
    assert result["modes_covered"] == 7 and result["hq_percent"] == 100.0
    assert result["modes_kl"] == pytest.approx(math.log(8 / 7), rel=1e-6)
    assert result["protocol"]["n_real"] == 0
    both = _run(toy, _ring8().repeat(40, 1), metrics=["fid", "pr", "modes"], against="ring8", n=320)
    assert abs(both["fid"]) < 1e-6 and both["precision"] == 1.0
    assert both["protocol"]["features"]["name"] == "raw"
    with pytest.raises(GanforgeError, match=r"\(N, 2\)"):
        _run(toy, torch.zeros(70, 3), metrics=["modes"], against="ring8", n=70)


def test_default_n_follows_protocol(toy):
    with pytest.raises(GanforgeError, match="gave only 70 samples"):
        ev.evaluate(_ring8()[:7].repeat(10, 1), "ring8", ["modes"], progress=False)
    result = ev.evaluate(_ring8().repeat(313, 1), "ring8", ["modes"], progress=False)
    assert result["protocol"]["n_fake"] == 2500


def test_parse_against():
    assert ev.parse_against("fashion-mnist") == DataConfig(source="fashion-mnist", split="test")
    assert ev.parse_against("mnist:train").split == "train"
    assert ev.parse_against("folder:/data/x").source == "folder:/data/x"
    assert ev.parse_against("folder:/data/x:train") == DataConfig("folder:/data/x", "train")
    config = DataConfig(source="mnist", resolution=32)
    assert ev.parse_against(config) is config


def test_fake_from_target(toy, tmp_path):
    sampler = targets.fake_from_target("real:toy:train")
    samples = sampler(10, 0)
    assert samples.shape == (10, 1, 12, 12) and sampler.description == "real:toy:train"
    assert torch.equal(sampler(80, 0), SOURCES[("toy", "train")].x)
    result = _run(toy, sampler, metrics=["fid"])
    assert result["protocol"]["fake"] == "real:toy:train"
    with pytest.raises(GanforgeError, match="image folder"):
        targets.fake_from_target(str(tmp_path / "missing"))


def test_fake_from_target_uses_data_sources(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr(ev, "_build_dataset", lambda c: built.append(c) or SOURCES[("toy", "test")])
    (tmp_path / "s.npz").write_bytes(b"")
    targets.fake_from_target(str(tmp_path))(5, 0)
    targets.fake_from_target(str(tmp_path / "s.npz"))(5, 0)
    assert [c.source for c in built] == [f"folder:{tmp_path}", f"npz:{Path(tmp_path) / 's.npz'}"]


def test_format_table_shows_values_and_protocol(toy):
    result = _run(toy, _images(60, 4), metrics=["fid", "kid", "pr"])
    table = ev.format_table(result)
    for text in ("FID", "KID", "±", "precision", "protocol", "toy:test", "n_real 60", "k=3"):
        assert text in table


def test_toy_extractor_features_independent_of_batch_size():
    images = _images(23, 6)
    extractor = ToyExtractor()
    whole, logits = extract(extractor, images, batch_size=23)
    for batch_size in (1, 5, 8):
        parts, part_logits = extract(extractor, images, batch_size=batch_size)
        assert torch.allclose(parts, whole, atol=1e-5) and torch.allclose(part_logits, logits)


# ---------------------------------------------------------------------------------------------
# with the real data module (local files only, nothing downloaded)


def test_folder_and_npy_targets_through_data_sources(monkeypatch, tmp_path):
    from PIL import Image

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "samples"
    folder.mkdir()
    images = _images(6, 11)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:03d}.png")
    sampler = targets.fake_from_target(str(folder))
    assert sampler.description == f"folder:{folder}" and sampler.count() == 6
    assert torch.equal(sampler(6, 0), images)  # native 12x12 grayscale, sorted order
    subset = ev.select_indices(6, 4, 1, "x")[0]  # fewer: a seeded subset, with seed + 1
    assert torch.equal(sampler(4, 0), images[subset])
    array = tmp_path / "samples.npy"
    np_images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C) uint8
    np.save(array, np_images)
    from_array = targets.fake_from_target(str(array))
    assert torch.equal(from_array(6, 0), images) and torch.equal(from_array(4, 0), images[subset])
    assert from_array.description == f"npy:{array}"


def test_empty_folder_and_npy_targets_fail_clearly_when_called(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "samples"
    folder.mkdir()
    empty_folder = targets.fake_from_target(str(folder))  # nothing is read before a call
    with pytest.raises(GanforgeError, match=r"no images \(\.png.*under"):
        empty_folder(1, 0)
    array = tmp_path / "s.npy"
    array.write_bytes(b"")
    with pytest.raises(GanforgeError, match=r"Cannot read .*s\.npy' as a npy file"):
        targets.fake_from_target(str(array))(1, 0)
    np.save(array, np.zeros((0, 12, 12, 1), np.uint8))
    with pytest.raises(GanforgeError, match=r"shape \(0, 12, 12, 1\).*at least one example"):
        targets.fake_from_target(str(array))(1, 0)


def test_ring8_end_to_end_with_data_module(monkeypatch):
    from ganforge.data import MIXTURES

    mixture = MIXTURES["ring8"]
    fake = mixture.sample(2500, torch.Generator().manual_seed(0))[0]
    result = ev.evaluate(fake, "ring8", ["modes", "pr"], progress=False)
    assert result["modes_covered"] == 8 and result["hq_percent"] > 98
    assert result["modes_kl"] < 0.01 and result["precision"] > 0.9
    assert result["protocol"]["params"]["modes"]["sigma"] == mixture.sigma


def test_fashion_mnist_train_vs_test_with_toy_features(monkeypatch, tmp_path):
    config = DataConfig(source="fashion-mnist", split="test", download=False)
    try:
        ev._build_dataset(config)
    except GanforgeError:
        pytest.skip("Fashion-MNIST not available locally")
    monkeypatch.setattr(ev, "load_extractor", lambda features, device="cpu": ToyExtractor())
    train = targets.fake_from_target("real:fashion-mnist:train")
    noise = _images(500, 0, (1, 28, 28))
    kwargs = {"metrics": ["fid", "pr"], "n": 500, "cache_dir": tmp_path, "progress": False}
    real = ev.evaluate(train, config, features="classifier:toy", **kwargs)
    fake = ev.evaluate(noise, config, features="classifier:toy", **kwargs)
    assert real["fid"] < fake["fid"] and real["precision"] > fake["precision"]


# ---------------------------------------------------------------------------------------------
# class-conditional samples: (x, labels) samplers, cacc and ifid

LABELLED = Dataset(_images(60, 21), torch.arange(60) % 4, "labelled-toy", "image", num_classes=4)
SOURCES[("labelled-toy", "test")] = LABELLED
BLOB_POINTS = torch.randn(80, 2, generator=torch.Generator().manual_seed(0))
SOURCES[("blobs", "test")] = Dataset(
    BLOB_POINTS + (torch.arange(80) % 4)[:, None], torch.arange(80) % 4, "blobs", "vector", 4
)


def _labelled_sampler(images: torch.Tensor, labels: torch.Tensor):
    """A conditional-style sampler: fake(n, seed) -> (x, labels), with a label_description."""

    def fake(n, seed):
        return images[:n], labels[:n]

    fake.description = "toy conditional"
    fake.label_description = "balanced: n/4 per class, shuffled with seed 0"
    return fake


def test_cacc_and_ifid_match_the_pure_functions(toy):
    fake_x = _images(60, 22)
    fake_y = torch.randperm(60, generator=torch.Generator().manual_seed(0)) % 4
    sampler = _labelled_sampler(fake_x, fake_y)
    result = _run(
        toy, sampler, metrics=["cacc", "ifid", "fid"], against="labelled-toy", n=40, seed=3
    )
    idx, selection = ev.select_indices(60, 40, 3, "x")
    assert result["protocol"]["real_selection"] == selection
    extractor = ToyExtractor()
    real_feats = extract(extractor, LABELLED.x[idx])[0]
    fake_feats, fake_logits = extract(extractor, fake_x[:40])
    expected_ifid = intra_fid(real_feats, LABELLED.labels[idx], fake_feats, fake_y[:40], 4)
    expected_cacc = conditional_accuracy(fake_logits.argmax(1), fake_y[:40], 4)
    assert result["ifid"] == pytest.approx(expected_ifid["ifid"], rel=1e-9)
    assert result["ifid_per_class"] == pytest.approx(expected_ifid["ifid_per_class"], rel=1e-9)
    assert result["cacc"] == pytest.approx(expected_cacc["cacc"], rel=1e-12)
    assert result["cacc_per_class"] == pytest.approx(expected_cacc["cacc_per_class"])
    # labels aligned with the selection: the unselected order gives another value
    misaligned = intra_fid(real_feats, LABELLED.labels[:40], fake_feats, fake_y[:40], 4)
    assert misaligned["ifid"] != pytest.approx(result["ifid"], rel=1e-6)
    protocol = result["protocol"]
    assert protocol["fake_labels"] == "balanced: n/4 per class, shuffled with seed 0"
    assert protocol["params"]["ifid"]["classes"] == 4
    assert protocol["params"]["cacc"]["classes"] == 4


def test_ifid_reuses_cached_reference_features_with_labels(toy):
    sampler = _labelled_sampler(_images(60, 23), torch.arange(60) % 4)
    first = _run(toy, sampler, metrics=["ifid"], against="labelled-toy", n=48, seed=1)
    calls = toy.extractor.calls
    second = _run(toy, sampler, metrics=["ifid"], against="labelled-toy", n=48, seed=1)
    assert first["protocol"]["reference_cache"] == "miss"
    assert second["protocol"]["reference_cache"] == "hit"
    assert toy.extractor.calls == calls + 48  # only the fakes were extracted again
    assert second["ifid"] == first["ifid"]


def test_real_against_itself_with_labels_gives_zero_ifid_and_perfect_table(toy):
    sampler = _labelled_sampler(LABELLED.x, LABELLED.labels)
    result = _run(toy, sampler, metrics=["ifid", "cacc"], against="labelled-toy")
    assert abs(result["ifid"]) < 1e-6
    table = ev.format_table(result)
    for text in ("intra-FID", "cond. accuracy", "fake labels", "balanced: n/4"):
        assert text in table
    assert "ifid_per_class" not in table and "[" not in table.split("protocol")[0]


def test_labelled_sampler_works_for_unconditional_metrics(toy):
    x = SOURCES[("toy", "test")].x
    plain = _run(toy, x, metrics=["fid"])
    labelled = _run(toy, _labelled_sampler(x, torch.arange(60) % 4), metrics=["fid"])
    assert labelled["fid"] == plain["fid"]
    assert "fake_labels" not in plain["protocol"] and "fake_labels" in labelled["protocol"]


def test_conditional_metrics_without_fake_labels_say_what_to_do(toy):
    for metric in ("cacc", "ifid"):
        with pytest.raises(GanforgeError, match="task.name=conditional.*samples, labels"):
            _run(toy, _images(60, 0), metrics=[metric], against="labelled-toy")


def test_ifid_needs_a_labelled_reference(toy):
    calls = []

    def sampler(n, seed):
        calls.append(n)
        return _images(n, 0), torch.arange(n) % 4

    with pytest.raises(
        GanforgeError, match="'ifid'.*labels in the reference toy:test.*subfolder per class"
    ):
        _run(toy, sampler, metrics=["ifid"], against="toy")
    assert calls == []  # fails before drawing any sample


def test_cacc_needs_class_logits_and_labels_in_range(toy):
    sampler = _labelled_sampler(_images(60, 0), torch.arange(60) % 4)
    bad = _labelled_sampler(_images(60, 0), torch.arange(60) % 5)
    with pytest.raises(GanforgeError, match=r"lie in \[0, 4\)"):
        _run(toy, bad, metrics=["cacc"], against="labelled-toy")
    with pytest.raises(GanforgeError, match="labels of shape"):
        _run(
            toy,
            lambda n, seed: (_images(n, 0), torch.zeros(n - 1)),
            metrics=["cacc"],
            against="labelled-toy",
        )
    toy.extractor.num_classes = None
    with pytest.raises(GanforgeError, match="'cacc' needs class probabilities"):
        _run(toy, sampler, metrics=["cacc"], against="labelled-toy")


def test_draw_fake_accepts_tensors_samplers_and_tuples():
    x, y = _images(10, 0), torch.arange(10) % 2
    assert ev.draw_fake(x, 4, 0)[1] is None
    got_x, got_y = ev.draw_fake(lambda n, seed: (x, y), 4, 0)
    assert torch.equal(got_x, x[:4]) and torch.equal(got_y, y[:4])
    assert torch.equal(ev.draw_fake((x, y), 6, 0)[1], y[:6])


def test_ifid_on_labelled_vectors_uses_raw_points(toy):
    points, labels = BLOB_POINTS, SOURCES[("blobs", "test")].labels
    fake = points.flip(0) + labels[:, None]
    result = _run(toy, (fake, labels), metrics=["ifid", "fid"], against="blobs", n=80)
    expected = intra_fid(points + labels[:, None], labels, fake, labels, 4)
    assert result["ifid"] == pytest.approx(expected["ifid"], rel=1e-9)
    assert result["protocol"]["features"]["name"] == "raw"
    with pytest.raises(GanforgeError, match="Conditional accuracy needs images"):
        _run(toy, (fake, labels), metrics=["cacc"], against="blobs", n=80)


def _png_folder(folder: Path, images: torch.Tensor) -> Path:
    from PIL import Image

    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:03d}.png")
    return folder


def test_two_plain_folders_compare_at_native_size_with_an_honest_split(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(ev, "load_extractor", lambda features, device="cpu": ToyExtractor())
    a = _png_folder(tmp_path / "a", _images(20, 1, (1, 28, 28)))
    b = _png_folder(tmp_path / "b", _images(20, 2, (1, 28, 28)))
    result = ev.evaluate(  # no n: all images of the two folders, as pytorch-fid compares
        targets.fake_from_target(str(a)), f"folder:{b}", ["fid"], "classifier:toy",
        cache_dir=tmp_path / "cache", progress=False,
    )
    protocol = result["protocol"]
    assert protocol["n_fake"] == protocol["n_real"] == 20
    assert protocol["shape"] == [1, 28, 28] and math.isfinite(result["fid"])
    assert "28x28" in protocol["against"]["resolution"]
    assert protocol["against"]["split"] != "test"  # a folder has no test split
    assert ":test" not in ev.format_table(result)
    same = ev.evaluate(
        targets.fake_from_target(str(a)), f"folder:{a}", ["fid"], "classifier:toy", n=20,
        cache_dir=tmp_path / "cache", progress=False,
    )
    assert abs(same["fid"]) < 1e-6
