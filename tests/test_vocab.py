"""The tokenizer and vocabulary (ganforge.text.vocab) and DataInfo's caption metadata."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge.data.dataset import DataInfo, Dataset
from ganforge.errors import GanforgeError
from ganforge.text import PAD, SPECIALS, UNK, Vocabulary, words


def test_words_lowercase_hyphens_and_apostrophes():
    assert words("A T-shirt, dark!") == ["a", "t-shirt", "dark"]
    assert words("men's -coat- 'quoted' x_y 3rd--") == ["men's", "coat", "quoted", "x", "y", "3rd"]
    assert words("Café  au\tlait -- ") == ["café", "au", "lait"]
    assert words("?!") == []


def test_build_orders_by_frequency_then_alphabet():
    vocab = Vocabulary.build(["b a c", "a b", "A d", "e"])
    # a: 3, b: 2, then c, d, e once each (alphabetical)
    assert vocab.words == list(SPECIALS) + ["a", "b", "c", "d", "e"]
    assert len(vocab) == 7
    assert Vocabulary.build(["e", "A d", "a b", "b a c"]) == vocab  # order of captions: no matter


def test_encode_decode_round_trip_unknown_and_cut():
    vocab = Vocabulary.build(["a dark coat", "a light dress"])
    ids, unknown, cut = vocab.encode("A dark dress", 5)
    assert ids == [vocab.index["a"], vocab.index["dark"], vocab.index["dress"]]
    assert unknown == [] and cut is False
    assert vocab.decode(ids) == "a dark dress"
    ids, unknown, cut = vocab.encode("a huge parka, a huge coat", 4)
    assert ids == [vocab.index["a"], UNK, UNK, vocab.index["a"]]
    assert unknown == ["huge", "parka"]  # distinct, first seen first; the cut "coat" not listed
    assert cut is True
    assert vocab.decode(ids + [PAD, PAD]) == "a <unk> <unk> a"


def test_encode_batch_pads_and_reports():
    vocab = Vocabulary.build(["a dark coat"])
    ids, unknown, cut = vocab.encode_batch(["dark coat", "a pale coat here", "zebra"], 3)
    assert ids.dtype == torch.int64 and ids.shape == (3, 3)
    assert ids[0].tolist() == [vocab.index["dark"], vocab.index["coat"], PAD]
    assert ids[1].tolist() == [vocab.index["a"], UNK, vocab.index["coat"]]
    assert ids[2].tolist() == [UNK, PAD, PAD]
    assert unknown == ["pale", "zebra"] and cut == 1
    assert vocab.decode(ids[0]) == "dark coat"  # a tensor decodes too
    with pytest.raises(GanforgeError, match="data.max_words"):
        vocab.encode_batch(["a"], 0)


def test_meta_round_trip_and_refusals():
    vocab = Vocabulary.build(["a dark coat", "a coat"])
    meta = json.loads(json.dumps(vocab.to_meta()))
    assert Vocabulary.from_meta(meta) == vocab
    assert Vocabulary.from_meta(meta).index["coat"] == vocab.index["coat"]
    with pytest.raises(GanforgeError, match="not written by ganforge"):
        Vocabulary.from_meta(["a", "coat"])
    with pytest.raises(GanforgeError, match="repeats"):
        Vocabulary.from_meta(list(SPECIALS) + ["a", "a"])


def test_data_info_round_trips_vocabulary_and_old_meta_has_none():
    vocab = Vocabulary.build(["a dark coat"])
    text = torch.zeros(2, 1, 7, dtype=torch.int64)
    data = Dataset(
        x=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), labels=None, name="t", kind="image",
        captions=[["a dark coat"], ["a coat"]], vocabulary=vocab, text=text,
    )
    info = data.info()
    assert info.fields == ("x", "text") and data.field("text") is text
    assert info.vocabulary == vocab.words and info.max_words == 7
    back = DataInfo.from_meta(json.loads(json.dumps(info.to_meta())))
    assert back == info
    old = info.to_meta()
    del old["vocabulary"], old["max_words"]
    assert DataInfo.from_meta(old).vocabulary is None and DataInfo.from_meta(old).max_words is None
    plain = Dataset(x=data.x, labels=None, name="t", kind="image")
    assert "text" not in plain.fields and plain.info().vocabulary is None
