"""Image-to-image translation: data sources, paired augmentation, the pix2pix and CycleGAN
objectives against hand computations, exact resume (image pools included), unpaired batches,
a short pix2pix run that beats the identity mapping, translate and eval, bad input."""

import numpy as np
import pytest
import torch
from PIL import Image
from tests.test_training import assert_resume_is_exact

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data.augment import augment_pair
from ganforge.data.pairs import edge_map
from ganforge.errors import GanforgeError
from ganforge.images import from_uint8, to_uint8
from ganforge.metrics.translation import l1_error, psnr, ssim
from ganforge.training.evaluation import evaluate_sampler
from ganforge.training.generator import load_run
from ganforge.training.loop import Trainer, train
from ganforge.training.rundir import RunDir

PIX2PIX = [
    "task.name=pix2pix", "data.source=fashion-edges", "data.limit=64", "data.resolution=16",
    "model.g_width=4", "model.d_width=4", "train.batch_size=8", "train.sample_every=1000",
    "train.checkpoint_every=1000", "train.num_samples=8", "log.every=1",
    "data.augment=[jitter, flip]",
]
CYCLEGAN = [
    "task.name=cyclegan", "data.source=fashion-edges-unpaired", "data.limit=64",
    "data.resolution=16", "model.translator=resnet", "model.resnet_blocks=1",
    "model.g_width=4", "model.d_width=4", "loss.name=lsgan", "loss.g_adversarial=2",
    "stabilize.image_pool=6", "train.batch_size=4", "train.sample_every=1000",
    "train.checkpoint_every=1000", "train.num_samples=4", "log.every=1",
    "data.augment=[flip]",
]


def trainer(tmp_path, sets):
    return Trainer(configlib.load(None, sets), RunDir(tmp_path / "run"))


# -- data ---------------------------------------------------------------------------------------


def test_edge_map_marks_the_border_of_a_square_in_black_on_white():
    x = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    x[..., 2:6, 2:6] = 255
    edges = edge_map(x)[0, 0]
    assert edges.dtype == torch.uint8 and set(edges.unique().tolist()) == {0, 255}
    # Sobel/4 is 1 or 0.75 on the two pixels either side of each step: a band two wide
    expected = torch.full((8, 8), 255, dtype=torch.uint8)
    expected[1:7, 1:7] = 0
    expected[3:5, 3:5] = 255
    assert torch.equal(edges, expected)
    assert torch.equal(edge_map(torch.zeros(1, 1, 8, 8, dtype=torch.uint8)),
                       torch.full((1, 1, 8, 8), 255, dtype=torch.uint8))


def test_fashion_edges_pairs_each_image_with_its_edges_and_keeps_labels():
    data = build_dataset(DataConfig(source="fashion-edges", limit=32))
    assert data.fields == ("x", "y", "x_b") and data.paired
    assert torch.equal(data.x, edge_map(data.x_b))
    flipped = build_dataset(DataConfig(source="fashion-edges", limit=32, direction="BtoA"))
    assert torch.equal(flipped.x, data.x_b) and torch.equal(flipped.x_b, data.x)
    unpaired = build_dataset(DataConfig(source="fashion-edges-unpaired", limit=32))
    assert not unpaired.paired
    test = build_dataset(DataConfig(source="fashion-edges-unpaired", split="test", limit=8))
    assert test.paired  # the truth an unpaired method is scored against


def test_paired_augmentation_is_identical_for_both_images():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 16, 16) * 2 - 1
    ops = ["jitter", "flip", "crop", "rotate"]
    a, b = augment_pair(x, x.clone(), ops, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    # RGB with gray: channels are split back as given
    rgb = torch.rand(4, 3, 16, 16) * 2 - 1
    a, b = augment_pair(rgb, rgb[:, :1], ["flip"], torch.Generator().manual_seed(2))
    assert a.shape == rgb.shape and torch.equal(a[:, :1], b)


def write_image(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_aligned_folder_splits_halves_and_uses_train_test(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            write_image(tmp_path / "ab" / split / f"{i}.png",
                        rng.integers(0, 256, (16, 32, 3), dtype=np.uint8))
    data = build_dataset(DataConfig(source=f"aligned:{tmp_path / 'ab'}"))
    assert data.x.shape == data.x_b.shape == (3, 3, 16, 16)
    first = np.array(Image.open(tmp_path / "ab" / "train" / "0.png"))
    assert torch.equal(data.x[0], torch.from_numpy(first[:, :16]).permute(2, 0, 1))
    assert torch.equal(data.x_b[0], torch.from_numpy(first[:, 16:]).permute(2, 0, 1))
    test = build_dataset(DataConfig(source=f"aligned:{tmp_path / 'ab'}", split="test"))
    assert len(test) == 2
    back = build_dataset(DataConfig(source=f"aligned:{tmp_path / 'ab'}", direction="BtoA"))
    assert torch.equal(back.x, data.x_b)


def test_paired_and_unpaired_folders(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        for side in ("A", "B"):
            write_image(tmp_path / side / name, rng.integers(0, 256, (20, 20), dtype=np.uint8))
    data = build_dataset(DataConfig(source=f"paired:{tmp_path / 'A'},{tmp_path / 'B'}",
                                    resolution=16))
    assert data.x.shape == (2, 1, 16, 16) and data.paired
    for i in range(3):
        write_image(tmp_path / "u" / "trainA" / f"{i}.png", rng.integers(0, 256, (16, 16, 3),
                                                                        dtype=np.uint8))
    for i in range(5):
        write_image(tmp_path / "u" / "trainB" / f"{i}.png", rng.integers(0, 256, (16, 16, 3),
                                                                        dtype=np.uint8))
    u = build_dataset(DataConfig(source=f"unpaired:{tmp_path / 'u'}", resolution=16))
    assert (len(u.x), len(u.x_b), u.paired) == (3, 5, False)


def test_bad_pair_layouts_are_named(tmp_path):
    write_image(tmp_path / "ab" / "wide.png", np.zeros((16, 40), dtype=np.uint8))
    with pytest.raises(GanforgeError, match=r"wide.png.*40x16.*twice its height \(32\)"):
        build_dataset(DataConfig(source=f"aligned:{tmp_path / 'ab'}"))
    for i in range(7):
        write_image(tmp_path / "A" / f"a{i}.png", np.zeros((8, 8), dtype=np.uint8))
    write_image(tmp_path / "B" / "a0.png", np.zeros((8, 8), dtype=np.uint8))
    write_image(tmp_path / "B" / "zz.png", np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(GanforgeError, match=r"7 do not match: 'a1.png' only in .*'zz.png' only"):
        build_dataset(DataConfig(source=f"paired:{tmp_path / 'A'},{tmp_path / 'B'}"))
    write_image(tmp_path / "u" / "trainA" / "0.png", np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(GanforgeError, match=r"no trainB/ folder.*trainA/ and .*trainB/"):
        build_dataset(DataConfig(source=f"unpaired:{tmp_path / 'u'}"))
    (tmp_path / "u" / "trainB").mkdir()
    with pytest.raises(GanforgeError, match="no images"):
        build_dataset(DataConfig(source=f"unpaired:{tmp_path / 'u'}"))


def test_tasks_refuse_data_they_cannot_use(tmp_path, capsys):
    small = ("--set", "data.limit=64")
    err = user_error(capsys, "train", "configs/fashion_edges_pix2pix.yaml", "--out",
                     tmp_path / "r", "--set", "data.source=fashion-edges-unpaired", *small)
    assert "learns from pairs" in err and "task.name=cyclegan" in err
    err = user_error(capsys, "train", "configs/fashion_edges_pix2pix.yaml", "--out",
                     tmp_path / "r", "--set", "data.source=fashion-mnist", *small)
    assert "'x_b'" in err and "aligned:PATH" in err
    err = user_error(capsys, "train", "configs/fashion_edges_pix2pix.yaml", "--out",
                     tmp_path / "r", "--set", "data.resolution=24", *small)
    assert "power of two" in err
    assert not (tmp_path / "r").exists()


# -- the objectives -----------------------------------------------------------------------------


def test_pix2pix_g_loss_is_adversarial_plus_lambda_l1(tmp_path):
    t = trainer(tmp_path, PIX2PIX + ["model.dropout=0", "data.augment=[]"])
    batch = t.next_batch()
    x, y = batch["x"], batch["x_b"]
    G, D = t.task.nets["G"], t.task.nets["D"]
    with torch.no_grad():
        expected_l1 = float((G(x) - y).abs().mean())
    t.task.d_step(batch, keep_fake_for_g=True)  # D moves; G does not
    with torch.no_grad():
        expected_adv = float(torch.nn.functional.softplus(-D(torch.cat([x, G(x)], 1))).mean())
    stats = t.task.g_step(batch)
    assert float(stats["g_l1"]) == pytest.approx(expected_l1, rel=1e-5)
    assert float(stats["g_adversarial"]) == pytest.approx(expected_adv, rel=1e-5)
    assert float(stats["g_loss"]) == pytest.approx(expected_adv + 100 * expected_l1, rel=1e-5)


def test_cyclegan_d_phase_scores_each_domain_with_its_own_d(tmp_path):
    t = trainer(tmp_path, CYCLEGAN + ["stabilize.image_pool=0"])
    batch = t.next_batch()
    a, b = batch["x"], batch["x_b"]
    n = t.task.nets

    def lsgan_d(real, fake):
        return float(0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean())

    with torch.no_grad():
        want_a = lsgan_d(n["D_A"](a), n["D_A"](n["G_BA"](b)))
        want_b = lsgan_d(n["D_B"](b), n["D_B"](n["G_AB"](a)))
    stats = t.task.d_step(batch, keep_fake_for_g=False)
    assert float(stats["d_A_loss"]) == pytest.approx(want_a, rel=1e-5)
    assert float(stats["d_B_loss"]) == pytest.approx(want_b, rel=1e-5)
    assert want_a != pytest.approx(want_b, rel=1e-3)  # a swap of the two would show


def test_pix2pix_d_sees_input_then_output(tmp_path):
    t = trainer(tmp_path, PIX2PIX + ["model.dropout=0", "data.augment=[]"])
    batch = t.next_batch()
    x, y = batch["x"], batch["x_b"]
    G, D = t.task.nets["G"], t.task.nets["D"]
    soft = torch.nn.functional.softplus
    with torch.no_grad():
        want = float(soft(-D(torch.cat([x, y], 1))).mean() + soft(D(torch.cat([x, G(x)], 1))).mean())
        swapped = float(soft(-D(torch.cat([y, x], 1))).mean()
                        + soft(D(torch.cat([G(x), x], 1))).mean())
    stats = t.task.d_step(batch, keep_fake_for_g=False)
    assert float(stats["d_loss"]) == pytest.approx(want, rel=1e-5)
    assert want != pytest.approx(swapped, rel=1e-3)


def test_color_augmentation_of_pairs_is_refused(tmp_path):
    with pytest.raises(GanforgeError, match="color.*data.augment=\\[jitter, flip\\]"):
        trainer(tmp_path, PIX2PIX + ["data.augment=[flip, color]"])


def test_l1_baseline_has_no_discriminator(tmp_path):
    t = trainer(tmp_path, PIX2PIX + ["loss.g_adversarial=0"])
    assert set(t.task.modules()) == {"G"} and set(t.task.optimizers()) == {"opt_g"}
    batch = t.next_batch()
    assert t.task.d_step(batch, keep_fake_for_g=True) == {}
    stats = t.task.g_step(batch)
    assert float(stats["g_loss"]) == pytest.approx(100 * float(stats["g_l1"]))


def test_cyclegan_cycle_and_identity_terms_match_hand_computation(tmp_path):
    t = trainer(tmp_path, CYCLEGAN + ["stabilize.image_pool=0"])
    batch = t.next_batch()
    a, b = batch["x"], batch["x_b"]
    n = t.task.nets

    def l1(p, q):
        return float((p - q).abs().mean())

    with torch.no_grad():  # instance norm: no running statistics, so G is a function
        cycle = l1(n["G_BA"](n["G_AB"](a)), a) + l1(n["G_AB"](n["G_BA"](b)), b)
        identity = l1(n["G_AB"](b), b) + l1(n["G_BA"](a), a)
    t.task.d_step(batch, keep_fake_for_g=True)
    with torch.no_grad():
        adv = (0.5 * (n["D_B"](n["G_AB"](a)) - 1).pow(2).mean()
               + 0.5 * (n["D_A"](n["G_BA"](b)) - 1).pow(2).mean())
    stats = t.task.g_step(batch)
    assert float(stats["g_cycle"]) == pytest.approx(cycle, rel=1e-5)
    assert float(stats["g_identity"]) == pytest.approx(identity, rel=1e-5)
    expected = 2 * float(adv) + 10 * cycle + 0.5 * 10 * identity
    assert float(stats["g_loss"]) == pytest.approx(expected, rel=1e-5)


def test_identity_loss_needs_one_channel_count(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):  # A in RGB, B in gray: G_AB cannot read B
        write_image(tmp_path / "A" / f"{i}.png", rng.integers(0, 256, (16, 16, 3), np.uint8))
        write_image(tmp_path / "B" / f"{i}.png", rng.integers(0, 256, (16, 16), np.uint8))
    sets = CYCLEGAN + [f"data.source=paired:{tmp_path / 'A'},{tmp_path / 'B'}"]
    with pytest.raises(GanforgeError, match="B has 1.*identity_weight=0"):
        trainer(tmp_path, sets)
    assert trainer(tmp_path, sets + ["loss.identity_weight=0"]).task.shape_b[0] == 1


# -- the loop: unpaired batches, resume ---------------------------------------------------------


def test_unpaired_batches_never_pair_an_edge_map_with_its_garment(tmp_path):
    sets = CYCLEGAN + ["data.resolution=null", "data.augment=[]", "train.batch_size=16"]
    unpaired = trainer(tmp_path / "u", sets)
    paired_data = trainer(tmp_path / "c", sets + ["data.source=fashion-edges"])
    paired = trainer(tmp_path / "p", sets + ["data.source=fashion-edges", "task.name=pix2pix"])

    def matches(t):
        batch = t.next_batch()
        edges = edge_map(to_uint8(batch["x_b"]))
        return [torch.equal(e, x) for e, x in zip(edges, to_uint8(batch["x"]))]

    assert all(matches(paired))  # the control: the same check sees pix2pix's real pairs
    assert sum(matches(unpaired)) <= 1  # independent orders: a match is a 1-in-64 chance
    assert sum(matches(paired_data)) <= 1  # cyclegan on paired data does not use the pairs


@pytest.mark.parametrize("sets", [PIX2PIX, CYCLEGAN], ids=["pix2pix", "cyclegan"])
def test_resume_is_bitwise_exact(tmp_path, sets):
    tensors = assert_resume_is_exact(tmp_path, sets, n=3)
    if "task.name=cyclegan" in sets:  # the pools (6 images each) and B's own order
        assert tensors["task.pool_A.images"].shape[0] == 6
        assert tensors["task.pool_B.images"].shape[0] == 6
        assert "batches_b.order" in tensors


# -- a short run, translate, eval ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    """pix2pix on 640 fashion-edges pairs at 32x32, 300 steps (lr 1e-3: a short run)."""
    run = tmp_path_factory.mktemp("p2p") / "run"
    sets = ["task.name=pix2pix", "data.source=fashion-edges", "data.limit=640",
            "data.resolution=32", "model.g_width=8", "model.d_width=8", "train.steps=300",
            "train.batch_size=16", "train.sample_every=300", "train.checkpoint_every=300",
            "train.num_samples=8", "log.progress=false", "optim.betas=[0.5, 0.999]",
            "optim.g_lr=0.001", "optim.d_lr=0.001",
            "eval.every=100", "eval.metrics=[l1, psnr]", "eval.n=64"]
    torch.set_num_threads(1)
    train(configlib.load("configs/fashion_edges_pix2pix.yaml", sets), run, progress=False)
    return run


def test_short_pix2pix_run_beats_the_identity_mapping_on_test_l1(pix2pix_run):
    loaded = load_run(pix2pix_run)
    against = DataConfig(source="fashion-edges", split="test", resolution=32, limit=500)
    result = evaluate_sampler(loaded.sampler, loaded.config.data, against=against,
                              metrics=["l1", "psnr"], n=500, progress=False)
    test = build_dataset(against)
    identity = l1_error(test.x, test.x_b)
    assert result["l1"] < 0.5 * identity, (result["l1"], identity)
    assert result["psnr"] > psnr(test.x, test.x_b) + 3
    # and beats what ignoring the input gives: the training targets' mean image everywhere
    train_b = build_dataset(DataConfig(source="fashion-edges", resolution=32, limit=640)).x_b
    mean = train_b.float().mean(0, keepdim=True).round().to(torch.uint8).expand_as(test.x_b)
    assert result["l1"] < 0.6 * l1_error(mean, test.x_b), (result["l1"], l1_error(mean, test.x_b))
    assert result["psnr"] > psnr(mean, test.x_b) + 1
    # the reported l1 is the hand count over the same 500 translations
    outputs = to_uint8(loaded.sampler.translate(from_uint8(test.x)))
    assert result["l1"] == pytest.approx(float((outputs.double() - test.x_b.double())
                                               .abs().mean() / 255))


def test_in_training_eval_logs_translation_metrics_and_keeps_the_lowest_l1(pix2pix_run,
                                                                           capsys):
    import json

    from ganforge.training.logger import read_metrics

    rows = {r["step"]: r for r in read_metrics(pix2pix_run / "metrics.jsonl")
            if "eval/l1" in r}
    assert sorted(rows) == [100, 200, 300] and all("eval/psnr" in r for r in rows.values())
    best_step = min(rows, key=lambda s: rows[s]["eval/l1"])
    best = json.loads((pix2pix_run / "checkpoints" / "best.json").read_text())
    assert best["step"] == best_step and best["best"]["metric"] == "l1"
    code, out, _ = run_cli(capsys, "eval", pix2pix_run / "checkpoints" / "best.json",
                           "--metrics", "l1", "--n", "64", "--no-progress")
    assert code == 0 and "L1 to target" in out
    shown = float(out.split("L1 to target")[1].split()[0])
    assert shown == pytest.approx(rows[best_step]["eval/l1"], rel=1e-4)


def test_grid_shows_input_output_target(pix2pix_run):
    grid = Image.open(pix2pix_run / "samples" / "step-00000300.png")
    # 8 examples x 3 panels, 4 groups (12 images) per row: 12 x 2 images of 32 + 2 padding
    assert grid.size == (12 * 34 + 2, 2 * 34 + 2)


def test_truncation_of_a_translator_is_refused(pix2pix_run, tmp_path, capsys):
    err = user_error(capsys, "sample", pix2pix_run, "-n", "4", "--truncation", "0.5",
                     "--out", tmp_path / "x.png")
    assert "draws no noise" in err and "without --truncation" in err
    assert not (tmp_path / "x.png").exists()


def test_translate_a_folder_writes_each_translation_under_its_name(pix2pix_run, tmp_path,
                                                                    capsys):
    test = build_dataset(DataConfig(source="fashion-edges", split="test", resolution=32,
                                    limit=3))
    for i in range(3):
        write_image(tmp_path / "in" / f"e{i}.png", test.x[i, 0].numpy())
    code, out, _ = run_cli(capsys, "translate", pix2pix_run, tmp_path / "in", "--out",
                           tmp_path / "out")
    assert code == 0 and "Translated 3 images AtoB" in out
    expected = to_uint8(load_run(pix2pix_run).sampler.translate(from_uint8(test.x)))
    for i in range(3):
        written = np.array(Image.open(tmp_path / "out" / f"e{i}.png"))
        assert torch.equal(torch.from_numpy(written), expected[i, 0])
    err = user_error(capsys, "translate", pix2pix_run, tmp_path / "in", "--out",
                     tmp_path / "out")
    assert "3 output file(s) exist" in err and "--overwrite" in err
    write_image(tmp_path / "in" / "big.png", np.zeros((40, 40, 3), dtype=np.uint8))
    err = user_error(capsys, "translate", pix2pix_run, tmp_path / "in", "--out",
                     tmp_path / "out2")
    assert "'big.png' (3x40x40)" in err and "--resize" in err
    assert not (tmp_path / "out2").exists()
    code, _, err = run_cli(capsys, "translate", pix2pix_run, tmp_path / "in", "--out",
                           tmp_path / "out2", "--resize")
    assert code == 0 and "converted 1 of 4" in err
    err = user_error(capsys, "translate", pix2pix_run, tmp_path / "in", "--out",
                     tmp_path / "out3", "--direction", "BtoA")
    assert "learned AtoB only" in err
    (tmp_path / "empty").mkdir()
    err = user_error(capsys, "translate", pix2pix_run, tmp_path / "empty", "--out",
                     tmp_path / "out4")
    assert "No images" in err


def test_translation_runs_refuse_noise_sampling_and_others_refuse_translation(
        pix2pix_run, tmp_path, capsys):
    err = user_error(capsys, "sample", pix2pix_run, "-n", "4", "--out", tmp_path / "s.png")
    assert "ganforge translate" in err
    err = user_error(capsys, "eval", pix2pix_run, "--metrics", "cycle", "--n", "8")
    assert "both ways" in err
    # --against SOURCE:split is read at the run's resolution (32), not the source's 28
    code, out, err = run_cli(capsys, "eval", pix2pix_run, "--against", "fashion-edges:test",
                             "--metrics", "l1", "--n", "16", "--no-progress")
    assert code == 0 and "L1 to target" in out, err
    err = user_error(capsys, "eval", pix2pix_run, "--against", "fashion-mnist:test",
                     "--metrics", "l1", "--n", "16")
    assert "two domains" in err


def test_psnr_ssim_l1_on_known_images():
    a = torch.full((2, 1, 16, 16), 100, dtype=torch.uint8)
    b = a + 51  # 0.2 in [0, 1] units everywhere
    assert l1_error(a, b) == pytest.approx(0.2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(1 / 0.04))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) < 1.0
