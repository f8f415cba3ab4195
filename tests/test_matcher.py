"""The image-text matcher: shapes, training that beats chance, the file, the CLI verb."""

import json

import pytest
import torch

from clihelp import run_cli, user_error
from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.nets.matcher import Matcher, MatcherArch
from ganforge.training.matcher import (
    load_matcher,
    save_matcher,
    sidecar,
    train_matcher,
)

TINY = {"dim": 32, "width": 8, "embed_dim": 16, "text_width": 32}
DATA = DataConfig(source="fashion-mnist-captions", limit=2000)


@pytest.mark.parametrize("resolution", [16, 28, 64, 128])
def test_codes_are_unit_length_for_every_resolution(resolution):
    torch.manual_seed(0)
    net = Matcher(MatcherArch(3, resolution, vocab_size=10, **TINY))
    images = torch.rand(2, 3, resolution, resolution) * 2 - 1
    tokens = torch.tensor([[2, 3, 0, 0], [4, 5, 6, 0]])
    for codes in (net.image_codes(images), net.text_codes(tokens)):
        assert codes.shape == (2, 32)
        assert torch.allclose(codes.norm(dim=1), torch.ones(2))


def test_wrong_image_shape_is_refused():
    net = Matcher(MatcherArch(1, 28, vocab_size=10, **TINY))
    with pytest.raises(GanforgeError, match="channels and resolution"):
        net.image_codes(torch.zeros(2, 3, 28, 28))
    with pytest.raises(GanforgeError, match="16 to 128"):
        Matcher(MatcherArch(1, 8, vocab_size=10))


@pytest.fixture(scope="module")
def trained():
    """(matcher, vocabulary, report) after 400 steps on 2,000 training pairs (~10 s)."""
    return train_matcher(DATA, steps=400, batch_size=64, seed=0, lr=5e-3, arch=TINY)


def test_brief_training_beats_chance_by_far(trained):
    _, _, report = trained
    # chance is 1/100. Measured 0.184 +- 0.025 (2,000 test images); the ceiling of a perfect
    # class+brightness+size matcher is ~0.36 here (same-meaning captions in other words are
    # drawn as mismatches), so 0.1 leaves margin yet fails a matcher that learns nothing
    assert report["real_r_precision"] > 0.1
    assert report["test_examples"] == 2000 and report["train_examples"] == 2000
    assert report["test_split"] == "test"


def test_training_is_deterministic_and_seeded():
    def run(seed):
        return train_matcher(DataConfig(source="fashion-mnist-captions", limit=300), steps=30,
                             batch_size=16, seed=seed, arch=TINY)

    (first, _, report), (again, _, report2) = run(0), run(0)
    for (name, a), b in zip(first.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert report["real_r_precision"] == report2["real_r_precision"]
    other = run(1)[0]
    assert not torch.equal(first.text_proj.weight, other.text_proj.weight)


def test_save_load_round_trip(trained, tmp_path):
    net, vocabulary, report = trained
    path = tmp_path / "m.safetensors"
    save_matcher(path, net, vocabulary, report)
    meta = json.loads(sidecar(path).read_text())
    assert meta["vocabulary"] == vocabulary.to_meta() and meta["max_words"] == 24
    assert meta["image_shape"] == [1, 28, 28]
    assert meta["report"]["real_r_precision"] == report["real_r_precision"]
    loaded = load_matcher(path)
    assert loaded.real_r_precision == report["real_r_precision"]
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    texts = ["a dark small bag", "a big pale bootie", "a zebra-striped unicorn"]
    tokens = vocabulary.encode_batch(texts, 24)[0]
    with torch.no_grad():
        want_images = net.image_codes(images.float() / 127.5 - 1)
        want_texts = net.text_codes(tokens)
    assert torch.equal(loaded.image_codes(images), want_images)
    assert torch.equal(loaded.score_texts(texts), want_texts)
    # unknown words read as UNK: the unicorn caption is "a" + two UNKs
    assert tokens[2, :3].tolist() == [vocabulary.index["a"], 1, 1]


def test_damaged_files_are_refused_with_the_fix(trained, tmp_path):
    net, vocabulary, report = trained
    with pytest.raises(GanforgeError, match="no such file.*train-matcher"):
        load_matcher(tmp_path / "none.safetensors")
    path = tmp_path / "m.safetensors"
    save_matcher(path, net, vocabulary, report)
    sidecar(path).write_text("{not json")
    with pytest.raises(GanforgeError, match="not valid JSON.*train-matcher"):
        load_matcher(path)
    save_matcher(path, net, vocabulary, report)
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)  # weights changed under the JSON
    with pytest.raises(GanforgeError, match="SHA-256 differs"):
        load_matcher(path)
    sidecar(path).unlink()
    with pytest.raises(GanforgeError, match="metadata file .* is missing"):
        load_matcher(path)


def test_uncaptioned_source_is_refused():
    with pytest.raises(GanforgeError, match="captioned images.*fashion-mnist-captions"):
        train_matcher(DataConfig(source="ring8"), steps=1)


def test_cli_writes_both_files_and_refuses_overwrite(capsys, tmp_path):
    out = tmp_path / "cli.safetensors"
    args = ["train-matcher", "--data", "fashion-mnist-captions", "--out", out, "--steps", 5,
            "--batch-size", 8, "--set", "data.limit=200", "--no-progress", "--device", "cpu"]
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0
    assert out.is_file() and sidecar(out).is_file()
    assert "real-pair R-precision on 200 test images" in stdout
    assert json.loads(sidecar(out).read_text())["report"]["data"]["limit"] == 200
    err = user_error(capsys, *args)
    assert "--overwrite" in err
    code, _, _ = run_cli(capsys, *args, "--overwrite")
    assert code == 0
    err = user_error(capsys, *args, "--overwrite", "--set", "train.steps=3")
    assert "data.KEY=VALUE" in err
