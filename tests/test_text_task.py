"""The text-to-image task: GAN-CLS's D loss and the G terms against hand computations, exact
resume, sampling from a checkpoint alone (prompts, files, walks, bad prompts), and a short
run on a captioned folder whose images must follow their prompt."""

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tests.test_training import assert_resume_is_exact

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.errors import GanforgeError
from ganforge.penalties import ca_kl
from ganforge.training.generator import load_run
from ganforge.training.loop import Trainer, train
from ganforge.training.rundir import RunDir

SIDE = 16
PHRASES = {  # two kinds of image, each with two phrasings of its caption
    "left": ["a white bar on the left", "left side white bar"],
    "right": ["a white bar on the right", "right side white bar"],
}


def bar_image(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A white vertical bar in the left or right third of a dark 16x16 frame."""
    image = rng.integers(0, 40, (SIDE, SIDE), dtype=np.uint8)
    start = 1 + int(rng.integers(0, 3))
    if kind == "right":
        start = SIDE - start - 4
    image[2:14, start : start + 4] = 255
    return image


@pytest.fixture(scope="module")
def bars(tmp_path_factory) -> str:
    """96 captioned images (metadata.jsonl, two captions each): half left bars, half right."""
    root = tmp_path_factory.mktemp("bars")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(96):
        kind = "left" if i % 2 == 0 else "right"
        name = f"{i:03d}.png"
        Image.fromarray(bar_image(kind, rng)).save(root / name)
        lines.append(json.dumps({"file_name": name, "text": PHRASES[kind]}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return str(root)


def sets_for(bars: str, *more: str) -> list[str]:
    return [
        "task.name=text", f"data.source=folder:{bars}", f"data.resolution={SIDE}",
        "data.channels=1", "model.arch=mlp", "model.g_hidden=[64, 64]", "model.d_hidden=[64]",
        "model.z_dim=8", "model.text_dim=16", "model.c_dim=4", "train.batch_size=16",
        "train.sample_every=1000", "train.checkpoint_every=1000", "train.num_samples=8",
        "log.every=1", "log.progress=false", *more,
    ]


def trainer(tmp_path, sets) -> Trainer:
    return Trainer(configlib.load(None, sets), RunDir(tmp_path / "run"))


def test_text_batches_hold_every_caption_and_the_vocabulary_is_the_captions_words(tmp_path, bars):
    t = trainer(tmp_path, sets_for(bars))
    text = t.fields["text"]
    assert text.shape == (96, 2, 24)
    vocab = t.task.codes.vocabulary
    assert vocab.decode(text[0, 0].tolist()) == "a white bar on the left"
    assert vocab.decode(text[1, 1].tolist()) == "right side white bar"
    assert set(vocab.words[2:]) == {"a", "white", "bar", "on", "the", "left", "right", "side"}


def test_captions_are_drawn_among_each_images_own(tmp_path, bars):
    t = trainer(tmp_path, sets_for(bars))
    text = t.fields["text"][:16]
    picks = torch.stack([t.task.pick_captions(text) for _ in range(50)])  # (50, 16, L)
    for i in range(16):
        seen = {tuple(row) for row in picks[:, i].tolist()}
        assert seen == {tuple(text[i, 0].tolist()), tuple(text[i, 1].tolist())}


def hand_d_loss(task, before, batch, noise_state, mismatch: bool) -> torch.Tensor:
    """Non-saturating D loss of GAN-CLS, computed by hand with copies of G and D from before
    the step: softplus(-D(x, t)) + softplus(D([G(z, t), x], [t, t_wrong]))."""
    G, D = before
    noise = torch.Generator().manual_seed(0)
    noise.set_state(noise_state)
    text = batch["text"]
    counts = (text[:, :, 0] != 0).sum(1)
    slot = (torch.rand(text.shape[0], generator=noise) * counts).long()
    tokens = text[torch.arange(text.shape[0]), slot]
    z = torch.randn(text.shape[0], G.z_dim, generator=noise)
    codes = D.encode(tokens)
    with torch.no_grad():
        fake = G(z, codes.sentence)
    real_scores = D(batch["x"], codes.sentence)
    fake_scores = D(fake, codes.sentence)
    if mismatch:
        rows = (torch.arange(text.shape[0]) + 1) % text.shape[0]
        differs = (tokens[rows] != tokens).any(1)
        wrong = D(batch["x"], codes.sentence[rows])[differs]
        assert 0 < differs.sum() < text.shape[0]  # the batch has both cases
        fake_scores = torch.cat([fake_scores, wrong])
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


@pytest.mark.parametrize("mismatch", [True, False])
def test_matching_aware_d_loss_against_hand_computation(tmp_path, bars, mismatch):
    t = trainer(tmp_path, sets_for(bars, f"loss.mismatch={str(mismatch).lower()}"))
    task = t.task
    batch = t.next_batch()
    before = (copy.deepcopy(task.G), copy.deepcopy(task.D))
    state = task.noise.get_state()
    stats = task.d_step(batch, keep_fake_for_g=False)
    expected = hand_d_loss(task, before, batch, state, mismatch)
    assert stats["d_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    other = hand_d_loss(task, before, batch, state, not mismatch)
    assert abs(other.item() - expected.item()) > 1e-3  # the hand form tells them apart
    assert ("d_wrong" in stats) == mismatch


def test_d_loss_trains_the_encoder_and_g_loss_does_not(tmp_path, bars):
    t = trainer(tmp_path, sets_for(bars))
    task = t.task
    encoder = task.D.encoder
    before = copy.deepcopy(encoder.state_dict())
    batch = t.next_batch()
    task.d_step(batch, keep_fake_for_g=True)
    after_d = copy.deepcopy(encoder.state_dict())
    assert any(not torch.equal(before[k], after_d[k]) for k in before)
    task.g_step(batch)
    assert all(torch.equal(after_d[k], v) for k, v in encoder.state_dict().items())


def test_g_loss_adds_the_kl_term_and_gan_int(tmp_path, bars):
    t = trainer(tmp_path, sets_for(bars, "loss.kl_weight=2.5", "loss.interpolate_text=0.5"))
    task = t.task
    batch = t.next_batch()
    task.d_step(batch, keep_fake_for_g=True)
    sentence = task._fake_for_g[1][0]
    mu, logvar = task.G.ca(sentence)
    kl = 2.5 * ca_kl(mu, logvar)
    stats = task.g_step(batch)
    assert stats["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert "g_interp" in stats and stats["g_interp"].item() > 0
    # g_loss = adversarial + kl + GAN-INT's weighted term
    assert stats["g_loss"].item() > stats["kl"].item() + stats["g_interp"].item()


@pytest.mark.parametrize("more", [[], ["model.attention=true", "model.arch=dcgan",
                                        "model.g_width=4", "model.d_width=4",
                                        "model.text_fusion=affine"]])
def test_resume_is_bitwise_exact(tmp_path, bars, more):
    assert_resume_is_exact(tmp_path, sets_for(bars, *more), n=3)


def test_gan_int_with_attention_is_refused(tmp_path, bars):
    with pytest.raises(GanforgeError, match="interpolate_text"):
        trainer(tmp_path, sets_for(bars, "model.attention=true", "loss.interpolate_text=1"))


def test_text_task_on_data_without_captions_says_how_to_add_them(tmp_path):
    with pytest.raises(GanforgeError, match="metadata.jsonl"):
        trainer(tmp_path, ["task.name=text", "data.source=ring8"])


# -- a short run, then sampling from the checkpoint alone -----------------------------------


@pytest.fixture(scope="module")
def bars_run(tmp_path_factory, bars):
    """400 steps on the bars (lr 2e-3); then the data folder is gone."""
    run = tmp_path_factory.mktemp("text") / "run"
    torch.set_num_threads(1)
    sets = sets_for(bars, "train.steps=400", "train.checkpoint_every=400",
                    "train.sample_every=400", "optim.g_lr=0.002", "optim.d_lr=0.002",
                    "optim.betas=[0.5, 0.999]")
    train(configlib.load(None, sets), run, progress=False)
    return run


def left_mass(x: torch.Tensor) -> torch.Tensor:
    """Share of brightness in the left half of each model-scale image."""
    light = (x + 1) / 2
    return light[..., : SIDE // 2].sum((1, 2, 3)) / light.sum((1, 2, 3))


def test_short_run_follows_the_prompt(bars_run):
    loaded = load_run(bars_run)
    drawn = loaded.sampler.draw(32, 0, {"text": ["a white bar on the left",
                                                 "a white bar on the right"]})
    left, right = left_mass(drawn.x[:32]), left_mass(drawn.x[32:])
    # the real bars put about 0.85 of their light on their side
    assert left.mean() > 0.7 and right.mean() < 0.3, (left.mean(), right.mean())
    assert (left > right).float().mean() > 0.9  # same z, other prompt: the bar moves
    assert drawn.nrow == 32 and drawn.captions == ["a white bar on the left",
                                                   "a white bar on the right"]


def test_sample_text_from_the_checkpoint_alone(bars_run, tmp_path, bars, capsys):
    import shutil

    moved = tmp_path / "gone"
    shutil.move(bars, moved)  # no training data from here on
    try:
        out = tmp_path / "left.png"
        code, _, err = run_cli(capsys, "sample", bars_run, "--text", "left side white bar",
                               "-n", "8", "--out", out)
        assert code == 0, err
        grid = np.asarray(Image.open(out))
        assert grid.shape[0] == SIDE + 4  # one row, with the caption strip beside it
        assert grid.shape[1] > 8 * (SIDE + 2)
        prompts = tmp_path / "prompts.txt"
        prompts.write_text("a white bar on the left\n\nright side white bar\n")
        out2 = tmp_path / "rows.npy"
        code, _, err = run_cli(capsys, "sample", bars_run, "--text-file", prompts, "-n", "4",
                               "--out", out2)
        assert code == 0, err
        rows = torch.from_numpy(np.load(out2)).permute(0, 3, 1, 2) * 2 - 1
        assert rows.shape == (8, 1, SIDE, SIDE)
        assert left_mass(rows[:4]).mean() > left_mass(rows[4:]).mean() + 0.3
        loaded = load_run(bars_run)
        again = loaded.sampler.draw(4, 0, {"text": ["a white bar on the left"]}).x
        torch.testing.assert_close(rows[:4], again.clamp(-1, 1), atol=1e-6, rtol=0)
        walk = tmp_path / "walk.png"
        code, _, err = run_cli(capsys, "sample", bars_run, "--text", "a white bar on the left",
                               "--text-to", "a white bar on the right", "--interpolate", "6",
                               "-n", "12", "--out", walk)
        assert code == 0, err
        assert np.asarray(Image.open(walk)).shape[0] == 2 * (SIDE + 2) + 2
        drawn = loaded.sampler.draw(2, 0, {"text": ["a white bar on the left"],
                                           "text_to": "a white bar on the right", "steps": 6})
        mass = left_mass(drawn.x).view(2, 6)
        assert (mass[:, 0] > mass[:, -1] + 0.3).all()  # the bar moves along the walk
    finally:
        shutil.move(moved, bars)


def test_bad_prompts(bars_run, tmp_path, capsys):
    loaded = load_run(bars_run)
    with pytest.raises(GanforgeError, match="no words"):
        loaded.sampler.draw(2, 0, {"text": ["  ,. "]})
    with pytest.raises(GanforgeError, match="--text"):
        loaded.sampler.draw(2, 0, {})
    with pytest.warns(UserWarning, match="'purple'"):
        loaded.sampler.draw(2, 0, {"text": ["a purple bar on the left"]})
    long = " ".join(["left"] * 40)
    with pytest.warns(UserWarning, match="cut to their first 24"):
        loaded.sampler.draw(2, 0, {"text": [long]})
    message = user_error(capsys, "sample", bars_run, "--text-file", tmp_path / "no.txt",
                         "--out", tmp_path / "x.png")
    assert "does not exist" in message
    message = user_error(capsys, "sample", bars_run, "--text", "left", "--text-to", "right",
                         "--out", tmp_path / "x.png")
    assert "--interpolate" in message


def test_training_grid_prints_its_captions(bars_run, tmp_path):
    from ganforge.images import caption_strip

    t = Trainer(configlib.load(bars_run / "config.yaml"), RunDir(tmp_path / "again"))
    captions = t.task.grid_captions(t.fixed_inputs)
    assert len(captions) == 8  # one row per fixed training example
    assert all(c in PHRASES["left"][:1] + PHRASES["right"][:1] for c in captions)
    grid = np.asarray(Image.open(max((bars_run / "samples").glob("*.png"))))
    strip = caption_strip(captions, SIDE)
    assert grid.shape[0] == 8 * (SIDE + 2) + 2 and grid.shape[0] == strip.shape[0]
    assert grid.shape[1] == strip.shape[1] + SIDE + 4  # the strip, then one image column
    np.testing.assert_array_equal(grid[:, : strip.shape[1]], strip)
    assert strip.max() > 200  # text is drawn


def test_train_summary_suggests_sampling_from_a_description(bars_run):
    from ganforge.cli import next_command

    assert next_command(bars_run).endswith('--text "A DESCRIPTION" -n 8 --out samples.png')


def test_wrong_sampling_options_name_the_right_flags_and_task(bars_run, tmp_path, capsys):
    message = user_error(capsys, "sample", bars_run, "--class", "3", "--out", tmp_path / "a.png")
    assert "takes --text, --text-file, --text-to" in message
    assert "task.name=conditional" in message
    ring = tmp_path / "ring"
    train(configlib.load(None, ["data.source=ring8", "model.arch=mlp", "train.steps=2",
                                "log.progress=false"]), ring, progress=False)
    message = user_error(capsys, "sample", ring, "--text", "a dot", "--out", tmp_path / "b.png")
    assert "--text does not apply" in message and "takes no conditions" in message
    assert "task.name=text" in message and "captioned data" in message
