"""`ganforge export`: ONNX generators that match PyTorch in onnxruntime, safetensors + JSON that
rebuild G exactly, and every way an export is refused (an op ONNX lacks, a mismatch, a file in
the way, a folder that is not a run)."""

from __future__ import annotations

import copy
import json

import onnxruntime
import pytest
import torch
from torch import nn

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge import export
from ganforge.cli import main
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.fileio import file_digest
from ganforge.tasks.conditional import ClassSampler
from ganforge.tasks.sampling import generate
from ganforge.training import checkpoint
from ganforge.training.generator import load_run
from ganforge.training.loop import train

# A high learning rate for a few steps: outputs of order 1 (DCGAN's init and barely-trained
# batch norm statistics give ~1e-3), so that 1e-4 is a real bound.
FAST = ["optim.g_lr=0.02", "optim.d_lr=0.02", "train.steps=8", "train.sample_every=1000",
        "train.checkpoint_every=1000", "train.num_samples=4", "log.every=1", "log.progress=false"]
TINY = [
    "data.source=fashion-mnist", "data.limit=64", "data.resolution=16", "model.arch=dcgan",
    "model.z_dim=16", "model.g_width=8", "model.d_width=8", "train.batch_size=16", *FAST,
]
EMA = [*TINY, "stabilize.ema=0.9"]  # the export must be the EMA copy, not the raw G
CGAN = [*TINY, "task.name=conditional", "model.condition=projection", "model.z_dim=8"]
PIX2PIX = [
    "task.name=pix2pix", "data.source=fashion-edges", "data.limit=32", "data.resolution=16",
    "model.g_width=4", "model.d_width=4", "train.batch_size=8", *FAST,
]
CYCLEGAN = [
    *PIX2PIX[1:], "task.name=cyclegan", "model.translator=resnet", "model.resnet_blocks=1",
    "loss.name=lsgan",
]
TEXT = [
    "task.name=text", "data.source=fashion-mnist-captions", "data.limit=64",
    "data.resolution=16", "model.arch=dcgan", "model.z_dim=8", "model.g_width=8",
    "model.d_width=8", "model.text_dim=16", "model.c_dim=4", "model.attention=true",
    "model.text_fusion=affine",
    "train.batch_size=16", *FAST,
]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def trained(tmp_path_factory, name: str, sets: list[str]):
    """A tiny run trained in-process; its directory."""
    run = tmp_path_factory.mktemp(name) / "run"
    train(configlib.load(None, sets), run, progress=False)
    return run


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """An unconditional DCGAN with an EMA copy of G."""
    return trained(tmp_path_factory, "gan", EMA)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """A class-conditional DCGAN (projection: labels enter G's batch norm)."""
    return trained(tmp_path_factory, "cgan", CGAN)


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    """A pix2pix U-Net translator, edges -> Fashion-MNIST."""
    return trained(tmp_path_factory, "pix2pix", PIX2PIX)


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    """A CycleGAN (ResNet translators both ways)."""
    return trained(tmp_path_factory, "cyclegan", CYCLEGAN)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A text-to-image DCGAN with word attention, affine fusion and the trainable encoder."""
    return trained(tmp_path_factory, "text", TEXT)


def session(path) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session of an exported file."""
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_onnx(sess, **inputs: torch.Tensor) -> torch.Tensor:
    """The exported generator's one output for named inputs."""
    return torch.from_numpy(sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference of two tensors of one shape."""
    assert a.shape == b.shape
    return float((a - b).abs().max())


# -- ONNX matches PyTorch ------------------------------------------------------------------------


def test_onnx_of_a_noise_gan_matches_pytorch_at_batch_sizes_1_and_7(gan_run, tmp_path, capsys):
    out = tmp_path / "G.onnx"
    code, stdout, err = run_cli(capsys, "export", gan_run, "--format", "onnx", "--out", out)
    assert code == 0, err
    assert f"Wrote {out} (onnx): unconditional generator of step 8" in stdout
    assert "z float32 (N, 16)" in stdout and "images (N, 1, 16, 16)" in stdout
    assert "[-1, 1]" in stdout and "max abs difference" in stdout
    assert f"{out}.json" in stdout

    sess = session(out)
    assert [i.name for i in sess.get_inputs()] == ["z"]
    assert [o.name for o in sess.get_outputs()] == ["images"]
    assert sess.get_inputs()[0].type == "tensor(float)"
    assert sess.get_inputs()[0].shape == ["N", 16]  # a dynamic batch axis, named as documented
    assert sess.get_outputs()[0].shape == ["N", 1, 16, 16]
    G = load_run(gan_run).sampler.G  # the EMA copy: what `ganforge sample` draws with
    raw = copy.deepcopy(G)
    tensors, _ = checkpoint.load(checkpoint.resolve(gan_run))
    raw.load_state_dict(checkpoint.module_state(tensors, "G"))
    for n in (1, 7):
        z = torch.randn(n, 16, generator=torch.Generator().manual_seed(n))
        got = run_onnx(sess, z=z)
        assert got.abs().max() > 0.1  # a scale at which 1e-4 means something
        assert max_diff(got, generate(G, z)) <= 1e-4
        assert max_diff(got, generate(raw, z)) > 1e-2  # not the raw G's weights

    meta = json.loads((tmp_path / "G.onnx.json").read_text())
    assert meta["task"] == "unconditional" and meta["file_format"] == "onnx"
    assert meta["weights_from"] == "G_ema" and meta["source"]["step"] == 8
    assert meta["inputs"] == [{"name": "z", "shape": ["N", 16], "dtype": "float32",
                               "description": "noise, standard normal N(0, I)"}]
    assert meta["output"]["name"] == "images" and meta["output"]["shape"] == ["N", 1, 16, 16]
    assert "[-1, 1]" in meta["output"]["description"]
    assert meta["data_shape"] == [1, 16, 16] and meta["class_names"] is None
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["versions"]["onnxruntime"] == onnxruntime.__version__
    assert meta["check"]["batch_sizes"] == [1, 7] and meta["check"]["max_abs_difference"] <= 1e-4
    assert meta["sha256"] == file_digest(out)


def test_onnx_of_a_conditional_gan_takes_class_labels(cgan_run, tmp_path):
    out = tmp_path / "cgan.onnx"
    result = export.export_generator(cgan_run, out)  # the format from the suffix
    sess = session(out)
    inputs = {i.name: i for i in sess.get_inputs()}
    assert list(inputs) == ["z", "label"] and inputs["label"].type == "tensor(int64)"
    sampler = load_run(cgan_run).sampler
    for n in (1, 7):
        z = torch.randn(n, 8, generator=torch.Generator().manual_seed(n))
        label = torch.arange(n) * 3 % 10
        got = run_onnx(sess, z=z, label=label)
        assert got.abs().max() > 0.1 and max_diff(got, generate(sampler.G, z, label)) <= 1e-4
    z = torch.randn(7, 8).repeat(2, 1)
    label = torch.tensor([0] * 7 + [5] * 7)  # the label is an input, not traced as a constant
    images = run_onnx(sess, z=z, label=label)
    assert max_diff(images[:7], images[7:]) > 1e-2
    assert result.meta["class_names"] == FASHION and result.meta["task"] == "conditional"
    assert result.meta["inputs"][1]["shape"] == ["N"] and "[0, 10)" in str(result.meta["inputs"])


def test_onnx_of_a_pix2pix_translator(pix2pix_run, tmp_path):
    out = tmp_path / "p2p.onnx"
    result = export.export_generator(pix2pix_run, out, fmt="onnx")
    sess = session(out)
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert sess.get_inputs()[0].shape[1:] == [1, 16, 16]
    sampler = load_run(pix2pix_run).sampler
    for n in (1, 7):
        x = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(n)) * 2 - 1
        got = run_onnx(sess, image=x)
        assert got.abs().max() > 0.1 and max_diff(got, sampler.translate(x)) <= 1e-4
    assert result.meta["direction"] == "AtoB" and result.meta["weights"] == "G"
    assert result.meta["output"]["name"] == "images"


def test_cyclegan_exports_the_direction_asked_for(cyclegan_run, pix2pix_run, tmp_path, capsys):
    out = tmp_path / "BtoA.onnx"
    result = export.export_generator(cyclegan_run, out, direction="BtoA")
    sampler = load_run(cyclegan_run).sampler
    x = torch.rand(7, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    got = run_onnx(session(out), image=x)
    assert got.abs().max() > 0.1 and max_diff(got, sampler.translate(x, "BtoA")) <= 1e-4
    assert max_diff(got, sampler.translate(x, "AtoB")) > 1e-2
    assert result.meta["direction"] == "BtoA" and result.meta["weights"] == "G_BA"
    err = user_error(capsys, "export", pix2pix_run, "--out", tmp_path / "x.onnx",
                     "--direction", "BtoA")
    assert "learned AtoB only" in err
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_of_a_text_to_image_gan_takes_word_ids(text_run, tmp_path):
    out = tmp_path / "text.onnx"
    result = export.export_generator(text_run, out)
    sess = session(out)
    assert [i.name for i in sess.get_inputs()] == ["z", "tokens"]
    sampler = load_run(text_run).sampler
    vocabulary = sampler.codes.vocabulary
    assert result.meta["vocabulary"] == vocabulary.words
    prompts = ["a dark top, small", "a big light bag", "a trouser", "a small dark sneaker",
               "photo of a pale dress, large", "a coat", "a medium ankle boot in the frame"]
    for n in (1, 7):
        tokens, _, _ = vocabulary.encode_batch(prompts[:n], sampler.codes.max_words)
        z = torch.randn(n, sampler.G.z_dim, generator=torch.Generator().manual_seed(n))
        got = run_onnx(sess, z=z, tokens=tokens)
        expected = sampler.generate(z, sampler.encode(prompts[:n]))
        assert got.abs().max() > 0.02 and max_diff(got, expected) <= 1e-5
    z = torch.randn(1, sampler.G.z_dim).repeat(2, 1)  # the caption is an input, not a constant
    tokens, _, _ = vocabulary.encode_batch(prompts[:2], sampler.codes.max_words)
    images = run_onnx(sess, z=z, tokens=tokens)
    assert max_diff(images[:1], images[1:]) > 1e-3


def test_safetensors_of_a_text_run_rebuilds_g_with_its_encoder(text_run, tmp_path):
    out = tmp_path / "G.safetensors"
    export.export_generator(text_run, out, fmt="safetensors")
    G, meta = export.load_generator(out)
    sampler = load_run(text_run).sampler
    tokens, _, _ = sampler.codes.vocabulary.encode_batch(["a dark bag", "a light coat"], 24)
    z = torch.randn(2, sampler.G.z_dim)
    with torch.no_grad():
        assert torch.equal(G(z, tokens), sampler.generate(z, sampler.encode(["a dark bag",
                                                                              "a light coat"])))
    assert [p["name"] for p in meta["inputs"]] == ["z", "tokens"]


# -- safetensors -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gan_run", "cgan_run", "pix2pix_run"])
def test_safetensors_round_trip_rebuilds_the_same_generator(which, request, tmp_path):
    run = request.getfixturevalue(which)
    out = tmp_path / "G.safetensors"
    export.export_generator(run, out, fmt="safetensors")
    G, meta = export.load_generator(out)
    assert not G.training
    assert meta["config"] == configlib.load(run / "config.yaml").to_dict()
    sampler = load_run(run).sampler
    if which == "pix2pix_run":
        x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
        assert torch.equal(generate(G, x), sampler.translate(x))
    elif which == "cgan_run":  # sampler-ready: a ClassSampler over it draws the same samples
        rebuilt = ClassSampler(G, DataInfo.from_meta(meta["data"]), meta["task"])
        for request_ in ({"class": "Bag,Coat"}, None):
            assert torch.equal(rebuilt.draw(3, 7, request_).x, sampler.draw(3, 7, request_).x)
    else:
        z = torch.randn(5, 16)
        assert torch.equal(generate(G, z), generate(sampler.G, z))


def test_safetensors_export_refuses_a_tampered_or_orphaned_file(gan_run, tmp_path):
    out = tmp_path / "G.safetensors"
    export.export_generator(gan_run, out)
    data = bytearray(out.read_bytes())
    data[-1] ^= 1
    out.write_bytes(bytes(data))
    with pytest.raises(GanforgeError, match="does not match its JSON"):
        export.load_generator(out)
    (tmp_path / "G.safetensors.json").unlink()
    with pytest.raises(GanforgeError, match="missing or unreadable"):
        export.load_generator(out)


# -- refusals ----------------------------------------------------------------------------------


class MedianTanh(nn.Module):
    """tanh of x minus its channel median: aten.median.dim has no ONNX translation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x - x.median(dim=1, keepdim=True).values)


class NoisyTanh(nn.Module):
    """tanh(x + fresh noise) even in eval mode: ONNX's RandomNormal cannot match torch's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x + torch.randn_like(x))


def test_an_op_onnx_cannot_express_is_named(gan_run, tmp_path, capsys, monkeypatch):
    import ganforge.nets.dcgan

    # the run's G, rebuilt with an output layer the exporter has no translation for
    monkeypatch.setattr(ganforge.nets.dcgan, "out_activation", lambda kind: MedianTanh())
    out = tmp_path / "G.onnx"
    err = user_error(capsys, "export", gan_run, "--out", out)
    assert "aten.median" in err and "G.net.7 (MedianTanh)" in err
    assert "ONNX cannot express" in err and "--format safetensors" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp file left
    code, _, err = run_cli(capsys, "export", gan_run, "--format", "safetensors", "--out",
                           tmp_path / "G.safetensors")
    assert code == 0, err  # the suggested way out works


def test_onnx_that_differs_from_pytorch_is_refused_and_not_kept(gan_run, tmp_path, capsys,
                                                                monkeypatch):
    import ganforge.nets.dcgan

    monkeypatch.setattr(ganforge.nets.dcgan, "out_activation", lambda kind: NoisyTanh())
    err = user_error(capsys, "export", gan_run, "--out", tmp_path / "G.onnx")
    assert "differs from PyTorch" in err and "allowed 0.0001" in err and "not written" in err
    assert list(tmp_path.iterdir()) == []


def test_existing_outputs_are_refused_without_overwrite(gan_run, tmp_path, capsys):
    out = tmp_path / "G.safetensors"
    out.write_bytes(b"mine")
    err = user_error(capsys, "export", gan_run, "--out", out)
    assert f"'{out}' exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"mine" and not (tmp_path / "G.safetensors.json").exists()
    out.unlink()
    (tmp_path / "G.safetensors.json").write_text("{}")  # the JSON alone is in the way too
    assert "G.safetensors.json' exists" in user_error(capsys, "export", gan_run, "--out", out)
    code, _, err = run_cli(capsys, "export", gan_run, "--out", out, "--overwrite")
    assert code == 0, err
    assert json.loads((tmp_path / "G.safetensors.json").read_text())["file"] == out.name


def test_bad_targets_and_outputs_are_named(gan_run, tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"")
    err = user_error(capsys, "export", tmp_path / "photos", "--out", tmp_path / "G.onnx")
    assert "is not a ganforge run" in err and "ganforge train --out" in err
    err = user_error(capsys, "export", tmp_path / "nowhere", "--out", tmp_path / "G.onnx")
    assert "does not exist" in err
    err = user_error(capsys, "export", gan_run, "--out", tmp_path / "G.pt")
    assert "--format onnx or --format safetensors" in err
    err = user_error(capsys, "export", gan_run, "--out", tmp_path / "photos")
    assert "is a folder" in err
    err = user_error(capsys, "export", gan_run, "--out", tmp_path / "G.onnx", "--direction",
                     "AtoB")
    assert "--direction applies to image-to-image runs" in err


def test_missing_onnx_packages_are_named(gan_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "ONNX_PACKAGES", ("onnx", "no_such_package_xyz"))
    err = user_error(capsys, "export", gan_run, "--out", tmp_path / "G.onnx")
    assert "no_such_package_xyz" in err and "ganforge[export]" in err


def test_export_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: ganforge export" in text and "--direction" in text and "G.onnx.json" in text

