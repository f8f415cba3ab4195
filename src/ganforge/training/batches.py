"""Shuffled mini-batches drawn from an in-memory dataset, with a resumable position.

The dataset lives in one tensor (on the training device), so a batch is one index op: no
worker processes, no per-item decoding. Each epoch is a permutation from the run's own
generator; the permutation and the position in it are saved in checkpoints, which makes a
resumed run see exactly the batches an uninterrupted one would. Incomplete last batches are
dropped (BatchNorm GANs dislike tiny batches). rank/world shard each epoch for DDP.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


class EpochBatches:
    """Infinite iterator of index batches over N examples, reshuffled each epoch."""

    def __init__(
        self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        per_rank = n // world
        if per_rank < batch_size:
            raise GanforgeError(
                f"The dataset has {n} examples but train.batch_size is {batch_size}"
                + (f" per process ({world} processes)" if world > 1 else "")
                + ". Lower train.batch_size or use more data (data.limit may be too small)."
            )
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.generator = generator
        self.device = torch.device(device)  # where the order lives: batches need no copy
        self.epoch = 0
        self.position = 0  # within this process's shard
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.order = self._shard()

    def _shard(self) -> torch.Tensor:
        """This process's share of the epoch's permutation: every world-th entry from rank on.

        Step k of rank r takes shard entries [k*b, (k+1)*b), so the N processes of one step
        together hold the permutation's entries [k*b*N, (k+1)*b*N): the very batch one process
        with batch b*N would draw at step k.
        """
        stop = (self.n // self.world) * self.world
        return self.perm[self.rank : stop : self.world].to(self.device)

    def next(self) -> torch.Tensor:
        """Indices of the next batch."""
        if self.position + self.batch_size > len(self.order):
            self.epoch += 1
            self.position = 0
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.order = self._shard()
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return batch

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """(tensors, plain values) that restore this iterator exactly, in any number of
        processes: the whole permutation, and the position counted over all of them."""
        tensors = {"order": self.perm, "generator": self.generator.get_state()}
        return tensors, {"epoch": self.epoch, "position": self.position * self.world}

    def load_state(self, tensors: dict[str, torch.Tensor], values: dict[str, int]) -> None:
        """Restore from `state()` output (saved by the same or another number of processes)."""
        if tensors["order"].shape != self.perm.shape:
            raise GanforgeError(
                "The checkpoint was trained on a dataset of another size "
                f"({tensors['order'].numel()} vs {self.perm.numel()} examples per epoch). "
                "Resume with the run's own data settings (data.source, data.limit)."
            )
        position = int(values["position"])
        if position % self.world:
            raise GanforgeError(
                f"The checkpoint stopped {position} examples into its epoch, which {self.world} "
                "processes cannot split evenly. Resume with a number of processes that divides "
                f"{position} (1 always does)."
            )
        self.perm = tensors["order"].clone()
        self.order = self._shard()
        self.generator.set_state(tensors["generator"])
        self.epoch, self.position = int(values["epoch"]), position // self.world


class LabelledBatches:
    """Batches from a fixed labelled subset (the semi-supervised GAN's few labels).

    `indices` point into the dataset; the subset has its own shuffled order and generator, so
    labelled batches resume exactly and do not disturb the order of the unlabelled stream.
    Batches hold min(batch_size, subset size) examples.
    """

    def __init__(self, indices: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.indices = indices
        self.batches = EpochBatches(len(indices), min(batch_size, len(indices)), generator)

    def next(self) -> torch.Tensor:
        """Dataset indices of the next labelled batch."""
        return self.indices[self.batches.next()]

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """(tensors, plain values): the subset itself and the position in its order."""
        tensors, values = self.batches.state()
        return {**tensors, "indices": self.indices}, values

    def load_state(self, tensors: dict[str, torch.Tensor], values: dict[str, int]) -> None:
        """Restore from `state()`; refuses a checkpoint whose labelled subset differs."""
        if not torch.equal(tensors["indices"], self.indices):
            raise GanforgeError(
                f"The checkpoint was trained with another labelled subset ("
                f"{tensors['indices'].numel()} labelled examples, now {self.indices.numel()}). "
                "Resume with the run's own data.labels_per_class, train.seed and data settings."
            )
        self.batches.load_state(tensors, values)
