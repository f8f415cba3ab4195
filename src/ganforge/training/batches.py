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
        self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1
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
        self.epoch = 0
        self.position = 0
        self.order = self._new_order()

    def _new_order(self) -> torch.Tensor:
        order = torch.randperm(self.n, generator=self.generator)
        return order[self.rank : (self.n // self.world) * self.world : self.world]

    def next(self) -> torch.Tensor:
        """Indices of the next batch."""
        if self.position + self.batch_size > len(self.order):
            self.epoch += 1
            self.position = 0
            self.order = self._new_order()
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return batch

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """(tensors, plain values) that restore this iterator exactly."""
        tensors = {"order": self.order, "generator": self.generator.get_state()}
        return tensors, {"epoch": self.epoch, "position": self.position}

    def load_state(self, tensors: dict[str, torch.Tensor], values: dict[str, int]) -> None:
        """Restore from `state()` output."""
        if tensors["order"].shape != self.order.shape:
            raise GanforgeError(
                "The checkpoint was trained on a dataset of another size "
                f"({tensors['order'].numel()} vs {self.order.numel()} examples per epoch). "
                "Resume with the run's own data settings (data.source, data.limit)."
            )
        self.order = tensors["order"].clone()
        self.generator.set_state(tensors["generator"])
        self.epoch, self.position = int(values["epoch"]), int(values["position"])


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
