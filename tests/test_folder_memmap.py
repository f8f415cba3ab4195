"""folder:PATH's decode cache: raw uint8 KEY.u8 memory-mapped, KEY.json sidecar written last."""

import errno
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data import folder as folderlib
from ganforge.data.transforms import match_channels
from ganforge.errors import GanforgeError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private user cache; returns its folders/ (where decode cache entries go)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ganforge" / "folders"


def mixed_folder(root: Path) -> Path:
    """Gray images first, then color ones (RGB, RGBA, palette), sizes differing, one corrupt:
    in sorted order a gray round is written before the first color image widens it."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (30 + i, 40), dtype=np.uint8)).save(root / f"a{i}.png")
    (root / "b_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)).save(root / "c_rgb.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)).save(root / "d_rgba.png")
    Image.new("P", (33, 17), color=3).save(root / "e_palette.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / "f_gray.png")
    return root


def gray_folder(root: Path, n: int = 6, size: int = 8) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def expected(files: list[Path], resolution: int, channels: int) -> torch.Tensor:
    """What the old in-memory decode gave: decode_image of each readable file, stacked."""
    return torch.cat([match_channels(folderlib.decode_image(f, resolution), channels)
                      for f in files])


def mapped_ranges(path: Path) -> list[tuple[int, int, str]]:
    """(start, end, permissions) of each map of `path` in this process (/proc/self/maps)."""
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == str(path.resolve()):
            start, end = (int(v, 16) for v in fields[0].split("-"))
            ranges.append((start, end, fields[1]))
    return ranges


def count_decodes(monkeypatch) -> list[Path]:
    """Record every decode_image call (and still decode)."""
    calls, decode = [], folderlib.decode_image

    def counted(path, resolution):
        calls.append(path)
        return decode(path, resolution)

    monkeypatch.setattr(folderlib, "decode_image", counted)
    return calls


def entry_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


@pytest.mark.parametrize("batch", [2, 256])  # 2: the first color image widens a written round
def test_pixels_equal_the_in_memory_decode(tmp_path, monkeypatch, cache, batch):
    root = mixed_folder(tmp_path / "imgs")
    monkeypatch.setattr(folderlib, "BATCH", batch)
    with pytest.warns(UserWarning, match="b_corrupt.png"):
        data = build_dataset(DataConfig(source=f"folder:{root}", resolution=16))
    readable = [f for f in folderlib.scan(root) if f.name != "b_corrupt.png"]
    assert data.x.dtype == torch.uint8 and data.x.shape == (7, 3, 16, 16)
    assert torch.equal(data.x, expected(readable, 16, 3))
    (u8,) = cache.glob("*.u8")
    assert u8.stat().st_size == data.x.numel()  # compacted: no row for the corrupt file

    with pytest.warns(UserWarning, match="b_corrupt.png"):
        gray = build_dataset(DataConfig(source=f"folder:{root}", resolution=16, channels=1))
    assert torch.equal(gray.x, expected(readable, 16, 1))  # data.channels: RGB to luminance


def test_second_build_decodes_nothing_and_maps_the_file(tmp_path, monkeypatch, cache):
    root = gray_folder(tmp_path / "imgs")
    cfg = DataConfig(source=f"folder:{root}", resolution=8)
    first = build_dataset(cfg)
    assert first.mapped and first.x.shape == (6, 1, 8, 8)
    (u8,) = cache.glob("*.u8")
    assert entry_files(cache) == [u8.with_suffix(".json").name, u8.name]
    meta = json.loads(u8.with_suffix(".json").read_text())
    assert meta["format"] == folderlib.CACHE_FORMAT and meta["shape"] == [6, 1, 8, 8]
    assert u8.read_bytes() == first.x.numpy().tobytes()  # raw N*C*H*W bytes, C-contiguous

    calls = count_decodes(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "array is not writable" warning from torch
        second = build_dataset(cfg)
    assert calls == []
    assert second.mapped and torch.equal(second.x, first.x)
    # x's bytes are the file's pages, mapped into this process (not a copy in memory),
    # shared and read-only: nothing can write the cache through x
    start, end = second.x.data_ptr(), second.x.data_ptr() + second.x.numel()
    holding = [perms for lo, hi, perms in mapped_ranges(u8) if lo <= start and end <= hi]
    assert holding and all(perms.startswith("r-") and perms.endswith("s") for perms in holding)
    assert not build_dataset(DataConfig(source="ring8")).mapped  # other sources: in memory


def rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def test_loading_a_large_entry_does_not_read_it_into_memory(cache):
    shape = (4096, 3, 64, 64)  # 48 MiB
    cache.mkdir(parents=True)
    size = int(np.prod(shape))
    step = 1 << 24
    chunks = (bytes([start // step]) * min(step, size - start) for start in range(0, size, step))
    with open(cache / "big.u8", "wb") as handle:
        handle.writelines(chunks)
    entry = {"format": folderlib.CACHE_FORMAT, "shape": list(shape), "labels": None,
             "meta": {"class_names": None, "skipped": []}}
    (cache / "big.json").write_text(json.dumps(entry))
    before = rss_bytes()
    x, labels, meta = folderlib.load_cache(cache, "big")
    grown = rss_bytes() - before
    assert x.shape == shape and labels is None and meta["skipped"] == []
    assert grown < size // 8, f"RSS grew by {grown} bytes loading a {size}-byte entry"
    assert int(x[-1, 0, 0, 0]) == (size - 1) // step  # the last page reads from the file
    assert x.is_contiguous()


def test_killed_decode_leaves_no_entry_and_the_next_build_decodes(tmp_path, monkeypatch, cache):
    root = gray_folder(tmp_path / "imgs")
    cfg = DataConfig(source=f"folder:{root}", resolution=8)
    monkeypatch.setattr(folderlib, "BATCH", 2)
    decode, seen = folderlib.decode_image, {}

    def killed(path, resolution):
        if path.name == "4.png":  # third round: two rounds are on disk, in a temp file
            seen["files"] = {p.name: p.stat().st_size for p in cache.iterdir()}
            raise KeyboardInterrupt  # not an Exception: try_decode does not catch it
        return decode(path, resolution)

    monkeypatch.setattr(folderlib, "decode_image", killed)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg)
    (temp, size), = seen["files"].items()  # decoded rounds go to disk, not memory
    assert re.fullmatch(r"\..+\.u8\..+\.tmp", temp) and size == 4 * 8 * 8
    assert entry_files(cache) == []  # the temp file removed, no entry

    monkeypatch.setattr(folderlib, "decode_image", decode)
    calls = count_decodes(monkeypatch)
    data = build_dataset(cfg)
    assert len(calls) == 6 and len(data) == 6 and data.mapped


def test_killed_before_the_sidecar_is_written_is_a_miss(tmp_path, monkeypatch, cache):
    root = gray_folder(tmp_path / "imgs")
    cfg = DataConfig(source=f"folder:{root}", resolution=8)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    write = folderlib.atomic_write_text
    monkeypatch.setattr(folderlib, "atomic_write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg)
    assert [p.suffix for p in cache.iterdir()] == [".u8"]  # the data file, no sidecar

    monkeypatch.setattr(folderlib, "atomic_write_text", write)
    calls = count_decodes(monkeypatch)
    data = build_dataset(cfg)
    assert len(calls) == 6 and data.mapped
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".u8"]


def test_an_entry_whose_data_file_is_short_is_decoded_again(tmp_path, monkeypatch, cache):
    root = gray_folder(tmp_path / "imgs")
    cfg = DataConfig(source=f"folder:{root}", resolution=8)
    first = build_dataset(cfg).x.clone()
    (u8,) = cache.glob("*.u8")
    os.truncate(u8, u8.stat().st_size - 1)
    calls = count_decodes(monkeypatch)
    assert torch.equal(build_dataset(cfg).x, first)
    assert len(calls) == 6 and u8.stat().st_size == first.numel()


def test_unreadable_files_are_skipped_and_reported_from_the_cache(tmp_path, monkeypatch, cache):
    root = mixed_folder(tmp_path / "imgs")
    strict = DataConfig(source=f"folder:{root}", resolution=8, strict=True)
    with pytest.raises(GanforgeError, match="b_corrupt.png"):
        build_dataset(strict)
    assert entry_files(cache) == []  # strict stops before anything is cached

    cfg = DataConfig(source=f"folder:{root}", resolution=8)
    with pytest.warns(UserWarning, match="b_corrupt.png"):
        assert len(build_dataset(cfg)) == 7
    calls = count_decodes(monkeypatch)
    with pytest.warns(UserWarning, match="b_corrupt.png"):  # a cache hit still names it
        assert len(build_dataset(cfg)) == 7
    assert calls == []

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.raises(GanforgeError, match="None of the 1 image files"), pytest.warns(UserWarning):
        build_dataset(DataConfig(source=f"folder:{bad}"))
    assert len(list(cache.glob("*.tmp"))) == 0 and len(list(cache.glob(".*"))) == 0


def class_folder(root: Path) -> Path:
    for i, cls in enumerate(["dog", "cat", "bird"]):
        (root / cls).mkdir(parents=True)
        for j in range(i + 2):
            Image.new("RGB", (12, 12), color=(40 * i, 10 * j, 0)).save(root / cls / f"{j}.png")
    (root / "cat" / "9_corrupt.png").write_bytes(b"nope")
    return root


def test_labels_and_class_names_survive_the_cache(tmp_path, monkeypatch):
    root = class_folder(tmp_path / "classes")
    cfg = DataConfig(source=f"folder:{root}", resolution=8)
    want = [0, 0, 0, 0, 1, 1, 1, 2, 2]  # bird/*, cat/* (less the corrupt one), dog/*
    with pytest.warns(UserWarning, match="9_corrupt.png"):
        first = build_dataset(cfg)
    calls = count_decodes(monkeypatch)
    with pytest.warns(UserWarning):
        second = build_dataset(cfg)
    assert calls == []
    for data in (first, second):
        assert data.labels.dtype == torch.int64 and data.labels.tolist() == want
        assert data.class_names == ["bird", "cat", "dog"] and data.num_classes == 3
        assert data.x[:, 0, 0, 0].tolist() == [80, 80, 80, 80, 40, 40, 40, 0, 0]


def test_limit_stops_decoding_and_keeps_the_first_readable_images(tmp_path, monkeypatch, cache):
    root = class_folder(tmp_path / "classes")
    monkeypatch.setattr(folderlib, "BATCH", 2)
    calls = count_decodes(monkeypatch)
    cfg = DataConfig(source=f"folder:{root}", resolution=8, limit=5)
    data = build_dataset(cfg)  # bird/0..3, then cat/0: the corrupt cat file is never reached
    assert len(calls) == 6  # of 10 files: three rounds of two, then it stops
    assert torch.equal(build_dataset(cfg).x, data.x) and len(calls) == 6  # cached
    assert data.labels.tolist() == [0, 0, 0, 0, 1] and data.x.shape == (5, 3, 8, 8)
    readable = sorted(root.glob("bird/*.png")) + [root / "cat" / "0.png"]
    assert torch.equal(data.x, expected(readable, 8, 3))
    (u8,) = cache.glob("*.u8")
    assert u8.stat().st_size == data.x.numel()  # the sixth decoded image was not written


def test_unwritable_cache_warns_and_runs_in_memory(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file" / "cache"))
    root = mixed_folder(tmp_path / "imgs")
    corrupt = pytest.warns(UserWarning, match="b_corrupt.png")
    with pytest.warns(UserWarning, match="Could not write the image cache"), corrupt:
        data = build_dataset(DataConfig(source=f"folder:{root}", resolution=8))
    readable = [f for f in folderlib.scan(root) if f.name != "b_corrupt.png"]
    assert not data.mapped and torch.equal(data.x, expected(readable, 8, 3))


@pytest.mark.parametrize("fail_at", [2, 3])  # 2: a gray round fails; 3: widening fails
def test_disk_full_part_way_keeps_every_image_in_memory(tmp_path, monkeypatch, cache, fail_at):
    root = mixed_folder(tmp_path / "imgs")
    monkeypatch.setattr(folderlib, "BATCH", 2)
    write, calls = folderlib.write_all, []

    def full(file, array):
        calls.append(len(array))
        if len(calls) == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(file, array)

    monkeypatch.setattr(folderlib, "write_all", full)
    corrupt = pytest.warns(UserWarning, match="b_corrupt.png")
    with pytest.warns(UserWarning, match="No space left on device"), corrupt:
        data = build_dataset(DataConfig(source=f"folder:{root}", resolution=8))
    readable = [f for f in folderlib.scan(root) if f.name != "b_corrupt.png"]
    assert not data.mapped and torch.equal(data.x, expected(readable, 8, 3))
    assert entry_files(cache) == []  # the temp file removed


def test_old_entries_and_orphans_are_pruned(tmp_path, monkeypatch, cache):
    cache.mkdir(parents=True)
    (cache / "old.safetensors").write_bytes(b"v2 entry")
    (cache / "orphan.u8").write_bytes(b"a data file whose sidecar was never written")
    monkeypatch.setattr(folderlib, "CACHE_ENTRIES", 1)
    a = build_dataset(DataConfig(source=f"folder:{gray_folder(tmp_path / 'a')}", resolution=8))
    b = build_dataset(DataConfig(source=f"folder:{gray_folder(tmp_path / 'b', 3)}", resolution=8))
    (u8,) = cache.glob("*.u8")  # only the newest entry is left
    assert entry_files(cache) == [u8.with_suffix(".json").name, u8.name]
    assert u8.stat().st_size == b.x.numel()
    assert a.x.shape == (6, 1, 8, 8) and int(a.x.sum()) > 0  # a's map outlives its pruned file


def test_training_reads_batches_from_the_mapped_file_without_a_copy(tmp_path):
    from ganforge import config as configlib
    from ganforge.training.loop import Trainer
    from ganforge.training.rundir import RunDir

    root = gray_folder(tmp_path / "imgs", n=40, size=8)
    config = configlib.load(None, [
        f"data.source=folder:{root}", "data.resolution=8", "model.arch=mlp",
        "model.g_hidden=[16]", "model.d_hidden=[16]", "train.batch_size=8", "train.steps=3",
        "log.progress=false",
    ])
    build_dataset(config.data)  # decode once: the trainer's dataset is then a cache hit
    run = RunDir(tmp_path / "run")
    run.prepare_new()
    trainer = Trainer(config, run)
    assert trainer.dataset.mapped and trainer.data_device.type == "cpu"
    x = trainer.fields["x"]
    assert x.data_ptr() == trainer.dataset.x.data_ptr()  # the mapping itself, not a copy
    batch = trainer.next_batch()
    assert batch["x"].shape == (8, 1, 8, 8) and batch["x"].min() >= -1
    assert trainer.fit(progress=False).step == 3
