"""Training under torchrun: shards, the global batch, and a real 2-process gloo run on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganforge import config as configlib
from ganforge import tasks
from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.training.batches import EpochBatches
from ganforge.training.distributed import Distributed
from ganforge.training.loop import resume, train
from test_conditional import TINY_CGAN
from test_semi_supervised import SSL_MLP
from test_training import TINY_MLP, newest_tensors
from test_translation import CYCLEGAN, PIX2PIX

PLAIN_MLP = TINY_MLP + ["model.g_norm=none", "train.checkpoint_every=4"]  # no BatchNorm


def shards(n: int, batch: int, world: int, seed: int = 0) -> list[EpochBatches]:
    return [
        EpochBatches(n, batch, torch.Generator().manual_seed(seed), rank=r, world=world)
        for r in range(world)
    ]


def test_two_processes_see_disjoint_shards_that_cover_the_epoch():
    ranks = shards(40, 4, 2)
    seen = [torch.cat([r.next() for _ in range(5)]) for r in ranks]  # 5 steps: the epoch
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    assert sorted(torch.cat(seen).tolist()) == list(range(40))


def test_each_step_of_n_processes_is_the_batch_of_one_process():
    (alone,) = shards(50, 6, 1)
    ranks = shards(50, 3, 2)
    for _ in range(20):  # across epoch boundaries (8 steps per epoch, 2 examples dropped)
        together = torch.cat([r.next() for r in ranks])
        assert sorted(together.tolist()) == sorted(alone.next().tolist())
    assert ranks[0].epoch == alone.epoch == 2


def test_state_of_two_processes_resumes_in_one_and_in_four():
    ranks = shards(48, 4, 2)
    for _ in range(3):
        [r.next() for r in ranks]
    tensors, values = ranks[0].state()
    assert values["position"] == 24  # counted over both processes
    upcoming = torch.cat([r.next() for r in ranks])
    (alone,) = shards(48, 8, 1, seed=99)
    alone.load_state(tensors, values)
    assert torch.equal(alone.next().sort().values, upcoming.sort().values)
    four = shards(48, 2, 4, seed=99)
    for r in four:
        r.load_state(tensors, values)
    assert torch.equal(torch.cat([r.next() for r in four]).sort().values, upcoming.sort().values)


def test_global_batch_must_split_over_the_processes():
    with pytest.raises(GanforgeError, match="multiple of 3"):
        Distributed(rank=0, world=3).check_batch(64)
    assert Distributed(rank=1, world=4).check_batch(64) == 16


def test_each_process_takes_its_share_of_the_steps_latent_codes():
    config = configlib.load(None, TINY_MLP)
    info = build_dataset(config.data).info()
    task_class = tasks.get(config.task.name)

    def codes(rank: int, world: int, n: int) -> torch.Tensor:
        task = task_class(config, info, torch.device("cpu"), torch.Generator().manual_seed(5))
        task.rank, task.world = rank, world
        return task.noise_batch(n)

    # rank r keeps rows r, r + 2, ...: the rows of the examples EpochBatches deals it
    together = torch.stack([codes(0, 2, 3), codes(1, 2, 3)], dim=1).flatten(0, 1)
    assert torch.equal(together, codes(0, 1, 6))


def torchrun(
    out: Path, steps: int, procs: int = 2, resume_run: bool = False, sets: list[str] = PLAIN_MLP
):
    """ganforge train under torchrun (gloo, CPU), in a subprocess."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={procs}", "-m", "ganforge", "train"]
    if resume_run:
        command += ["--resume", str(out)]
    else:
        config = out.parent / f"{out.name}.yaml"
        config.write_text(configlib.dump(configlib.load(None, sets)))
        command += [str(config), "--out", str(out), "--set", "train.device=cpu"]
    command += ["--set", f"train.steps={steps}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=240, check=False
    )


def assert_close_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    for name, tensor in a.items():
        if name.startswith(("G.", "D.")):
            assert torch.allclose(tensor, b[name], atol=1e-4), name


def test_two_gloo_processes_train_like_one_and_resume_in_one(tmp_path):
    done = torchrun(tmp_path / "ddp", steps=8)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Finished at step 8") == 1  # rank 0 alone reports
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8]  # one writer: each step once
    assert "torchrun: 2 processes, 32 examples each" in done.stdout + done.stderr

    # the same global batches, codes and averaged gradients as one process with batch 64
    alone = configlib.load(None, PLAIN_MLP + ["train.steps=8"])
    train(alone, tmp_path / "alone", progress=False)
    assert_close_states(newest_tensors(tmp_path / "alone"), newest_tensors(tmp_path / "ddp"))

    # the 2-process checkpoint resumes in 1 process, and continues like the 1-process run
    resume(tmp_path / "ddp", ["train.steps=12"], progress=False)
    resume(tmp_path / "alone", ["train.steps=12"], progress=False)
    assert_close_states(newest_tensors(tmp_path / "alone"), newest_tensors(tmp_path / "ddp"))


def test_one_process_checkpoint_resumes_in_two_like_one(tmp_path):
    alone = configlib.load(None, PLAIN_MLP + ["train.steps=4"])
    train(alone, tmp_path / "a", progress=False)
    train(alone, tmp_path / "b", progress=False)
    done = torchrun(tmp_path / "a", steps=8, resume_run=True)
    assert done.returncode == 0, done.stderr[-3000:]
    resume(tmp_path / "b", ["train.steps=8"], progress=False)
    assert_close_states(newest_tensors(tmp_path / "b"), newest_tensors(tmp_path / "a"))


def test_sync_batchnorm_on_the_cpu_is_refused_with_the_fix():
    from ganforge.training.speed import prepare_distributed

    config = configlib.load(None, TINY_MLP + ["train.sync_batchnorm=true"])
    info = build_dataset(config.data).info()
    task = tasks.get(config.task.name)(config, info, torch.device("cpu"), torch.Generator())
    with pytest.raises(GanforgeError, match="train.sync_batchnorm=false"):
        prepare_distributed(task, Distributed(rank=0, world=2), config)
    assert "no effect" in prepare_distributed(task, Distributed(), config)[0]


class RowSums:
    """A stand-in extractor: features and logits that differ per image; counts its rows."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, images: torch.Tensor):
        self.rows += images.shape[0]
        x = images.float().flatten(1)
        return torch.stack([x.sum(1), x.max(1).values], 1), x[:, :3]


def gather_worker(rank: int, world: int, init: str, images: torch.Tensor, out: str) -> None:
    from ganforge.metrics.extract import Shard, extract

    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    extractor = RowSums()
    feats, logits = extract(extractor, images, 2, shard=Shard(rank, world))
    torch.save({"feats": feats, "logits": logits, "rows": extractor.rows}, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def test_sharded_extraction_gathers_every_row_in_order(tmp_path):
    from ganforge.metrics.extract import extract

    images = torch.randint(0, 256, (7, 1, 4, 4), dtype=torch.uint8)  # 7 rows: parts of 4 and 3
    init = f"file://{tmp_path / 'store'}"
    torch.multiprocessing.spawn(
        gather_worker, args=(2, init, images, str(tmp_path / "out")), nprocs=2, join=True
    )
    expected_feats, expected_logits = extract(RowSums(), images, 2)
    results = [torch.load(tmp_path / f"out.{r}") for r in range(2)]
    assert [r["rows"] for r in results] == [4, 3]  # each process extracted its part only
    for r in results:  # ... and every process got all rows, in order
        assert torch.equal(r["feats"], expected_feats)
        assert torch.equal(r["logits"], expected_logits)


IMAGES = [*TINY_CGAN[:-3], "task.name=unconditional", "log.progress=false"]
# draws from both per-process streams: the global RNG (WGAN-GP's interpolation points,
# instance noise) and data.augment's generator
PER_PROCESS = [*IMAGES, "loss.name=wgan-gp", "stabilize.instance_noise=0.1",
               "stabilize.instance_noise_steps=8",  # one schedule for the 4- and 2+2-step runs
               "data.augment=[flip,crop]", "train.checkpoint_every=2", "train.sample_every=100"]
# DiffAugment draws for the whole step; an MLP without BatchNorm on images (DCGAN's G always
# has it), so N processes train like one
VIEWED = [*IMAGES, "model.arch=mlp", "model.g_hidden=[64]", "model.d_hidden=[64]",
          "model.g_norm=none", "model.d_norm=none", "train.checkpoint_every=4",
          "stabilize.diffaugment=[color,translation,cutout]"]


def rows(run: Path, name: str) -> torch.Tensor:
    return newest_tensors(run)[f"ranks.{name}"]


def test_diffaugment_under_torchrun_matches_one_process(tmp_path):
    done = torchrun(tmp_path / "ddp", steps=4, sets=VIEWED)
    assert done.returncode == 0, done.stderr[-3000:]
    train(configlib.load(None, [*VIEWED, "train.steps=4"]), tmp_path / "alone", progress=False)
    assert_close_states(newest_tensors(tmp_path / "alone"), newest_tensors(tmp_path / "ddp"))


def test_each_process_draws_its_own_noise_and_resumes_it_exactly(tmp_path):
    whole = torchrun(tmp_path / "whole", steps=4, sets=PER_PROCESS)
    assert whole.returncode == 0, whole.stderr[-3000:]
    for name in ("rng.torch", "rng.augment"):  # seeded alike, the ranks would hold one state
        states = rows(tmp_path / "whole", name)
        assert states.shape[0] == 2 and not torch.equal(states[0], states[1]), name
    assert torch.equal(rows(tmp_path / "whole", "rng.torch")[0],
                       newest_tensors(tmp_path / "whole")["rng.torch"])

    # stopped at step 2 and resumed in 2 processes: each takes back its own streams
    half = torchrun(tmp_path / "half", steps=2, sets=PER_PROCESS)
    assert half.returncode == 0, half.stderr[-3000:]
    resumed = torchrun(tmp_path / "half", steps=4, resume_run=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = newest_tensors(tmp_path / "whole"), newest_tensors(tmp_path / "half")
    for name, tensor in a.items():
        if name.startswith(("G.", "D.", "ranks.")):
            assert torch.equal(tensor, b[name]), name

    # resumed in more processes than wrote it: the new ones start fresh streams, with a note
    more = torchrun(tmp_path / "half", steps=6, procs=4, resume_run=True)
    assert more.returncode == 0, more.stderr[-3000:]
    assert "process(es) 2-3 start fresh ones" in more.stdout
    states = rows(tmp_path / "half", "rng.torch")
    assert len({bytes(row.tolist()) for row in states}) == 4


def test_evaluation_during_a_torchrun_run_runs_everywhere_and_logs_once(tmp_path):
    config = tmp_path / "eval.yaml"
    sets = PLAIN_MLP + ["eval.every=4", "eval.metrics=[modes]", "eval.n=500"]
    config.write_text(configlib.dump(configlib.load(None, sets)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "ganforge", "train", str(config),
               "--out", str(tmp_path / "run"), "--set", "train.steps=8"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent / "src")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    evals = [r["step"] for r in rows if "eval/modes_covered" in r]
    assert evals == [4, 8]  # once per evaluation step: rank 0 alone writes
    assert done.stdout.count("step 8: ") == 1
    assert (tmp_path / "run" / "checkpoints" / "best.json").is_file()


@pytest.mark.parametrize(
    "sets",
    [TINY_CGAN, PIX2PIX, CYCLEGAN, SSL_MLP],
    ids=["conditional", "pix2pix", "cyclegan", "semi-supervised"],
)
def test_every_kind_of_gan_trains_under_torchrun_and_resumes_alone(tmp_path, sets):
    done = torchrun(tmp_path / "run", steps=2, sets=[*sets, "train.checkpoint_every=2"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torchrun: 2 processes" in done.stdout
    assert resume(tmp_path / "run", ["train.steps=3"], progress=False).step == 3


def test_flat_copy_writes_what_the_collective_left_back_into_each_tensor():
    from ganforge.training.distributed import flat_copy

    a, b = torch.ones(2, 3), torch.arange(4.0)
    with flat_copy([a, b]) as flat:
        assert flat.shape == (10,)
        flat *= 2  # what an all-reduce or broadcast does in place
    assert torch.equal(a, torch.full((2, 3), 2.0)) and torch.equal(b, 2 * torch.arange(4.0))
