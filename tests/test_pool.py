"""CycleGAN's image pool: fills first, then returns a past fake half the time."""

import torch

from ganforge.tasks.pool import ImagePool


def batch(start: int, n: int) -> torch.Tensor:
    """n 1x1x1 'images' whose single value is their serial number."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1)


def test_size_zero_passes_batches_through():
    x = batch(0, 4)
    assert ImagePool(0).query(x, torch.Generator()) is x


def test_fills_first_then_returns_past_images_about_half_the_time():
    pool, gen = ImagePool(8), torch.Generator().manual_seed(0)
    first = pool.query(batch(0, 8), gen)
    assert torch.equal(first, batch(0, 8)) and pool.filled == 8  # filling: returned as given
    past = 0
    for start in range(8, 2008, 8):
        new = batch(start, 8)
        candidates = set(pool.images.flatten().tolist())  # what it holds before the batch
        out = pool.query(new, gen).flatten().tolist()
        for value, fresh in zip(out, new.flatten().tolist()):
            if value != fresh:  # a past fake: held before, or stored earlier in this batch
                past += 1
                assert value in candidates and value < fresh
            candidates.add(fresh)
        assert pool.filled == 8
    assert 0.45 < past / 2000 < 0.55  # p = 1/2 per image


def test_a_returned_past_image_is_replaced_by_the_new_one():
    pool, gen = ImagePool(2), torch.Generator().manual_seed(3)
    pool.query(batch(0, 2), gen)
    for start in range(2, 40):
        before = pool.images.clone()
        out = pool.query(batch(start, 1), gen)
        if float(out) != start:  # returned a past image: the new one took its slot
            assert float(out) in before.flatten().tolist()
            assert start in pool.images.flatten().tolist()
        else:
            assert torch.equal(pool.images, before)


def test_state_round_trips():
    pool, gen = ImagePool(4), torch.Generator().manual_seed(1)
    pool.query(batch(0, 6), gen)
    twin = ImagePool(4)
    twin.load_state_tensors(pool.state_tensors(), torch.device("cpu"))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(pool.query(batch(10, 6), g1), twin.query(batch(10, 6), g2))
    assert ImagePool(4).state_tensors() == {}
