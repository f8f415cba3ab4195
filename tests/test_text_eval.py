"""Evaluating text-to-image runs: prompts in held-out phrasings for real test images' class and
attributes, attribute accuracy and R-precision of the samples made for them, clear errors."""

import pytest
import torch

from clihelp import user_error
from ganforge import config as configlib
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data.fashion_captions import measure
from ganforge.errors import GanforgeError
from ganforge.metrics.text import attribute_accuracy
from ganforge.training.evaluation import evaluate_sampler
from ganforge.training.generator import load_run
from ganforge.training.loop import train
from ganforge.training.text_eval import fashion_prompts, split_prompts, text_scores

TEST = DataConfig(source="fashion-mnist-captions", split="test", limit=300)


def test_fashion_prompts_describe_real_test_images_in_held_out_words():
    prompts = fashion_prompts(TEST, 120, 0, "synonyms")
    data = build_dataset(TEST)
    rows = torch.randint(len(data), (120,), generator=torch.Generator().manual_seed(0))
    brightness, size = measure(data.x[rows])
    assert torch.equal(prompts.labels, data.labels[rows])
    assert torch.equal(prompts.brightness, brightness) and torch.equal(prompts.size, size)
    train_words = set(build_dataset(DataConfig(source="fashion-mnist-captions",
                                               limit=3000)).vocabulary.words)
    for text in prompts.texts:  # every prompt has a word training never used
        assert any(w not in train_words for w in text.replace(",", " ").split()), text
    # real images against prompts made of their own attributes: all right; shuffled: not
    own = attribute_accuracy(data.x[rows], prompts.brightness, prompts.size)
    assert own["attr_acc"] == 1.0
    shuffled = attribute_accuracy(data.x[rows], prompts.brightness.roll(1), prompts.size)
    assert shuffled["attr_acc"] < 0.7


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("t2i") / "run"
    sets = ["task.name=text", "data.source=fashion-mnist-captions", "data.limit=256",
            "model.g_width=4", "model.d_width=4", "model.z_dim=8", "model.text_dim=8",
            "model.c_dim=4", "train.steps=4", "train.batch_size=16", "train.num_samples=8",
            "log.progress=false"]
    torch.set_num_threads(1)
    train(configlib.load(None, sets), run, progress=False)
    return run


@pytest.mark.parametrize("phrasing", ["templates", "synonyms"])
def test_attr_is_scored_on_the_samples_made_for_the_prompts(tiny_run, phrasing):
    loaded = load_run(tiny_run)
    result = evaluate_sampler(loaded.sampler, loaded.config.data, against=TEST,
                              metrics=["attr"], n=60, phrasing=phrasing, progress=False)
    prompts = fashion_prompts(TEST, 60, 0, phrasing)
    by_hand = loaded.sampler.eval_fn(prompts=lambda n, s: (prompts.texts[:n], None))(60, 0)
    expected = attribute_accuracy(by_hand, prompts.brightness, prompts.size)
    assert result["attr_acc"] == expected["attr_acc"]
    assert result["size_acc"] == expected["size_acc"]
    assert phrasing in result["protocol"]["prompts"]


def test_text_metrics_need_the_right_run_and_data(tiny_run, tmp_path, capsys):
    loaded = load_run(tiny_run)
    with pytest.raises(GanforgeError, match="train-matcher"):
        evaluate_sampler(loaded.sampler, loaded.config.data, against=TEST,
                         metrics=["rprec"], n=20, progress=False)
    ring = tmp_path / "ring"
    train(configlib.load(None, ["data.source=ring8", "model.arch=mlp", "train.steps=2",
                                "log.progress=false"]), ring, progress=False)
    message = user_error(capsys, "eval", ring, "--metrics", "attr")
    assert "task.name=text" in message


def test_split_prompts_draw_each_images_own_captions():
    prompts = split_prompts(TEST, 50, 3)
    data = build_dataset(TEST)
    rows = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))[:50]
    for text, row in zip(prompts.texts, rows.tolist(), strict=True):
        assert text in data.captions[row]
    assert torch.equal(prompts.labels, data.labels[rows])


def test_attr_needs_fashion_captions():
    prompts = split_prompts(TEST, 20, 0)
    prompts.brightness = None
    with pytest.raises(GanforgeError, match="fashion-mnist-captions"):
        text_scores(torch.zeros(20, 1, 28, 28, dtype=torch.uint8), prompts, ["attr"], None,
                    0, "cpu")
