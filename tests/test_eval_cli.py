"""`ganforge eval` on what `ganforge train` leaves: run dirs, with the run's own data protocol."""

import json

import pytest

from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.metrics import evaluate as ev
from ganforge.metrics.classifier import load_classifier, save_classifier
from ganforge.metrics.extract import extract
from ganforge.metrics.fid import fid
from ganforge.metrics.targets import fake_from_target
from ganforge.training.classifier import train_on_tensors
from ganforge.training.generator import load_run
from ganforge.training.loop import default_against

SMALL_RUN = [
    "--set", "data.limit=256", "--set", "data.resolution=16",
    "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "model.z_dim=16",
    "--set", "train.batch_size=32", "--set", "train.steps=4", "--no-progress",
]
METRICS = ["fid", "kid", "pr", "dc", "is", "modes"]


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    """A small classifier trained for one epoch on a Fashion-MNIST slice."""
    train = build_dataset(DataConfig(source="fashion-mnist", limit=1000))
    test = build_dataset(DataConfig(source="fashion-mnist", split="test", limit=200))
    extractor = train_on_tensors(train.x, train.labels, test.x, test.labels, num_classes=10,
                                 epochs=1, progress=False)
    path = tmp_path_factory.mktemp("clf") / "fm.safetensors"
    save_classifier(extractor, path)
    return path


def test_eval_of_a_run_uses_its_resolution_and_states_the_protocol(tmp_path, classifier_path,
                                                                   capsys):
    run = tmp_path / "run"
    assert main(["train", "configs/fashion_mnist_dcgan.yaml", "--out", str(run), *SMALL_RUN]) == 0
    out = tmp_path / "eval.json"
    code = main(["eval", str(run), "--features", f"classifier:{classifier_path}", "--n", "300",
                 "--metrics", ",".join(METRICS), "--json", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "FID" in printed and "protocol" in printed
    result = json.loads(out.read_text())
    # the same inputs straight through evaluate(): the run's generator, its data at 16x16
    loaded = load_run(run)
    against = default_against(loaded.config.data)
    direct = ev.evaluate(loaded.sampler.eval_fn(), against, METRICS, f"classifier:{classifier_path}",
                         n=300, seed=0, cache_dir=tmp_path / "cache", progress=False)
    scores = ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "is",
              "is_std", "modes_covered", "modes_total", "modes_kl", "mode_histogram"]
    assert sorted(result) == sorted(direct) == sorted([*scores, "protocol"])
    for key in scores:
        assert result[key] == direct[key], key  # JSON keeps floats exactly
    protocol = result["protocol"]
    assert protocol == {**direct["protocol"], "reference_cache": protocol["reference_cache"]}
    assert protocol["against"] == {"source": "fashion-mnist", "split": "test",
                                   "resolution": "16x16"}  # the run's size, not the source's 28
    assert protocol["shape"] == [1, 16, 16] and protocol["metrics"] == METRICS
    assert protocol["n_real"] == protocol["n_fake"] == 300 and protocol["seed"] == 0
    assert protocol["real_selection"] == "random 300 of 10000 (seed 0)"
    assert protocol["features"]["name"] == "classifier"
    assert protocol["features"]["digest"] == load_classifier(classifier_path).digest
    assert protocol["params"]["kid"]["subset_size"] == 300
    # FID once more by hand: the selected real images and the generator's, through the
    # classifier, into the pure Frechet distance
    real = build_dataset(against).x
    real = real[ev.select_indices(len(real), 300, 0, "real")[0]]
    extractor = load_classifier(classifier_path)
    fake = loaded.sampler.eval_fn()(300, 0)
    expected = fid(extract(extractor, real)[0], extract(extractor, fake)[0])
    assert result["fid"] == pytest.approx(expected, rel=1e-9) and expected > 0


def test_eval_real_vs_real_is_close_and_noise_is_far(tmp_path, classifier_path):
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (300, 28, 28, 1), dtype=np.uint8)
    np.save(tmp_path / "noise.npy", noise)

    def fid_of(target: str) -> float:
        out = tmp_path / "r.json"
        assert main(["eval", target, "--against", "fashion-mnist:test", "--features",
                     f"classifier:{classifier_path}", "--n", "300", "--metrics", "fid",
                     "--json", str(out), "--no-progress"]) == 0
        value = json.loads(out.read_text())["fid"]
        direct = ev.evaluate(fake_from_target(target), "fashion-mnist:test", ["fid"],
                             f"classifier:{classifier_path}", n=300, progress=False,
                             cache_dir=tmp_path / "cache")
        assert value == direct["fid"], target  # the CLI computes what evaluate() computes
        return value

    real = fid_of("real:fashion-mnist:train")
    assert real < fid_of(str(tmp_path / "noise.npy")) / 10


def test_eval_ring8_modes_of_a_run(tmp_path, capsys):
    run = tmp_path / "ring"
    main(["train", "configs/ring8.yaml", "--out", str(run), "--set", "train.steps=3",
          "--no-progress"])
    assert main(["eval", str(run), "--metrics", "modes", "--json", str(tmp_path / "m.json"),
                 "--no-progress"]) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["modes_total"] == 8 and result["protocol"]["n_fake"] == 2500
