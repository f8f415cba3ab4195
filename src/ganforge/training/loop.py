"""The training loop every task shares: schedule, n_critic, D warm-up, logging, sample grids,
checkpoints with exact resume, periodic evaluation.

One step is one iteration: n_critic D updates, then one G update (D alone during the first
train.d_warmup_steps steps). Randomness comes from three generators seeded from train.seed
(data order, latent noise, fixed sample noise) plus torch's global one (weight init, the
gradient-penalty interpolation); all of them are saved in checkpoints, so CPU resume is bitwise.
On a GPU, z comes from a seeded generator there (also saved). Under torchrun each process runs
this loop on its share of every step's batch (training/distributed.py); rank 0 writes the run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge import config as configlib
from ganforge import tasks
from ganforge.config import Config, DataConfig
from ganforge.data import Dataset, build_dataset
from ganforge.data.augment import augment_images, augment_pair
from ganforge.data.subset import balanced_subset
from ganforge.devices import pick_device
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_text, remove_stale_temps
from ganforge.images import save_captioned_grid, save_grid
from ganforge.metrics.extract import Shard
from ganforge.nets.progressive import (
    current_resolution,
    growing,
    growing_parts,
    growth_images,
    set_growth,
)
from ganforge.report.plots import plot_losses
from ganforge.training import checkpoint
from ganforge.training.batches import EpochBatches, LabelledBatches
from ganforge.training.checkpoint import checkpoint_name, checkpoint_step
from ganforge.training.compat import check_compatible, check_fields, warn_ignored
from ganforge.training.distributed import Distributed, process_seed
from ganforge.training.guards import check_finite, check_losses_now, check_weights
from ganforge.training.logger import RunLogger, read_metrics, truncate_after
from ganforge.training.rundir import RunDir
from ganforge.training.schedule import (
    apply_optimizer_settings,
    lr_factor,
    optimizer_settings,
    schedule_notes,
    set_lr_factor,
)
from ganforge.training.speed import (
    compile_nets,
    eager_outside_steps,
    prepare_distributed,
    to_channels_last,
    uses_cuda_graphs,
)

DATA_SEED_OFFSET, NOISE_SEED_OFFSET, FIXED_SEED_OFFSET, AUGMENT_SEED_OFFSET = 0, 1, 2, 3
LABELS_SEED_OFFSET, LABELLED_ORDER_SEED_OFFSET = 4, 5  # the labelled subset and its order
DOMAIN_B_SEED_OFFSET = 6  # the order of an unpaired second domain (x_b)
INIT_SEED_OFFSET = 8  # the real examples of the data-dependent init (7: tasks' GPU z)
INIT_EXAMPLES = 500  # real examples the data-dependent init reads (Salimans et al.'s 500)
LOWER_IS_BETTER = ("fid", "kid", "modes_kl", "ifid", "errors", "l1", "cycle_l1")  # every other metric: higher is better


@dataclass
class TrainResult:
    """What a finished (or interrupted) run leaves behind."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    sample_grid: Path | None
    loss_plot: Path | None
    interrupted: bool = False
    main: bool = True  # False in the processes of a torchrun run other than rank 0 (silent)


def run_meta(config: Config, dataset: Dataset) -> dict[str, Any]:
    """Metadata stored with every checkpoint: enough to rebuild the sampler without the data."""
    return {
        "task": config.task.name,
        "config": config.to_dict(),
        "data": dataset.info().to_meta(),
        "versions": {"ganforge": ganforge.__version__, "torch": torch.__version__},
    }


class StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step (and save)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopFlag:  # noqa: PYI034 (typing.Self needs Python 3.11)
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Builds everything one run needs and runs its loop."""

    def __init__(self, config: Config, run: RunDir) -> None:
        self.config = config
        self.run = run
        self.notes: list[str] = []  # one-line notices printed when fit() starts
        t = config.train
        self.dist = Distributed.from_env()
        self.device = pick_device(self.dist.device_name(t.device))
        self.dist.join(self.device)
        batch = self.dist.check_batch(t.batch_size)  # this process's share of each batch
        self.dataset = build_dataset(config.data)
        # a memory-mapped dataset stays on the CPU: each batch is gathered there and copied
        self.data_device = torch.device("cpu") if self.dataset.mapped else self.device
        task_class = tasks.get(config.task.name)
        check_fields(task_class, self.dataset, config.data.source)
        warn_ignored(config)
        labelled = task_class.labelled_subset  # y only for a few examples: its own stream
        stream = [f for f in task_class.needs if not (labelled and f == "y")]
        pairs = self.dataset.paired and task_class.keeps_pairs
        own_order = "x_b" in stream and not pairs  # unpaired: B in its own order
        self.fields = {
            f: self.dataset.field(f).to(self.data_device) for f in stream
            if not (own_order and f == "x_b")
        }
        self.domain_b = self.dataset.x_b.to(self.data_device) if own_order else None
        self.labelled = self.labelled_batches() if labelled else None
        self.labelled_y = self.dataset.labels.to(self.data_device) if labelled else None
        torch.manual_seed(t.seed)
        self.noise = torch.Generator().manual_seed(t.seed + NOISE_SEED_OFFSET)
        self.task = task_class(config, self.dataset.info(), self.device, self.noise)
        m = config.model
        if m.weight_norm != "none" and m.weight_norm_init == "data":  # before resume or step 1
            self.task.init_from_data(self.init_examples())
        self.notes.extend(prepare_distributed(self.task, self.dist, config))
        self.notes.extend(to_channels_last(self.task, config))  # after the broadcast of weights
        self.notes.extend(compile_nets(self.task, config))
        self.cuda_graphs = uses_cuda_graphs(self.task, config)
        self.seed_process_streams(step=0)  # sets self.augment
        self.grown = [p for m in self.task.modules().values() for p in growing_parts(m)]
        shard = {"rank": self.dist.rank, "world": self.dist.world, "device": self.data_device}
        data_gen = torch.Generator().manual_seed(t.seed + DATA_SEED_OFFSET)
        self.batches = EpochBatches(len(self.dataset), batch, data_gen, **shard)
        self.batches_b = None
        if self.domain_b is not None:
            b_gen = torch.Generator().manual_seed(t.seed + DOMAIN_B_SEED_OFFSET)
            self.batches_b = EpochBatches(len(self.domain_b), batch, b_gen, **shard)
        if "x_b" in stream and self.batches_b is None and "color" in config.data.augment:
            raise GanforgeError(
                "data.augment 'color' would recolour input and target together as one image "
                "(pairs are augmented with one draw); the pix2pix reference uses jitter and "
                "flip. Drop color: data.augment=[jitter, flip]."
            )
        if config.data.augment and self.dataset.kind != "image":
            raise GanforgeError(
                f"data.augment ({', '.join(config.data.augment)}) transforms images; "
                f"{config.data.source} holds vectors. Set data.augment=[]."
            )
        fixed = torch.Generator().manual_seed(t.seed + FIXED_SEED_OFFSET)
        if task_class.shows_examples:
            shown = self.fixed_examples(t.num_samples, fixed)
            self.fixed_inputs = self.task.fixed_inputs(t.num_samples, fixed, shown)
        else:
            self.fixed_inputs = self.task.fixed_inputs(t.num_samples, fixed)
        self.step = 0
        self.last_checkpoint: Path | None = None
        self.best: dict[str, Any] | None = None
        self.most_modes: float | None = None  # most modes any evaluation of this run covered
        # called after each evaluation with (step, scores); True stops the run (saved, as
        # Ctrl-C does): what `ganforge search` uses to prune a trial
        self.on_eval: Callable[[int, dict[str, float]], bool] | None = None
        self.stop_requested = False

    def fixed_examples(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """n training examples drawn once (x and x_b, model scale, CPU) for the sample grid."""
        index = torch.randperm(len(self.dataset), generator=generator)[:n]
        shown = {"x": self.dataset.to_model(self.dataset.x[index])}
        if self.dataset.x_b is not None:
            index_b = index if self.dataset.paired else index % len(self.dataset.x_b)
            shown["x_b"] = self.dataset.to_model(self.dataset.x_b[index_b])
        if "text" in self.dataset.fields:
            shown["text"] = self.dataset.field("text")[index]
        return shown

    def init_examples(self) -> dict[str, torch.Tensor]:
        """INIT_EXAMPLES training examples (every streamed field, model scale, on the device),
        drawn from their own seed: what the data-dependent init of weight norm reads."""
        seed = self.config.train.seed + INIT_SEED_OFFSET
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(seed))
        index = order[:INIT_EXAMPLES].to(self.data_device)
        return self.to_model({k: v[index].to(self.device) for k, v in self.fields.items()})

    def to_model(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch with its examples (x, x_b, x_labelled) in model scale, in place."""
        for name in ("x", "x_b", "x_labelled"):
            if name in batch:
                batch[name] = self.dataset.to_model(batch[name])
        return batch

    def labelled_batches(self) -> LabelledBatches:
        """The labelled subset (data.labels_per_class per class, seeded) and its batches."""
        t, data = self.config.train, self.config.data
        indices = balanced_subset(
            self.dataset.labels, data.labels_per_class, t.seed + LABELS_SEED_OFFSET,
            self.dataset.class_names,
        )
        order = torch.Generator().manual_seed(t.seed + LABELLED_ORDER_SEED_OFFSET)
        if data.labels_per_class is not None:
            self.notes.append(
                f"labelled subset: {len(indices)} examples ({data.labels_per_class} per class, "
                f"seed {t.seed + LABELS_SEED_OFFSET}); all {len(self.dataset)} used unlabelled"
            )
        return LabelledBatches(indices, t.batch_size, order)

    # -- state -----------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write the checkpoint of the current step and drop the oldest beyond keep_checkpoints.

        Refused (the run stops as diverged) when any weight is NaN or infinite, so the newest
        checkpoint is always a good one.
        """
        check_weights(self.task.modules(), self.step, self.last_checkpoint)
        streams = self.process_streams()  # a collective: every process takes part
        if not self.dist.main:  # every process holds the same state: rank 0 writes it
            self.last_checkpoint = self.run.checkpoints / f"{checkpoint_name(self.step)}.json"
            return self.last_checkpoint
        batch_tensors, batch_values = self.batches.state()
        extra = {f"batches.{k}": v for k, v in batch_tensors.items()}
        b_values = None
        if self.batches_b is not None:
            b_tensors, b_values = self.batches_b.state()
            extra.update({f"batches_b.{k}": v for k, v in b_tensors.items()})
        extra["rng.noise"] = self.noise.get_state()
        extra["rng.torch"] = torch.get_rng_state()
        extra["rng.augment"] = self.augment.get_state()
        extra.update(streams)
        extra.update({f"task.{k}": v for k, v in self.task.state_tensors().items()})
        precision = self.task.precision.state_tensors()
        extra.update({f"precision.{k}": v for k, v in precision.items()})
        labelled_values = None
        if self.labelled is not None:
            labelled_tensors, labelled_values = self.labelled.state()
            extra.update({f"labelled.{k}": v for k, v in labelled_tensors.items()})
        if self.device.type == "cuda":
            extra["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = run_meta(self.config, self.dataset)
        meta.update(batches=batch_values, best=self.best, most_modes=self.most_modes)
        if labelled_values is not None:
            meta["labelled"] = labelled_values
        if b_values is not None:
            meta["batches_b"] = b_values
        path = checkpoint.save(
            self.run.checkpoints, self.step, self.task.modules(), self.task.optimizers(),
            extra, meta,
        )
        checkpoint.prune(self.run.checkpoints, self.config.train.keep_checkpoints)
        self.last_checkpoint = path
        return path

    def restore(self, json_path: Path) -> None:
        """Continue from a checkpoint: nets, optimizers, data position, every RNG, step."""
        tensors, meta = checkpoint.load(json_path)
        check_compatible(meta, self.config, self.dataset)
        optimizers = self.task.optimizers()
        wanted = {name: optimizer_settings(opt) for name, opt in optimizers.items()}
        checkpoint.restore(tensors, meta, self.task.modules(), optimizers)
        for name, optimizer in optimizers.items():
            for change in apply_optimizer_settings(optimizer, wanted[name]):
                self.notes.append(f"resume: {name} {change} (from the config; in effect now)")
        self.notes.extend(schedule_notes(meta["config"], self.config, int(meta["step"])))
        self.task.load_state_tensors(checkpoint.module_state(tensors, "task"))
        self.task.precision.load_state_tensors(checkpoint.module_state(tensors, "precision"))
        prefix = "batches."
        batch_tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        self.batches.load_state(batch_tensors, meta["batches"])
        if self.labelled is not None:
            self.labelled.load_state(checkpoint.module_state(tensors, "labelled"), meta["labelled"])
        if self.batches_b is not None:
            self.batches_b.load_state(
                checkpoint.module_state(tensors, "batches_b"), meta["batches_b"]
            )
        self.noise.set_state(tensors["rng.noise"])
        if "rng.augment" in tensors:  # checkpoints from before data.augment have none
            self.augment.set_state(tensors["rng.augment"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.step = int(meta["step"])
        self.restore_process_streams(tensors)
        self.best = meta.get("best")
        self.most_modes = meta.get("most_modes")
        self.last_checkpoint = json_path

    def process_streams(self) -> dict[str, torch.Tensor]:
        """Under torchrun, every process's own random streams, one row per rank (`ranks.*`
        checkpoint tensors); empty alone. A collective: every process must call it."""
        if not self.dist.active:
            return {}
        states = {"rng.torch": torch.get_rng_state(), "rng.augment": self.augment.get_state()}
        if self.device.type == "cuda":
            states["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return {f"ranks.{k}": self.dist.gather_rows(v) for k, v in states.items()}

    def restore_process_streams(self, tensors: dict[str, torch.Tensor]) -> None:
        """Give this process its own saved streams (restore set rank 0's everywhere); a
        process the checkpoint has no row for starts fresh ones from its rank and the step."""
        rank, rows = self.dist.rank, tensors.get("ranks.rng.torch")
        saved = 1 if rows is None else len(rows)
        if self.dist.world > saved:
            new = f"{saved}-{self.dist.world - 1}" if self.dist.world - saved > 1 else saved
            self.notes.append(
                f"resume: the checkpoint holds the random streams of {saved} process(es); "
                f"process(es) {new} start fresh ones"
            )
        if rank == 0:
            return
        if rank >= saved:
            self.seed_process_streams(self.step)
            return
        torch.set_rng_state(rows[rank].clone())  # set_state reads from the storage's start
        self.augment.set_state(tensors["ranks.rng.augment"][rank].clone())
        if "ranks.rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["ranks.rng.cuda"][rank].clone(), self.device)

    def seed_process_streams(self, step: int) -> None:
        """Seed this process's own streams for a run starting at `step`: the augmentation
        generator, and (other than rank 0, whose global RNG keeps train.seed's stream past the
        nets' init) the global RNG that GP points, D's noise and dropout draw from."""
        seed, rank = self.config.train.seed, self.dist.rank
        if rank:
            torch.manual_seed(process_seed(seed, rank, step))
        augment_seed = process_seed(seed + AUGMENT_SEED_OFFSET, rank, step)
        self.augment = torch.Generator().manual_seed(augment_seed)

    # -- outputs ---------------------------------------------------------------------------
    def save_samples(self) -> Path:
        """Grid of G's output on the fixed inputs (images), or a scatter plot (2D points)."""
        with eager_outside_steps(self.cuda_graphs):
            fake, nrow = self.task.grid(self.fixed_inputs)
        path = self.run.sample_path(self.step)
        if self.dataset.kind == "image":
            side = current_resolution(self.task.sampler().G)
            if side is not None and side < fake.shape[-1]:  # growing: show what G makes now
                step = fake.shape[-1] // side  # G's image is side x side, upsampled (nearest)
                fake = fake[..., ::step, ::step]
            captions = getattr(self.task, "grid_captions", None)
            if captions is not None:  # one row per caption, printed beside it
                return save_captioned_grid(
                    fake.cpu(), path, nrow, captions(self.fixed_inputs)
                )
            return save_grid(fake.cpu(), path, nrow=nrow)
        from ganforge.report.scatter import plot_points

        return plot_points(
            fake.cpu(), self.dataset.x[:2000], path, title=f"step {self.step}",
            labels=self.fixed_inputs.get("y"),
        )

    def evaluate(self, logger: RunLogger) -> None:
        """Run the configured metrics, log them, and keep the best checkpoint."""
        from ganforge.training.evaluation import evaluate_sampler

        if growing(self.task.sampler().G):
            logger.log({"step": self.step, "eval_skipped": self.growth_note()})
            return
        e = self.config.eval
        against = e.against or default_against(self.config.data)
        shard = Shard(self.dist.rank, self.dist.world) if self.dist.active else None
        with eager_outside_steps(self.cuda_graphs):
            result = evaluate_sampler(
                self.task.sampler(), self.config.data, against=against, metrics=e.metrics,
                features=e.features, n=e.n, seed=self.config.train.seed, labels=e.labels,
                progress=False, device=str(self.device), matcher=e.matcher,
                phrasing=e.phrasing, shard=shard,
            )
        scores = flat_scores(result)
        row = {"step": self.step, **{f"eval/{k}": v for k, v in scores.items()}}
        if self.grown:
            row["eval_resolution"] = self.dataset.shape[-1]
        if "mode_histogram" in result:
            row["eval/mode_histogram"] = result["mode_histogram"]
        logger.log(row)  # the other processes of a torchrun run log to nowhere
        if self.dist.main:
            logger.message(
                f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
            )
        self.watch_coverage(scores, logger)
        self.keep_best(scores)
        if self.on_eval is not None and self.on_eval(self.step, scores):
            self.stop_requested = True

    def keep_best(self, scores: dict[str, float]) -> None:
        """Copy the checkpoint of this step as best.* when its primary score is the best yet."""
        primary = configlib.primary_score(self.config.eval)
        value = scores.get(primary)
        if value is None or not math.isfinite(value):
            return
        lower = primary in LOWER_IS_BETTER
        best = None if self.best is None else self.best["value"]
        if best is None or (value < best if lower else value > best):
            self.best = {"metric": primary, "value": value, "step": self.step}
            path = self.save_checkpoint()
            if self.dist.main:  # the others hold the same state and write nothing
                checkpoint.copy_as(path, "best")

    def growth_note(self) -> str:
        """Why evaluation waits while the nets grow, and from which step it runs."""
        final = self.dataset.shape[-1]
        levels = max(p.levels for p in self.grown)
        phase = self.config.model.phase_images
        batch = self.config.train.batch_size
        done = -(-growth_images(phase, levels) // batch) + 1  # first step with growth complete
        side = current_resolution(self.task.sampler().G)
        return (
            f"progressive growing at {side}x{side}: metrics are computed at the final "
            f"resolution {final}x{final} only, from step {done} on"
        )

    def watch_coverage(self, scores: dict[str, float], logger: RunLogger) -> None:
        """Warn when the modes covered fall below the most this run has covered (collapse)."""
        covered = scores.get("modes_covered")
        if covered is None:
            return
        most = self.most_modes
        if most is not None and covered < most and self.dist.main:
            total = int(scores.get("modes_total", 0))
            logger.message(
                f"warning: step {self.step} covers {int(covered)} of {total} modes, down from "
                f"{int(most)} at best: G may be collapsing (see eval/mode_histogram in "
                "metrics.jsonl; remedies: README, 'Fighting mode collapse')."
            )
        self.most_modes = covered if most is None else max(most, covered)

    # -- the loop --------------------------------------------------------------------------
    def fit(self, progress: bool) -> TrainResult:
        """Train until train.steps (or Ctrl-C); always leave a checkpoint and a grid."""
        cfg = self.config
        t, h = cfg.train, self.task.hyper
        main = self.dist.main  # the other processes of a torchrun run write and print nothing
        if main:
            truncate_after(self.run.metrics, self.step)
        logger = RunLogger(
            self.run.metrics if main else Path(os.devnull), self.step, t.steps,
            main and progress and cfg.log.progress,
            self.run.tensorboard if cfg.log.tensorboard and main else None,
        )
        for note in self.notes if main else ():
            logger.message(note)
        grid = None
        interrupted = False
        clock, steps_timed = time.perf_counter(), 0
        try:
            with StopFlag() as stop:
                while self.step < t.steps:
                    if self.should_stop(stop.requested):
                        interrupted = True
                        break
                    self.step += 1
                    log_now = self.step % cfg.log.every == 0 or self.step == t.steps
                    stats = self.train_step(log_now)
                    checkpoint_due = self.step % t.checkpoint_every == 0 or bool(
                        cfg.eval.every and self.step % cfg.eval.every == 0
                    )
                    scaled = self.task.precision.scaling  # fp16: its scalers skip inf steps
                    if not scaled and check_losses_now(self.device, log_now, checkpoint_due):
                        check_finite(stats, self.step, self.last_checkpoint)
                    steps_timed += 1
                    if log_now:
                        seconds = time.perf_counter() - clock
                        rate = steps_timed * t.batch_size * h.n_critic / max(seconds, 1e-9)
                        logger.log(
                            {"step": self.step, **{k: float(v) for k, v in stats.items()},
                             "img_per_s": rate}
                        )
                        clock, steps_timed = time.perf_counter(), 0
                    if self.step % t.sample_every == 0 and main:
                        grid = self.save_samples()
                    if self.step % t.checkpoint_every == 0:
                        self.save_checkpoint()
                    if cfg.eval.every and self.step % cfg.eval.every == 0:
                        self.evaluate(logger)  # every process: each extracts a part
                        clock = time.perf_counter()
                    logger.advance()
        finally:
            logger.close()
        if self.last_checkpoint is None or checkpoint_step(self.last_checkpoint) != self.step:
            self.save_checkpoint()
        if not main:
            self.dist.barrier()  # rank 0 finishes its files before the group is left
            self.dist.leave()
            return TrainResult(self.run.root, self.step, None, None, None, interrupted, False)
        if grid is None or self.step % t.sample_every != 0:
            grid = self.save_samples()
        plot = plot_losses(read_metrics(self.run.metrics), self.run.loss_plot, self.dataset.name)
        self.dist.barrier()
        self.dist.leave()
        return TrainResult(self.run.root, self.step, self.last_checkpoint, grid, plot, interrupted)

    def should_stop(self, ctrl_c: bool) -> bool:
        """Whether to stop before the next step: Ctrl-C or a stop asked after an evaluation.

        Under torchrun every process must stop at the same step, so the processes agree on it
        (one tiny all-reduce) at log and checkpoint steps only, not at every step.
        """
        wanted = ctrl_c or self.stop_requested
        if not self.dist.active:
            return wanted
        t, every = self.config.train, self.config.log.every
        if self.step % every and self.step % t.checkpoint_every:
            return False
        return self.dist.any(wanted, self.device)

    def train_step(self, log_now: bool) -> dict[str, torch.Tensor]:
        """One iteration: n_critic D updates, then a G update unless D is warming up."""
        t, h, task = self.config.train, self.task.hyper, self.task
        if self.cuda_graphs:  # outputs of the last step's graph replays may now be reused
            torch.compiler.cudagraph_mark_step_begin()
        g_turn = self.step > t.d_warmup_steps
        task.collect_grad_norms = log_now
        task.step = self.step
        if self.grown:  # the growth schedule counts the images shown before this step
            shown = (self.step - 1) * t.batch_size
            set_growth(self.grown, shown, self.config.model.phase_images)
        o = self.config.optim
        if o.lr_decay != "none":
            factor = lr_factor(o.lr_decay, self.step, t.steps, o.decay_start)
            set_lr_factor(task.optimizers().values(), factor)
        stats: dict[str, torch.Tensor] = {}
        for i in range(h.n_critic):
            batch = self.next_batch()
            with task.precision.autocast():
                stats = task.d_step(batch, keep_fake_for_g=g_turn and i == h.n_critic - 1)
        if g_turn:
            with task.precision.autocast():
                stats.update(task.g_step(batch))
        self.dist.broadcast_buffers(task.modules().values())
        return stats

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next batch of every field the task reads, examples in model scale."""
        index = self.batches.next()  # on the device the fields live on
        batch = {name: values[index] for name, values in self.fields.items()}
        if self.batches_b is not None:
            batch["x_b"] = self.domain_b[self.batches_b.next()]
        if self.labelled is not None:
            chosen = self.labelled.next().to(self.data_device)
            batch["x_labelled"] = self.fields["x"][chosen]
            batch["y_labelled"] = self.labelled_y[chosen]
        if self.data_device != self.device:  # memory-mapped data: copy this batch over
            pin = self.device.type == "cuda"
            batch = {
                k: (v.pin_memory() if pin else v).to(self.device, non_blocking=pin)
                for k, v in batch.items()
            }
        batch = self.to_model(batch)
        ops = self.config.data.augment
        if ops and "x_b" in batch and self.batches_b is None:  # one draw for both of a pair
            batch["x"], batch["x_b"] = augment_pair(batch["x"], batch["x_b"], ops, self.augment)
        elif ops:
            for name in ("x", "x_b", "x_labelled"):
                if name in batch:
                    batch[name] = augment_images(batch[name], ops, self.augment)
        if self.config.train.channels_last:
            for name, value in batch.items():
                if value.dim() == 4:  # image batches (the nets' conv weights are NHWC too)
                    batch[name] = value.contiguous(memory_format=torch.channels_last)
        return batch


# -- helpers ---------------------------------------------------------------------------------


def default_against(data: DataConfig) -> DataConfig:
    """Evaluation reference of a run: its own data (same size, channels) on the test split."""
    return dataclasses.replace(data, split="test", limit=None, strict=False)


def flat_scores(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of an evaluation result (evaluate() returns them flat beside 'protocol')."""
    return {
        key: float(value)
        for key, value in result.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


# -- entry points ----------------------------------------------------------------------------


def train(
    config: Config, out: str | Path, overwrite: bool = False, progress: bool = True,
    on_eval: Callable[[int, dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Start a new run in `out` (refused if it holds a run, unless overwrite).

    on_eval(step, scores) is called after each evaluation; returning True stops the run there
    (checkpoint and grid saved, TrainResult.interrupted set).
    """
    run = RunDir(Path(out))
    main = Distributed.from_env().main  # under torchrun rank 0 alone makes the run directory
    if main:
        run.refuse_existing(overwrite)
    trainer = Trainer(config, run)  # data and nets first: bad input fails before any write
    trainer.on_eval = on_eval
    if main:
        run.prepare_new()
        remove_stale_temps(run.root)
        atomic_write_text(run.config, configlib.dump(config))
    trainer.dist.barrier()
    return trainer.fit(progress)


def resume(
    run_dir: str | Path, overrides: list[str] | None = None, config_path: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Continue a run from its newest checkpoint (train.steps may be raised with --set)."""
    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise GanforgeError(f"--resume '{run_dir}' is not a directory made by `ganforge train`.")
    fresh = not checkpoint.list_checkpoints(run.checkpoints) and run.config.is_file()
    json_path = None if fresh else checkpoint.resolve(run.root)
    base = config_path or run.config
    config = configlib.load(base, overrides)
    trainer = Trainer(config, run)
    main = trainer.dist.main  # under torchrun rank 0 alone writes
    for folder in (run.root, run.checkpoints, run.samples) if main else ():
        remove_stale_temps(folder)
    if fresh:  # killed before its first checkpoint: the run is deterministic, so start over
        if main:
            run.prepare_new()
        trainer.notes.append(
            f"{run.root} has no checkpoint yet: starting it again from step 0 with its config."
        )
    else:
        trainer.restore(json_path)
    if trainer.step >= config.train.steps:
        raise GanforgeError(
            f"The run is already at step {trainer.step} and train.steps is "
            f"{config.train.steps}. Continue further with --set train.steps=N (N > "
            f"{trainer.step})."
        )
    if main:
        atomic_write_text(run.config, configlib.dump(config))
    trainer.dist.barrier()
    return trainer.fit(progress)
