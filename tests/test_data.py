"""Data sources: IDX parsing/lookup/download, image folders, numpy arrays, 2D mixtures."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import math
import socket
import struct
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import MIXTURES, build_dataset, idx, list_sources, paths
from ganforge.data import folder as folderlib
from ganforge.errors import GanforgeError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache dir, no $GANFORGE_* settings, no proxies: tests touch only tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("GANFORGE_DATA", "GANFORGE_MNIST_URL", "GANFORGE_FASHION_MNIST_URL"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def no_system_copies(monkeypatch):
    """Hide /usr/share/datasets so 'not found anywhere' can be tested on any machine."""
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIRS", [])


def idx_bytes(array: np.ndarray) -> bytes:
    """An array as IDX bytes (uint8 or int32)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def tiny_mnist(n: int = 6, seed: int = 0) -> dict[str, bytes]:
    """Gzipped IDX files of a tiny MNIST-like dataset: n train and n test images."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels))
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# ---------------------------------------------------------------------------------------------
# IDX


def test_parse_idx_gzipped_and_plain(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    (tmp_path / "a").write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "a.gz"), array)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "a"), array)
    wide = np.array([1, -2, 70000], dtype=">i4")
    np.testing.assert_array_equal(idx.parse_idx(idx_bytes(wide)), wide)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda gz, raw: gz[: len(gz) // 2], "truncated or corrupt"),  # cut gzip stream
        (lambda gz, raw: raw[:-5], "needs"),  # IDX body too short
        (lambda gz, raw: b"\x12\x34" + raw[2:], "bad magic"),
        (lambda gz, raw: b"", "empty file"),
    ],
    ids=["truncated-gzip", "short-body", "bad-magic", "empty"],
)
def test_corrupt_idx_is_a_clear_error(tmp_path, damage, message):
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(gzip.compress(raw), raw))
    with pytest.raises(GanforgeError, match=message) as info:
        idx.read_idx(path)
    assert str(path) in str(info.value)


def test_images_and_labels_swapped_is_a_clear_error(tmp_path, no_system_copies):
    files = tiny_mnist()
    files["train-labels-idx1-ubyte.gz"], files["train-images-idx3-ubyte.gz"] = (
        files["train-images-idx3-ubyte.gz"], files["train-labels-idx1-ubyte.gz"],
    )
    write_files(tmp_path / "d", files)
    with pytest.raises(GanforgeError, match="should hold uint8 images"):
        build_dataset(DataConfig(source="mnist", dir=str(tmp_path / "d"), download=False))


def test_mnist_from_data_dir_and_env_subfolder(tmp_path, monkeypatch, no_system_copies):
    files = tiny_mnist(n=7)
    write_files(tmp_path / "direct", files)
    data = build_dataset(
        DataConfig(source="mnist", split="test", dir=str(tmp_path / "direct"), download=False)
    )
    assert data.x.shape == (7, 1, 28, 28) and data.x.dtype == torch.uint8
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert data.name == "mnist:test" and data.kind == "image" and data.num_classes == 10
    expected = np.frombuffer(gzip.decompress(files["t10k-images-idx3-ubyte.gz"])[16:], np.uint8)
    assert torch.equal(data.x.flatten(), torch.from_numpy(expected.copy()))

    # $GANFORGE_DATA/mnist/ with uncompressed files
    plain = {k[:-3]: gzip.decompress(v) for k, v in files.items()}
    write_files(tmp_path / "env" / "mnist", plain)
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "env"))
    data = build_dataset(DataConfig(source="mnist", download=False, limit=3))
    assert data.x.shape == (3, 1, 28, 28) and data.name == "mnist:train"


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(),
    reason=f"{DEBIAN_FASHION} absent: install the Debian package dataset-fashion-mnist",
)
def test_fashion_mnist_from_debian_package():
    data = build_dataset(DataConfig(source="fashion-mnist", download=False))
    assert data.x.shape == (60000, 1, 28, 28) and data.x.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert torch.equal(data.labels.unique(), torch.arange(10))
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    small = build_dataset(
        DataConfig(source="fashion-mnist", split="test", limit=50, channels=3, resolution=32,
                   download=False)
    )
    assert small.x.shape == (50, 3, 32, 32) and small.labels.shape == (50,)
    assert torch.equal(small.x[:, 0], small.x[:, 2])  # gray tiled
    assert small.name == "fashion-mnist:test"
    info = {i.name: i for i in list_sources()}["fashion-mnist"]
    assert info.available and str(DEBIAN_FASHION) in info.where


# ---------------------------------------------------------------------------------------------
# downloads, only ever from 127.0.0.1


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 (ephemeral port) that records request paths."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_port}/"
    yield SimpleNamespace(root=root, url=url, requests=requests)
    httpd.shutdown()
    httpd.server_close()


def serve_tiny_mnist(server, monkeypatch, digest=None) -> dict[str, bytes]:
    """Put tiny MNIST files on the server and make ganforge expect their digests."""
    files = tiny_mnist()
    write_files(server.root / "mirror", files)
    for name, data in files.items():
        monkeypatch.setitem(
            idx.MNIST.digests, name, (digest or hashlib.sha256(data).hexdigest(),)
        )
    monkeypatch.setenv("GANFORGE_MNIST_URL", server.url + "mirror/")
    return files


def test_download_checks_writes_atomically_and_caches(
    server, monkeypatch, isolated, no_system_copies
):
    files = serve_tiny_mnist(server, monkeypatch)
    data = build_dataset(DataConfig(source="mnist"))
    assert data.x.shape == (6, 1, 28, 28)
    cache = isolated / "cache" / "ganforge" / "mnist"
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in cache.iterdir()) == sorted(names)  # no temp files left
    assert all((cache / n).read_bytes() == files[n] for n in names)
    assert sorted(server.requests) == sorted(f"/mirror/{n}" for n in names)

    again = build_dataset(DataConfig(source="mnist"))
    assert torch.equal(again.x, data.x)
    assert len(server.requests) == 2  # served from the cache, not downloaded again


def test_download_falls_back_to_the_next_mirror(server, monkeypatch, no_system_copies):
    serve_tiny_mnist(server, monkeypatch)
    monkeypatch.setenv("GANFORGE_MNIST_URL", f"{server.url}missing/ {server.url}mirror/")
    assert len(build_dataset(DataConfig(source="mnist", split="test"))) == 6


def test_checksum_mismatch_keeps_no_file(server, monkeypatch, isolated, no_system_copies):
    serve_tiny_mnist(server, monkeypatch, digest="0" * 64)
    with pytest.raises(GanforgeError, match="Checksum mismatch") as info:
        build_dataset(DataConfig(source="mnist"))
    assert "discarded" in str(info.value)
    cache = isolated / "cache" / "ganforge" / "mnist"
    assert not cache.exists() or not any(cache.iterdir())


def closed_port_url() -> str:
    """A 127.0.0.1 URL on a port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_offline_without_a_copy_says_where_to_put_files(monkeypatch, isolated, no_system_copies):
    with pytest.raises(GanforgeError) as info:
        build_dataset(DataConfig(source="fashion-mnist", split="test", download=False))
    text = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in text and "t10k-labels-idx1-ubyte.gz" in text
    assert str(isolated / "cache" / "ganforge" / "fashion-mnist") in text
    assert "apt-get install dataset-fashion-mnist" in text and "data.download=true" in text

    monkeypatch.setenv("GANFORGE_MNIST_URL", closed_port_url())
    with pytest.raises(GanforgeError, match="Could not download") as info:
        build_dataset(DataConfig(source="mnist", dir=str(isolated / "mine")))
    text = str(info.value)
    assert "train-images-idx3-ubyte.gz" in text and str(isolated / "mine") in text
    assert "GANFORGE_MNIST_URL" in text


def test_list_sources_reports_found_and_missing(tmp_path, no_system_copies):
    write_files(tmp_path / "d" / "mnist", tiny_mnist())
    infos = {i.name: i for i in list_sources(DataConfig(dir=str(tmp_path / "d")))}
    assert infos["mnist"].available and str(tmp_path / "d" / "mnist") in infos["mnist"].where
    assert not infos["fashion-mnist"].available
    assert "apt-get install dataset-fashion-mnist" in infos["fashion-mnist"].where
    assert infos["ring8"].available and infos["grid25"].available
    assert {"folder:PATH", "npz:PATH", "npy:PATH"} <= set(infos)


def test_unknown_source_names_the_nearest():
    with pytest.raises(GanforgeError, match="Did you mean 'fashion-mnist'") as info:
        build_dataset(DataConfig(source="fashion_mnist"))
    assert "ring8" in str(info.value) and "folder:PATH" in str(info.value)
    with pytest.raises(GanforgeError, match="needs a path"):
        build_dataset(DataConfig(source="folder:"))


# ---------------------------------------------------------------------------------------------
# image folders


def make_folder(root: Path) -> Path:
    """Gray PNG, RGB JPEG, RGBA PNG, palette PNG (different sizes) and one corrupt file."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(root / "a_gray.png")
    Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)).save(root / "b_rgb.JPG")
    sub = root / "nested"
    sub.mkdir()
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)).save(sub / "c_rgba.png")
    Image.new("P", (33, 17), color=3).save(sub / "d_palette.png")
    (root / "e_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "notes.txt").write_text("ignored")
    return root


def test_folder_resizes_skips_corrupt_and_warns(tmp_path):
    root = make_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="e_corrupt.png"):
        data = build_dataset(DataConfig(source=f"folder:{root}", resolution=16))
    assert data.x.shape == (4, 3, 16, 16) and data.x.dtype == torch.uint8
    assert data.labels is None and data.kind == "image"
    assert torch.equal(data.x[0, 0], data.x[0, 1])  # the gray image, tiled

    with pytest.raises(GanforgeError, match="e_corrupt.png"):
        build_dataset(DataConfig(source=f"folder:{root}", resolution=16, strict=True))


def test_folder_center_crop_and_default_resolution(tmp_path):
    root = tmp_path / "bands"
    root.mkdir()
    bands = np.zeros((20, 60), dtype=np.uint8)
    bands[:, 15:45] = 255  # black | white | black; the crop keeps columns 20..40
    Image.fromarray(bands).save(root / "x.png")
    data = build_dataset(DataConfig(source=f"folder:{root}", resolution=10))
    assert data.x.shape == (1, 1, 10, 10)  # all gray -> one channel
    assert data.x.min() == 255  # only the white center survives the crop
    assert build_dataset(DataConfig(source=f"folder:{root}")).x.shape == (1, 1, 64, 64)
    assert build_dataset(DataConfig(source=f"folder:{root}", channels=3)).shape == (3, 64, 64)


def test_folder_class_subfolders_give_labels(tmp_path):
    root = tmp_path / "classes"
    for i, cls in enumerate(["dog", "cat", "bird"]):
        (root / cls).mkdir(parents=True)
        for j in range(i + 1):
            Image.new("RGB", (12, 12), color=(40 * i, 10 * j, 0)).save(root / cls / f"{j}.png")
    data = build_dataset(DataConfig(source=f"folder:{root}", resolution=8))
    assert data.class_names == ["bird", "cat", "dog"] and data.num_classes == 3
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 2]  # sorted paths: bird/*, cat/*, dog/*
    limited = build_dataset(DataConfig(source=f"folder:{root}", resolution=8, limit=4))
    assert limited.labels.tolist() == [0, 0, 0, 1]


def test_folder_second_build_hits_the_cache(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "imgs")
    cfg = DataConfig(source=f"folder:{root}", resolution=12)
    with pytest.warns(UserWarning):
        first = build_dataset(cfg)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    decode_image = folderlib.decode_image
    monkeypatch.setattr(folderlib, "decode_image", no_decoding)
    with pytest.warns(UserWarning, match="e_corrupt.png"):  # skipped files still reported
        second = build_dataset(cfg)
    assert torch.equal(first.x, second.x)
    cache = tmp_path / "cache" / "ganforge" / "folders"
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".u8"]  # one entry

    Image.new("L", (9, 9)).save(root / "f_new.png")  # a changed folder is decoded again
    monkeypatch.setattr(folderlib, "decode_image", decode_image)
    monkeypatch.setattr(folderlib, "CACHE_ENTRIES", 1)  # ... and the stale entry pruned
    with pytest.warns(UserWarning):
        assert len(build_dataset(cfg)) == 5
    assert len(list(cache.iterdir())) == 2  # one entry: KEY.json + KEY.u8


def test_folder_missing_or_empty_is_a_clear_error(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        build_dataset(DataConfig(source=f"folder:{tmp_path / 'nope'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no images"):
        build_dataset(DataConfig(source=f"folder:{tmp_path / 'empty'}"))


# ---------------------------------------------------------------------------------------------
# numpy arrays


def test_npy_uint8_and_float_images_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "u8.npy", pixels)
    data = build_dataset(DataConfig(source=f"npy:{tmp_path / 'u8.npy'}"))
    assert data.kind == "image" and data.x.shape == (5, 3, 8, 8)
    assert torch.equal(data.x.permute(0, 2, 3, 1), torch.from_numpy(pixels))

    np.save(tmp_path / "f.npy", (pixels / 255.0).astype(np.float32))  # as `ganforge sample`
    again = build_dataset(DataConfig(source=f"npy:{tmp_path / 'f.npy'}"))
    assert torch.equal(again.x, data.x)

    gray = build_dataset(DataConfig(source=f"npy:{tmp_path / 'u8.npy'}", channels=1))
    expected = np.stack([np.asarray(Image.fromarray(p).convert("L")) for p in pixels])
    assert np.abs(gray.x[:, 0].numpy().astype(int) - expected).max() <= 1
    bigger = build_dataset(DataConfig(source=f"npy:{tmp_path / 'u8.npy'}", resolution=16))
    assert bigger.x.shape == (5, 3, 16, 16)


def test_npz_with_labels_and_vectors(tmp_path):
    images = np.zeros((4, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images, labels=np.array([0, 2, 1, 2]))
    data = build_dataset(DataConfig(source=f"npz:{tmp_path / 'a.npz'}", limit=3))
    assert data.x.shape == (3, 1, 6, 6) and data.labels.tolist() == [0, 2, 1]
    assert data.num_classes == 3

    vectors = np.random.default_rng(0).normal(size=(10, 2)) * 50
    np.savez(tmp_path / "v.npz", vectors)  # the only array, any key
    data = build_dataset(DataConfig(source=f"npz:{tmp_path / 'v.npz'}", resolution=32))
    assert data.kind == "vector" and data.x.dtype == torch.float32 and data.shape == (2,)
    assert torch.allclose(data.x, torch.from_numpy(vectors).float())  # own scale kept


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((2, 4, 4), 1.5, dtype=np.float32), r"values in \[1.5, 1.5\]"),
        (np.full((2, 4, 4), -1.0), r"\(x \+ 1\) / 2"),
        (np.zeros((2, 3, 4, 4), dtype=np.uint8), "NCHW"),
        (np.zeros(5), "at least one example"),
    ],
    ids=["float-above-1", "float-negative", "nchw", "1d"],
)
def test_bad_arrays_are_clear_errors(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(GanforgeError, match=message):
        build_dataset(DataConfig(source=f"npy:{tmp_path / 'bad.npy'}"))


def test_pickled_or_ambiguous_npz_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(GanforgeError, match="no pickled objects"):
        build_dataset(DataConfig(source=f"npy:{tmp_path / 'obj.npy'}"))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2)), b=np.zeros((2, 2)))
    with pytest.raises(GanforgeError, match="under the key 'x'"):
        build_dataset(DataConfig(source=f"npz:{tmp_path / 'two.npz'}"))
    with pytest.raises(GanforgeError, match="no such file"):
        build_dataset(DataConfig(source=f"npz:{tmp_path / 'missing.npz'}"))


# ---------------------------------------------------------------------------------------------
# 2D mixtures


def test_mixture_centers():
    ring, grid = MIXTURES["ring8"], MIXTURES["grid25"]
    assert ring.centers.dtype == torch.float64 and ring.centers.shape == (8, 2)
    assert torch.allclose(ring.centers.norm(dim=1), torch.ones(8, dtype=torch.float64))
    assert torch.pdist(ring.centers).min() > 0.7  # 8 distinct modes (2 sin(pi/8) = 0.765)
    assert torch.allclose(ring.centers[2], torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert ring.sigma == 0.01 and grid.sigma == 0.05
    assert grid.centers.shape == (25, 2)
    assert {tuple(c) for c in grid.centers.tolist()} == {
        (float(x), float(y)) for x in range(-4, 5, 2) for y in range(-4, 5, 2)
    }


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples(name):
    mixture = MIXTURES[name]
    data = build_dataset(DataConfig(source=name))
    assert data.kind == "vector" and data.x.shape == (100_000, 2)
    assert data.x.dtype == torch.float32 and data.name == f"{name}:train"
    k = mixture.centers.shape[0]
    assert data.num_classes == k and torch.equal(data.labels.unique(), torch.arange(k))
    offsets = data.x.double() - mixture.centers[data.labels]
    assert math.isclose(float(offsets.std()), mixture.sigma, rel_tol=0.02)
    nearest = torch.cdist(data.x.double(), mixture.centers).argmin(dim=1)
    assert torch.equal(nearest, data.labels)
    within = (offsets.norm(dim=1) < 3 * mixture.sigma).double().mean()
    assert within > 0.985  # P(r < 3 sigma) for a 2D Gaussian = 1 - exp(-4.5) = 0.989

    assert torch.equal(build_dataset(DataConfig(source=name)).x, data.x)  # deterministic
    test = build_dataset(DataConfig(source=name, split="test", limit=1000))
    assert test.name == f"{name}:test" and len(test) == 1000
    assert not torch.equal(test.x, data.x[:1000])


def test_folder_cache_keys_on_content_not_size_and_mtime(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("L", (8, 8), color=10).save(root / "a.png")
    cfg = DataConfig(source=f"folder:{root}", resolution=8)
    assert int(build_dataset(cfg).x.max()) == 10
    stat = (root / "a.png").stat()
    other = tmp_path / "b.png"
    Image.new("L", (8, 8), color=200).save(other)
    assert other.stat().st_size == stat.st_size  # same size: only the pixels differ
    (root / "a.png").write_bytes(other.read_bytes())  # as `cp -p` would: same size + mtime
    os.utime(root / "a.png", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert int(build_dataset(cfg).x.max()) == 200
