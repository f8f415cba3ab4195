"""Epoch batches: every example once per epoch, deterministic, exactly resumable, shardable."""

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.training.batches import EpochBatches


def test_each_epoch_is_a_permutation_without_the_tail():
    batches = EpochBatches(10, 3, torch.Generator().manual_seed(0))
    epoch = torch.cat([batches.next() for _ in range(3)])
    assert sorted(epoch.tolist()) == sorted(set(epoch.tolist()))
    assert len(epoch) == 9
    batches.next()
    assert batches.epoch == 1


def test_state_restores_the_same_future():
    a = EpochBatches(50, 8, torch.Generator().manual_seed(1))
    for _ in range(9):
        a.next()
    tensors, values = a.state()
    tensors = {k: v.clone() for k, v in tensors.items()}
    expected = [a.next() for _ in range(20)]
    b = EpochBatches(50, 8, torch.Generator().manual_seed(123))
    b.load_state(tensors, values)
    assert all(torch.equal(x, y) for x, y in zip(expected, [b.next() for _ in range(20)]))


def _ranks(n, batch_size, world):
    """One iterator per rank, all seeded alike (as every DDP process seeds its own)."""
    return [EpochBatches(n, batch_size, torch.Generator().manual_seed(2), r, world)
            for r in range(world)]


@pytest.mark.parametrize("n, batch_size, world", [(40, 5, 2), (40, 5, 4), (30, 5, 3)])
def test_ranks_shard_each_epoch_into_equal_disjoint_parts_that_cover_it(n, batch_size, world):
    ranks = _ranks(n, batch_size, world)
    per_epoch = n // world // batch_size
    epochs = []
    for epoch in range(2):
        shards = [torch.cat([b.next() for _ in range(per_epoch)]).tolist() for b in ranks]
        assert all(b.epoch == epoch for b in ranks)
        assert [len(shard) for shard in shards] == [n // world] * world  # equal shards
        everything = [i for shard in shards for i in shard]
        assert sorted(everything) == list(range(n))  # each index exactly once: disjoint, all
        epochs.append(shards)
    assert epochs[0] != epochs[1]  # reshuffled


def test_uneven_sizes_drop_the_same_tail_so_ranks_stay_in_step():
    n, batch_size, world = 43, 5, 3  # 14 per rank (one example dropped): 2 batches per epoch
    ranks = _ranks(n, batch_size, world)
    shards = [set(torch.cat([b.next(), b.next()]).tolist()) for b in ranks]
    assert [len(shard) for shard in shards] == [10, 10, 10]
    assert not any(shards[i] & shards[j] for i in range(3) for j in range(i + 1, 3))
    assert all(b.epoch == 0 for b in ranks)
    for b in ranks:
        b.next()
    assert [b.epoch for b in ranks] == [1, 1, 1]  # every rank starts epoch 1 at the same step


def test_batch_larger_than_dataset_is_a_clear_error():
    with pytest.raises(GanforgeError, match="train.batch_size"):
        EpochBatches(10, 64, torch.Generator())
