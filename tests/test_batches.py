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


def test_ranks_see_disjoint_shards():
    shards = [
        torch.cat([EpochBatches(40, 5, torch.Generator().manual_seed(2), r, 2).next()
                   for _ in range(1)])
        for r in range(2)
    ]
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_batch_larger_than_dataset_is_a_clear_error():
    with pytest.raises(GanforgeError, match="train.batch_size"):
        EpochBatches(10, 64, torch.Generator())
