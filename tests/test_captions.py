"""Caption data: fashion-mnist-captions (measure, captions, held-out prompts), folder captions,
and the text field built by data/registry.finish."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data import fashion_captions as fc
from ganforge.data.captions import caption_tokens
from ganforge.data.transforms import resize_square
from ganforge.errors import GanforgeError
from ganforge.text import PAD, SPECIALS, Vocabulary, words

FASHION = "/usr/share/datasets/fashion-mnist"
needs_fashion = pytest.mark.skipif(
    not Path(FASHION, "train-labels-idx1-ubyte.gz").is_file(), reason="needs Fashion-MNIST"
)


def fashion(limit: int, split: str = "train", **kwargs) -> object:
    """fashion-mnist-captions, the first `limit` images, read from the system copy."""
    cfg = DataConfig(source="fashion-mnist-captions", split=split, limit=limit, dir=FASHION,
                     download=False, **kwargs)
    return build_dataset(cfg)


def phrases(groups, side: int) -> list[list[list[str]]]:
    """Per value, its synonyms (training side 0 or held-out side 1) as word lists."""
    return [[words(p) for p in group[side]] for group in groups]


def contains(seq: list[str], part: list[str]) -> bool:
    """Whether `part` occurs as consecutive words in `seq`."""
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def named(caption: str, groups) -> set[int]:
    """The values (class, brightness or size indices) whose synonyms the caption states."""
    seq = words(caption)
    return {
        value for side in (0, 1) for value, options in enumerate(phrases(groups, side))
        if any(contains(seq, option) for option in options)
    }


# ---------------------------------------------------------------------------------------------
# measure


def square(side: int, inner: int, level: int, frame: int = 28) -> torch.Tensor:
    """One (1, 1, frame, frame) uint8 image: a centred inner x inner square at `level`."""
    x = torch.zeros(1, 1, frame, frame, dtype=torch.uint8)
    start = (frame - inner) // 2
    x[..., start : start + inner, start : start + inner] = level
    return x if side == 1 else x.expand(-1, side, -1, -1).contiguous()


def test_measure_hand_made_images():
    images = torch.cat([
        square(1, 8, 90),  # a small dim square: dark, small
        square(1, 26, 250),  # a large bright square: light, large
        square(1, 26, 165),  # large, medium (its half-lit rim lowers the mean)
        torch.zeros(1, 1, 28, 28, dtype=torch.uint8),  # all black: dark, small
    ])
    brightness, size = fc.measure(images)
    assert brightness.tolist() == [0, 2, 1, 0]
    assert size.tolist() == [0, 1, 1, 0]
    rgb_b, rgb_s = fc.measure(images.expand(-1, 3, -1, -1))  # RGB: the same as gray
    assert rgb_b.tolist() == brightness.tolist() and rgb_s.tolist() == size.tolist()


def test_measure_ignores_faint_noise():
    clean = square(1, 10, 220)
    noise = torch.randint(0, 25, clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = (clean.int() + noise.int()).clamp(0, 255).to(torch.uint8)
    assert [t.tolist() for t in fc.measure(noisy)] == [[2], [0]]  # still light and small


@needs_fashion
def test_measure_is_resolution_invariant_on_real_images():
    x = fashion(1000).x
    b28, s28 = fc.measure(x)
    b32, s32 = fc.measure(resize_square(x, 32))
    agree = ((b28 == b32) & (s28 == s32)).float().mean().item()
    assert agree >= 0.95
    # every bin is used on real images, none takes nearly everything
    assert torch.bincount(b28, minlength=3).min() > 150
    assert torch.bincount(s28, minlength=2).min() > 300


# ---------------------------------------------------------------------------------------------
# fashion-mnist-captions


@needs_fashion
def test_fashion_captions_state_class_and_measured_attributes():
    data = fashion(3000)
    assert data.fields == ("x", "y", "text") and data.class_names == list(fc.CLASS_NAMES)
    assert data.text.shape == (3000, fc.CAPTIONS_PER_IMAGE, 24)
    brightness, size = fc.measure(data.x)
    for i in range(0, 3000, 7):
        assert len(set(data.captions[i])) == fc.CAPTIONS_PER_IMAGE
        for caption in data.captions[i]:
            assert named(caption, fc.GARMENTS) == {int(data.labels[i])}, caption
            assert named(caption, fc.SHADES) == {int(brightness[i])}, caption
            assert named(caption, fc.EXTENTS) == {int(size[i])}, caption
    # tokens decode back to the captions (all words known: the vocabulary has every one)
    assert data.vocabulary.decode(data.text[5, 2]) == " ".join(words(data.captions[5][2]))


@needs_fashion
def test_fashion_captions_are_deterministic_and_independent_of_limit():
    a, b, big = fashion(300), fashion(300), fashion(600)
    assert a.captions == b.captions and torch.equal(a.text, b.text)
    assert a.vocabulary == b.vocabulary
    assert big.captions[:300] == a.captions
    assert len({text for texts in a.captions for text in texts}) > 300  # varied, not one each


@needs_fashion
def test_held_out_words_and_templates_never_in_training_captions():
    data = fashion(5000)
    known = set(data.vocabulary.words)
    blanks = {w for t in fc.TEMPLATES for w in words(t.format(g="", b="", s=""))} | {"an"}
    trained = {w for groups in (fc.GARMENTS, fc.SHADES, fc.EXTENTS) for train, _ in groups
               for phrase in train for w in words(phrase)}
    assert known <= set(SPECIALS) | blanks | trained  # the vocabulary has nothing else
    known |= blanks | trained  # every word a training caption can hold, seen or not
    for groups in (fc.GARMENTS, fc.SHADES, fc.EXTENTS):
        for _, held in groups:
            for phrase in held:
                assert not set(words(phrase)) & known, phrase
    training = {text for texts in data.captions for text in texts}
    for template in fc.HELD_OUT_TEMPLATES:
        for garment, shade, extent in [("coat", "dark", "small"), ("bag", "pale", "big")]:
            assert fc.render(template, garment, shade, extent) not in training
    # ...and they do appear in the evaluation prompts
    syn = fc.eval_prompts(120, seed=3, held_out="synonyms")
    new = [set(words(text)) - known for text in syn.texts]
    assert all(new), "every synonyms prompt holds a word the training vocabulary lacks"
    for text, y in zip(syn.texts, syn.labels.tolist()):
        held = [words(p) for p in fc.GARMENTS[y][1]]
        assert any(contains(words(text), p) for p in held), text
    tpl = fc.eval_prompts(120, seed=3, held_out="templates")
    used = {fc.HELD_OUT_TEMPLATES.index(t) for t in fc.HELD_OUT_TEMPLATES
            if any(fc.render(t, *parts) in tpl.texts for parts in all_parts(tpl))}
    assert used == set(range(len(fc.HELD_OUT_TEMPLATES)))
    assert not set(tpl.texts) & training


def all_parts(prompts: fc.Prompts) -> list[tuple[str, str, str]]:
    """Every training (garment, shade, extent) for the prompts' requested values."""
    out = []
    for y, b, s in zip(prompts.labels.tolist(), prompts.brightness.tolist(),
                       prompts.size.tolist()):
        out += [(g, c, e) for g in fc.GARMENTS[y][0] for c in fc.SHADES[b][0]
                for e in fc.EXTENTS[s][0]]
    return out


def test_eval_prompts_balanced_stated_and_seeded():
    prompts = fc.eval_prompts(130, seed=1, held_out="templates")
    assert len(prompts.texts) == 130 and prompts.labels.dtype == torch.int64
    combos = prompts.labels * 6 + prompts.brightness * 2 + prompts.size
    counts = torch.bincount(combos, minlength=60)
    assert counts.min() == 2 and counts.max() == 3 and int(counts.sum()) == 130
    for text, y, b, s in zip(prompts.texts, prompts.labels.tolist(),
                             prompts.brightness.tolist(), prompts.size.tolist()):
        assert named(text, fc.GARMENTS) == {y} and named(text, fc.SHADES) == {b}, text
        assert named(text, fc.EXTENTS) == {s}, text
    again = fc.eval_prompts(130, seed=1, held_out="templates")
    assert again.texts == prompts.texts and torch.equal(again.labels, prompts.labels)
    other = fc.eval_prompts(130, seed=2, held_out="templates")
    assert other.texts != prompts.texts
    assert not torch.equal(prompts.labels[:60], torch.sort(prompts.labels[:60]).values)
    with pytest.raises(GanforgeError, match="templates, synonyms"):
        fc.eval_prompts(10, seed=0, held_out="words")


# ---------------------------------------------------------------------------------------------
# the text field


def test_caption_tokens_pads_missing_slots():
    captions = [["a dark coat", "a coat"], ["a light dress"]]
    vocab = Vocabulary.build(t for texts in captions for t in texts)
    ids, unknown, cut = caption_tokens(captions, vocab, 3)
    assert ids.shape == (2, 2, 3) and unknown == [] and cut == 0
    assert vocab.decode(ids[0, 1]) == "a coat" and vocab.decode(ids[1, 0]) == "a light dress"
    assert (ids[1, 1] == PAD).all()


@needs_fashion
def test_long_captions_warn_once_naming_the_key():
    with pytest.warns(UserWarning, match="data.max_words=4") as record:
        data = fashion(50, max_words=4)
    assert len([w for w in record if "max_words" in str(w.message)]) == 1
    assert data.text.shape == (50, fc.CAPTIONS_PER_IMAGE, 4)
    assert (data.text[:, :, 0] != PAD).all()


# ---------------------------------------------------------------------------------------------
# folder captions


def png(path: Path, level: int) -> None:
    """A small gray PNG of one level (the level tells images apart after decoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), level, dtype=np.uint8)).save(path)


def images(root: Path, names: list[str]) -> Path:
    """PNGs at root/NAME, levels 10, 20, 30 ... in the given order."""
    for k, name in enumerate(names):
        png(root / name, 10 * (k + 1))
    return root


def load(root: Path, **kwargs):
    """build_dataset on folder:root at 8 pixels."""
    return build_dataset(DataConfig(source=f"folder:{root}", resolution=8, **kwargs))


def by_level(data) -> dict[int, list[str]]:
    """Pixel level -> the example's captions (checks alignment of captions with images)."""
    return {int(x[0, 0, 0]): texts for x, texts in zip(data.x, data.captions)}


def test_folder_metadata_jsonl_several_captions_aligned(tmp_path):
    root = images(tmp_path / "f", ["b.png", "sub/a.png", "c.png"])
    lines = [
        {"file_name": "sub/a.png", "text": "a pale coat"},
        {"file_name": "b.png", "text": ["a dark bag", "a black bag"]},
        {"file_name": "./sub/a.png", "text": "a white coat"},
        {"file_name": "c.png", "text": "the third one"},
    ]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    data = load(root)
    assert by_level(data) == {
        10: ["a dark bag", "a black bag"],
        20: ["a pale coat", "a white coat"],
        30: ["the third one"],
    }
    assert data.fields == ("x", "text") and data.text.shape == (3, 2, 24)
    row = next(i for i in range(3) if int(data.x[i, 0, 0, 0]) == 30)
    assert data.vocabulary.decode(data.text[row, 0]) == "the third one"
    assert (data.text[row, 1] == PAD).all()
    assert data.info().vocabulary == data.vocabulary.words


def test_folder_metadata_csv_and_txt_beside_images(tmp_path):
    root = images(tmp_path / "csv", ["x.png", "y.png"])
    (root / "metadata.csv").write_text(
        'file_name,text\nx.png,"a coat, dark"\ny.png,a bag\nx.png,another coat\n'
    )
    assert by_level(load(root)) == {10: ["a coat, dark", "another coat"], 20: ["a bag"]}
    txt = images(tmp_path / "txt", ["p.png", "q/r.png"])
    (txt / "p.txt").write_text("first caption\n\n  second caption  \n")
    (txt / "q" / "r.txt").write_text("nested caption")
    (txt / "notes.txt").write_text("no image has this stem")
    assert by_level(load(txt)) == {
        10: ["first caption", "second caption"], 20: ["nested caption"],
    }


def test_folder_caption_table_naming_missing_images(tmp_path):
    root = images(tmp_path / "f", ["a.png"])
    rows = [{"file_name": "a.png", "text": "ok"}] + [
        {"file_name": f"gone{k}.png", "text": "x"} for k in range(7)
    ]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(GanforgeError, match=r"7 image\(s\).*'gone0.png'.*and 2 more") as error:
        load(root)
    assert "gone5.png" not in str(error.value) and "file_name" in str(error.value)


def test_folder_uncaptioned_images_dropped_with_warning_or_error(tmp_path):
    root = images(tmp_path / "f", ["a.png", "b.png", "c.png"])
    (root / "b.txt").write_text("only b has one")
    with pytest.warns(UserWarning, match="2 of the 3 images.*'a.png'.*'c.png'"):
        data = load(root)
    assert len(data) == 1 and by_level(data) == {20: ["only b has one"]}
    with pytest.raises(GanforgeError, match="2 of the 3 images.*data.strict"):
        load(root, strict=True)


def test_folder_captions_stay_aligned_past_unreadable_files_and_cache(tmp_path):
    root = images(tmp_path / "f", ["a.png", "c.png", "d.png"])
    (root / "b.png").write_bytes(b"not a png")
    for name in "abcd":
        (root / f"{name}.txt").write_text(f"caption {name}")
    for _ in range(2):  # decoded, then from the cache
        with pytest.warns(UserWarning, match="b.png"):
            data = load(root)
        assert by_level(data) == {10: ["caption a"], 20: ["caption c"], 30: ["caption d"]}
    with pytest.warns(UserWarning, match="b.png"):
        limited = load(root, limit=2)
    assert by_level(limited) == {10: ["caption a"], 20: ["caption c"]}
    assert limited.text.shape[0] == 2


@pytest.mark.parametrize(
    "line, why",
    [
        ("{not json", "not valid JSON"),
        ('{"text": "no name"}', "lacks 'file_name'"),
        ('{"file_name": "a.png"}', "lacks 'text'"),
        ('{"file_name": "a.png", "text": 3}', "neither a string"),
        ('["a.png", "text"]', "not a JSON object"),
    ],
)
def test_folder_bad_metadata_line_names_the_line(tmp_path, line, why):
    root = images(tmp_path / "f", ["a.png"])
    (root / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "ok"}\n\n' + line)
    with pytest.raises(GanforgeError, match=f"line 3: .*{why}"):
        load(root)


def test_folder_bad_csv_header_and_two_tables(tmp_path):
    root = images(tmp_path / "f", ["a.png"])
    (root / "metadata.csv").write_text("name,caption\na.png,hi\n")
    with pytest.raises(GanforgeError, match="file_name and text"):
        load(root)
    (root / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "ok"}\n')
    with pytest.raises(GanforgeError, match="both metadata.jsonl and metadata.csv"):
        load(root)


def test_folder_without_captions_is_unchanged(tmp_path):
    root = images(tmp_path / "f", ["a.png", "b.png"])
    (root / "readme.txt").write_text("not a caption: no image is called readme")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load(root)
    assert data.captions is None and data.text is None and data.vocabulary is None
    assert data.fields == ("x",) and len(data) == 2
    assert data.info().vocabulary is None and data.info().max_words is None
