"""Training in several processes under torchrun: one process per GPU (or CPU share), one model.

`torchrun --nproc_per_node=N -m ganforge train CONFIG` sets RANK, WORLD_SIZE and LOCAL_RANK;
`Distributed.from_env` reads them and joins the process group (NCCL on CUDA, gloo on the CPU).

How a step is split (the "global batch" design): train.batch_size is the batch of the whole
step, and each of the N processes takes batch_size / N of it. Every process holds the same data
permutation and the same noise generator; each keeps its slice of the permutation and of the
step's latent codes, so the N processes together see the very examples and z a single process
would. After each backward pass the gradients are averaged over the processes (one all-reduce of
a flat buffer per optimizer step, as StyleGAN2-ADA's training loop does instead of wrapping the
nets in DistributedDataParallel, whose hooks support neither the double backward of gradient
penalties nor a D that is frozen during G's phase), so every process applies the same update and
the weights stay identical. BatchNorm buffers are broadcast from rank 0 after each step, as
DistributedDataParallel does by default; with train.sync_batchnorm the batch statistics
themselves are computed over all processes (torch.nn.SyncBatchNorm, CUDA only).

Randomness drawn per example inside a step (instance noise, D's input and hidden noise,
dropout, data.augment, a gradient penalty's interpolation points) comes from each process's
own streams: the global torch RNG and the augmentation generator, seeded per rank by
process_seed (rank 0 keeps train.seed, so a lone process is unchanged). Were they seeded alike,
every process would draw the same noise for its different share of the batch. A torchrun run
therefore equals a lone process exactly only when it draws no such randomness. Checkpoints
keep every process's streams (one row per rank), so resuming in the same number of processes
is exact; a process that has no row (resuming in more processes) starts fresh streams seeded
from its rank and the step.

Because the state of a step does not depend on N, a checkpoint written by N processes resumes
in M (M dividing train.batch_size): the run continues with the same global batches. Rank 0
alone writes files and prints; the others only train.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ganforge.errors import GanforgeError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
RANK_SEED_STRIDE = 1_000_003  # apart from each other, the per-process seeds of one run


def process_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of process `rank`'s own random streams, started at `step` (0: a new run).

    Rank 0 of a new run keeps `seed`, so a lone process draws what it always drew.
    """
    return seed + RANK_SEED_STRIDE * rank + step


@dataclass(frozen=True)
class Distributed:
    """This process's place among the processes of one run (rank 0 of 1 when alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> Distributed:
        """The torchrun environment, or a lone process when WORLD_SIZE is unset or 1."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        missing = [v for v in ENV_VARS if v not in os.environ]
        if missing:
            raise GanforgeError(
                f"WORLD_SIZE is {world} but {', '.join(missing)} is not set: start distributed "
                "runs with torchrun (torchrun --nproc_per_node=N -m ganforge train CONFIG)."
            )
        return cls(int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]))

    def device_name(self, name: str) -> str:
        """train.device for this process: each process of a CUDA run takes its own GPU."""
        if not self.active or name not in ("auto", "cuda"):
            return name
        if name == "cuda" or torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return "cpu"

    def join(self, device: torch.device) -> None:
        """Join the process group (once per process): NCCL for GPUs, gloo for the CPU."""
        if not self.active or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=timedelta(minutes=30))

    def check_batch(self, batch_size: int) -> int:
        """The per-process batch; train.batch_size must split evenly over the processes."""
        if batch_size % self.world:
            raise GanforgeError(
                f"train.batch_size {batch_size} is the batch of the whole step and must split "
                f"evenly over the {self.world} processes; use a multiple of {self.world}."
            )
        return batch_size // self.world

    # -- collectives (no-ops alone) --------------------------------------------------------------
    def average_gradients(self, parameters: list[nn.Parameter]) -> None:
        """Replace each gradient by its mean over the processes (one flat all-reduce)."""
        if not self.active:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        with flat_copy(grads) as flat:
            dist.all_reduce(flat)
            flat /= self.world

    def broadcast_buffers(self, modules: Iterable[nn.Module]) -> None:
        """Give every process rank 0's floating-point buffers (BatchNorm running statistics;
        the integer batch counters advance alike everywhere), in one flat broadcast."""
        if not self.active:
            return
        buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
        with flat_copy(buffers) as flat:
            dist.broadcast(flat, src=0)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when `flag` is True on any of them (a stop request)."""
        if not self.active:
            return flag
        value = torch.tensor([float(flag)], device=device)
        dist.all_reduce(value)
        return bool(value.item() > 0)

    def gather_rows(self, row: torch.Tensor) -> torch.Tensor:
        """(world, *row.shape) on the CPU: every process's row (an RNG state), in rank order.

        Every process must call it; alone it is row with a leading axis of 1.
        """
        if not self.active:
            return row.unsqueeze(0)
        device = torch.device("cpu")
        if dist.get_backend() == "nccl":  # NCCL moves CUDA tensors only
            device = torch.device("cuda", torch.cuda.current_device())
        # each process fills its own row of zeros and one all-reduce sums them: the collective
        # the training step already uses (with all_gather instead, 2-process gloo runs aborted
        # at exit in about 1 of 50 on a loaded CPU; none in 48 runs with this)
        rows = torch.zeros(self.world, row.numel(), dtype=torch.int64, device=device)
        rows[self.rank] = row.reshape(-1).to(device, torch.int64)
        dist.all_reduce(rows)
        return rows.to("cpu", row.dtype).reshape(self.world, *row.shape)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def leave(self) -> None:
        """Leave the process group at the end of the run."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def flat_copy(tensors: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    """One flat tensor holding `tensors` (one collective instead of one per tensor); what the
    block leaves in it is copied back into them. Nothing happens for an empty list."""
    if not tensors:
        yield torch.empty(0)
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    yield flat
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()

