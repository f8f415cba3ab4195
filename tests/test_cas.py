"""Classification Accuracy Score (training/cas.py): synthetic classes, a Fashion-MNIST slice."""

from __future__ import annotations

from itertools import cycle

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.classifier_net import ClassifierArch
from ganforge.training import cas
from ganforge.training import classifier as trainer

TRAIN = DataConfig(source="quadrants", split="train")
TEST = DataConfig(source="quadrants", split="test")
SMALL = ClassifierArch(in_channels=1, num_classes=4, widths=[8, 16, 32], hidden=32)  # fast


def quadrants(counts: list[int], seed: int) -> Dataset:
    """Four easy classes of noisy 28x28 images: class k is a bright quadrant k."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=gen)]
    x = torch.rand(len(labels), 1, 28, 28, generator=gen) * 0.4
    for i, k in enumerate(labels.tolist()):
        r, c = divmod(k, 2)
        x[i, :, r * 14 : r * 14 + 14, c * 14 : c * 14 + 14] += 0.6
    images = (x * 255).clamp(0, 255).to(torch.uint8)
    return Dataset(images, labels, "quadrants", "image", 4, ["tl", "tr", "bl", "br"])


SOURCES = {
    ("quadrants", "train"): quadrants([150, 90, 60, 300], seed=0),
    ("quadrants", "test"): quadrants([50, 50, 50, 50], seed=1),
    ("ring", "test"): Dataset(torch.zeros(8, 2), None, "ring", "vector"),
}


@pytest.fixture
def data(monkeypatch):
    """Route CAS's data look-ups to the in-memory synthetic sources."""
    monkeypatch.setattr(cas, "build_dataset", lambda c: SOURCES[(c.source, c.split)])
    return SOURCES[("quadrants", "train")]


def real_generator(train: Dataset, shift: int = 0):
    """fake_labelled that returns real training images: for class k, the next image of class
    (k + shift) mod K in the dataset's order (cycling when a class runs out)."""
    calls = []
    classes = int(train.labels.max()) + 1

    def fake(labels: torch.Tensor, seed: int) -> torch.Tensor:
        calls.append((labels.clone(), seed))
        pools = [cycle(torch.nonzero(train.labels == k).flatten().tolist()) for k in range(classes)]
        return torch.stack([train.x[next(pools[(k + shift) % classes])] for k in labels.tolist()])

    fake.description = f"real images of class label+{shift}"
    fake.calls = calls
    return fake


def run(fake, tmp_path, **kwargs):
    """CAS against the synthetic test split with the small architecture, cached in tmp_path."""
    kwargs.setdefault("epochs", 2)
    kwargs.setdefault("arch", SMALL)
    return cas.classification_accuracy_score(
        fake, TEST, train_source=TRAIN, cache_dir=tmp_path / "cas", **kwargs
    )


def test_real_images_as_generated_give_exactly_the_real_ceiling(data, tmp_path):
    result = run(real_generator(data), tmp_path)
    assert result["cas_real"] > 0.9  # easy classes; chance is 0.25
    assert result["cas"] == result["cas_real"]  # same images, labels, seed and training


def test_wrong_class_images_score_near_zero(data, tmp_path):
    result = run(real_generator(data, shift=1), tmp_path)
    assert result["cas_real"] > 0.9 and result["cas"] < 0.1


def test_real_ceiling_is_cached_and_keyed(data, tmp_path, monkeypatch):
    calls = []
    train_on_tensors = trainer.train_on_tensors

    def counting(*args, **kwargs):
        calls.append(kwargs["source"])
        return train_on_tensors(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_on_tensors", counting)
    first = run(real_generator(data), tmp_path, epochs=1)
    assert calls == ["cas: real", "cas: real images of class label+0"]
    assert "cache miss" in first["protocol"]["real_ceiling"]
    second = run(real_generator(data, shift=1), tmp_path, epochs=1)
    assert calls[2:] == ["cas: real images of class label+1"]  # the ceiling was not retrained
    assert second["cas_real"] == first["cas_real"]
    assert "cache hit" in second["protocol"]["real_ceiling"]
    run(real_generator(data), tmp_path, epochs=1, seed=1)
    run(real_generator(data), tmp_path, epochs=1, n=300)
    run(real_generator(data), tmp_path, epochs=2, n=300)
    assert calls.count("cas: real") == 4  # another seed, n or epochs: retrained
    assert len(list((tmp_path / "cas").glob("real-*.json"))) == 4


def test_default_cache_is_under_the_user_cache_dir(data, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cas.classification_accuracy_score(
        real_generator(data), TEST, train_source=TRAIN, epochs=1, n=40
    )
    assert len(list((tmp_path / "xdg" / "ganforge" / "cas").glob("real-*.json"))) == 1


def test_requested_labels_follow_the_training_balance(data, tmp_path):
    fake = real_generator(data)
    result = run(fake, tmp_path, epochs=1, seed=3)
    labels, seed = fake.calls[0]
    assert seed == 3 and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [150, 90, 60, 300]  # the training set's counts
    assert not torch.equal(labels, labels.sort().values)  # shuffled
    protocol = result["protocol"]
    assert protocol["n_train"] == 600 and protocol["label_counts"] == [150, 90, 60, 300]
    assert protocol["test"]["n"] == 200 and protocol["epochs"] == 1 and protocol["seed"] == 3
    assert protocol["classifier"]["arch"]["num_classes"] == 4
    assert "per-class counts" in protocol["label_balance"]
    half = real_generator(data)
    run(half, tmp_path, epochs=1, n=300)
    assert torch.bincount(half.calls[0][0]).tolist() == [75, 45, 30, 150]  # proportional


def test_class_counts_scale_with_largest_remainders():
    assert cas.class_counts([50, 30, 20, 100], 200) == [50, 30, 20, 100]
    assert cas.class_counts([50, 30, 20, 100], 100) == [25, 15, 10, 50]
    assert cas.class_counts([50, 30, 20, 100], 7) == [2, 1, 1, 3]
    assert sum(cas.class_counts([3, 3, 3], 5)) == 5


def test_real_for_labels_takes_each_class_in_dataset_order():
    x = torch.arange(6).view(6, 1, 1, 1).to(torch.uint8)
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    picked = cas.real_for_labels(x, y, torch.tensor([0, 1, 1, 0]))
    assert picked.flatten().tolist() == [1, 0, 2, 3]


def test_arch_given_or_read_from_a_classifier_file(data, tmp_path):
    small = ClassifierArch(in_channels=1, num_classes=4, hidden=32)
    result = run(real_generator(data), tmp_path, epochs=1, n=40, arch=small)
    assert result["protocol"]["classifier"]["arch"]["hidden"] == 32
    from ganforge.metrics.classifier import save_classifier

    extractor = trainer.train_on_tensors(
        data.x[:40],
        data.labels[:40],
        data.x[:8],
        data.labels[:8],
        num_classes=4,
        epochs=1,
        progress=False,
        arch=ClassifierArch(1, 4, widths=[8, 16], hidden=16),
    )
    path = tmp_path / "clf.safetensors"
    save_classifier(extractor, path)
    result = run(real_generator(data), tmp_path, epochs=1, n=40, arch=str(path))
    assert result["protocol"]["classifier"]["arch"]["widths"] == [8, 16]
    with pytest.raises(GanforgeError, match="3 classes but the data has 4"):
        run(real_generator(data), tmp_path, arch=ClassifierArch(1, 3))


def test_clear_errors(data, tmp_path):
    with pytest.raises(GanforgeError, match="n <= 600"):
        run(real_generator(data), tmp_path, n=601)
    with pytest.raises(GanforgeError, match="labelled images"):
        cas.classification_accuracy_score(
            real_generator(data), DataConfig("ring", "test"), train_source=TRAIN
        )
    with pytest.raises(GanforgeError, match="one uint8 image per label"):
        run(lambda labels, seed: data.x[:3], tmp_path, epochs=1, n=40)


def test_fashion_mnist_slice(tmp_path):
    from ganforge.data import build_dataset

    train_cfg = DataConfig("fashion-mnist", "train", limit=1000, download=False)
    test_cfg = DataConfig("fashion-mnist", "test", limit=500, download=False)
    try:
        train = build_dataset(train_cfg)
    except GanforgeError:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    kwargs = {"train_source": train_cfg, "epochs": 2, "cache_dir": tmp_path}
    same = cas.classification_accuracy_score(real_generator(train), test_cfg, **kwargs)
    assert same["cas"] == same["cas_real"] > 0.5  # chance is 0.1
    assert same["protocol"]["test"]["n"] == 500
    assert same["protocol"]["classifier"]["arch"]["widths"] == [32, 64, 128]  # the default


def test_the_default_classifier_reads_images_at_the_datas_own_resolution(monkeypatch, tmp_path):
    """A 14x14 run's CAS classifier reads 14x14 images, not a resize to 28 (the default
    classifier of train-classifier)."""
    small = {
        k: Dataset(d.x[:, :, ::2, ::2].contiguous(), d.labels, d.name, d.kind, 4, d.class_names)
        for k, d in SOURCES.items() if k[0] == "quadrants"
    }
    monkeypatch.setattr(cas, "build_dataset", lambda c: small[(c.source, c.split)])
    train = small[("quadrants", "train")]
    result = cas.classification_accuracy_score(
        real_generator(train), TEST, train_source=TRAIN, cache_dir=tmp_path / "cas", epochs=1
    )
    assert result["protocol"]["classifier"]["arch"]["input_size"] == 14
    assert result["cas"] == result["cas_real"] > 0.9
