"""What the loop does to a task's nets for speed and scale: torch.compile, and the torchrun setup
(gradient averaging, SyncBatchNorm, identical starting weights). Each returns the notes the run
prints when it starts.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from ganforge.config import Config
from ganforge.errors import GanforgeError
from ganforge.tasks.base import Task
from ganforge.training.distributed import Distributed


def double_backward(task: Task) -> bool:
    """Whether D's loss takes gradients of gradients (WGAN-GP, DRAGAN, R1)."""
    loss = task.config.loss
    return task.hyper.gp_weight > 0 or loss.dragan_weight > 0 or loss.r1_gamma > 0


def to_channels_last(task: Task, config: Config) -> list[str]:
    """Put the conv weights of every net (EMA copies too) in channels-last (NHWC) layout, in
    place; the loop gives image batches the same layout. Convolutions on channels-last data
    skip layout conversions in cuDNN's tensor-core kernels and oneDNN on the CPU. Values are
    unchanged (checkpoints are written contiguous), so a run may resume with it on or off.
    """
    if not config.train.channels_last:
        return []
    for module in task.modules().values():
        module.to(memory_format=torch.channels_last)  # 4-D weights only; the rest untouched
    return ["train.channels_last: conv weights and image batches in NHWC layout"]


def uses_cuda_graphs(task: Task, config: Config) -> bool:
    """Whether the compiled nets replay as CUDA graphs (compile_mode reduce-overhead on CUDA,
    with torch.compiler.set_stance to run them eager outside the training steps)."""
    t = config.train
    return (
        t.compile and t.compile_mode == "reduce-overhead" and task.device.type == "cuda"
        and hasattr(torch.compiler, "set_stance")
    )


def compile_nets(task: Task, config: Config) -> list[str]:
    """torch.compile the nets a task trains (in place, so checkpoints keep their keys).

    Discriminators whose loss needs double backward stay eager (torch.compile's backward does
    not support it), and compile errors at the first call fall back to eager with a warning
    (torch._dynamo's suppress_errors), so train.compile never stops a run. compile_mode
    reduce-overhead adds CUDA graphs on CUDA (the loop marks each step's start for them); on
    other devices it compiles in the default mode, with a note.
    """
    if not config.train.compile:
        if config.train.compile_mode != "default":
            return ["train.compile_mode has no effect without train.compile=true"]
        return []
    try:
        import torch._dynamo as dynamo

        supported = dynamo.is_dynamo_supported()
    except Exception as exc:  # noqa: BLE001 (any import-time failure means: no compiler)
        return [f"train.compile: torch.compile is unavailable here ({exc}); running eager."]
    if not supported:
        return ["train.compile: torch.compile does not support this Python/platform; eager."]
    dynamo.config.suppress_errors = True  # an unsupported net runs eager instead of failing
    notes = []
    if task.device.type == "cuda":
        fp32 = config.train.precision == "fp32"
        if fp32:
            check_fp32_layouts(config)
            notes.append(
                "train.compile: fp32 on CUDA compiles with Inductor's layout optimization off "
                "(it fails there; bf16 and fp16 keep it)"
            )
        set_conv_layout_optimization(not fp32)
    mode = config.train.compile_mode
    if mode == "reduce-overhead" and not uses_cuda_graphs(task, config):
        notes.append(
            "train.compile_mode reduce-overhead: CUDA graphs need a CUDA device (and torch "
            ">= 2.6); compiling in the default mode"
        )
        mode = "default"
    eager_d = double_backward(task)
    compiled, kept = [], []
    for name, module in task.modules().items():
        if name.endswith("_ema"):  # the EMA copy only samples: not worth compiling
            continue
        if name.startswith("D") and eager_d:
            kept.append(name)
            continue
        module.compile(mode=mode)
        compiled.append(name)
    graphs = " as CUDA graphs" if mode == "reduce-overhead" else ""
    notes.insert(
        0, f"train.compile: compiling {', '.join(compiled)}{graphs} (the first steps are slower)"
    )
    if kept:
        notes.append(
            f"train.compile: {', '.join(kept)} stay eager: the gradient penalty differentiates "
            "D's gradients, which compiled backward passes do not support"
        )
    return notes


def check_fp32_layouts(config: Config) -> None:
    """Refuse fp32 + channels_last + compile on CUDA: compiled fp32 DCGAN backward passes on
    NHWC data failed at the first step on an H100 with torch 2.11, layout optimization on or
    off (pytorch/pytorch issues 171622 and 197514)."""
    if config.train.channels_last:
        raise GanforgeError(
            "train.compile with train.channels_last in fp32 on CUDA fails in torch.compile "
            "(a stride mismatch in convolution backward, pytorch/pytorch issue 171622). Use "
            "train.precision=bf16, or set train.channels_last=false or train.compile=false."
        )


def set_conv_layout_optimization(allowed: bool) -> None:
    """Inductor's layout optimization (convolutions switched to channels-last inside compiled
    graphs): off for fp32 on CUDA, else Inductor's own setting. With it, fp32 DCGAN backward
    passes on CUDA failed at the first step in torch 2.11 ("assert_size_stride ...
    convolution_backward": the meta kernel predicts other strides than cuDNN returns;
    pytorch/pytorch issues 171622 and 197514); bf16 worked with it and was faster. The
    setting is process-wide and read when a net first compiles (its first call), so each
    compiling run sets it, whichever precision the run before it used."""
    try:
        import torch._inductor.config as inductor_config
    except Exception:  # noqa: BLE001 (no Inductor: nothing to set)
        return
    if not hasattr(inductor_config, "layout_optimization"):
        return
    default = inductor_layout_default()  # read before the first change (no short-circuit)
    inductor_config.layout_optimization = allowed and default


@functools.cache
def inductor_layout_default() -> bool:
    """Inductor's own layout-optimization setting, read once, before ganforge first sets it."""
    import torch._inductor.config as inductor_config

    return bool(inductor_config.layout_optimization)


@contextlib.contextmanager
def eager_outside_steps(graphs: bool) -> Iterator[None]:
    """Run compiled nets eager inside (sample grids, evaluation) when they replay as CUDA
    graphs: a graph's outputs live until its next replay, so outputs kept across calls (a
    sampler's batches) would be overwritten. A no-op otherwise."""
    if not graphs:
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield


def prepare_distributed(task: Task, dist: Distributed, config: Config) -> list[str]:
    """Make a task one replica of a torchrun run; nothing (and no note) in a lone process."""
    t = config.train
    if not dist.active:
        if t.sync_batchnorm:
            return ["train.sync_batchnorm has no effect in a single process (use torchrun)."]
        return []
    s = config.stabilize
    if s.d_skip_above is not None or s.g_skip_below is not None:
        raise GanforgeError(
            "stabilize.d_skip_above / g_skip_below decide from each process's own batch, so "
            "the processes of a torchrun run could disagree and drift apart. Unset them, or "
            "train in one process."
        )
    modules = task.modules()
    if t.sync_batchnorm:
        if task.device.type != "cuda":
            raise GanforgeError(
                "train.sync_batchnorm needs CUDA (NCCL); on the CPU each process normalizes its "
                "own share of the batch. Set train.sync_batchnorm=false."
            )
        for module in modules.values():
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)  # same parameters, in place
    task.rank, task.world = dist.rank, dist.world
    for module in modules.values():  # the same seed made the same weights; make sure of it
        for tensor in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)
    optimizers = task.optimizers()

    def average(name: str) -> None:
        groups = optimizers[name].param_groups
        dist.average_gradients([p for group in groups for p in group["params"]])

    task.precision.after_backward = average
    batch = t.batch_size // dist.world
    note = (
        f"torchrun: {dist.world} processes, {batch} examples each per step (train.batch_size "
        f"{t.batch_size} is the whole step's); rank 0 writes the run"
    )
    return [note]
