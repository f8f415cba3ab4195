"""Replay buffer of past fakes: filling, overwriting, mixing, labels, state round trip."""

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.tasks.replay import ReplayBuffer


def _gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def _batch(start: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """n fake 'images' (1x2x2, every pixel = row id) and labels (= row id), ids from start."""
    ids = torch.arange(start, start + n)
    return ids.float().view(n, 1, 1, 1).expand(n, 1, 2, 2).clone(), ids


def _ids(buffer: ReplayBuffer) -> list[int]:
    """The label ids stored in the buffer, slot by slot."""
    return buffer.state_tensors()["t1"].tolist()


def test_fills_in_order_then_overwrites_slots_drawn_from_the_generator():
    """The first pushes append in order; later rows overwrite slots the generator picks."""
    buffer = ReplayBuffer(6)
    buffer.mix(_batch(0), 0.0, _gen())
    assert _ids(buffer) == [0, 1, 2, 3] and buffer.filled == 4
    g = _gen(7)
    buffer.mix(_batch(10), 0.0, g)  # 10, 11 fill slots 4, 5; 12, 13 overwrite random slots
    slots = torch.randint(6, (2,), generator=_gen(7)).tolist()
    want = [0, 1, 2, 3, 10, 11]
    for row, slot in zip([12, 13], slots):
        want[slot] = row
    assert _ids(buffer) == want and buffer.filled == 6
    images = buffer.state_tensors()["t0"]
    assert torch.equal(images[:, 0, 0, 0], torch.tensor(want, dtype=torch.float32))


def test_full_buffer_overwrites_keep_the_later_row_on_a_repeated_slot():
    """With more rows than slots, every slot ends up holding a row of the last batch."""
    buffer = ReplayBuffer(2)
    buffer.mix(_batch(0, 2), 0.0, _gen())
    buffer.mix(_batch(100, 64), 0.0, _gen(1))
    slots = torch.randint(2, (64,), generator=_gen(1)).tolist()
    want = [0, 1]
    for row, slot in zip(range(100, 164), slots):
        want[slot] = row
    assert _ids(buffer) == want


def test_mix_half_replaces_exactly_the_first_half_with_buffered_rows():
    """fraction 0.5 on a full buffer: rows 0..3 come from the buffer, rows 4..7 are kept."""
    buffer = ReplayBuffer(8)
    buffer.mix(_batch(0, 8), 0.0, _gen())
    x, y = _batch(100, 8)
    mx, my = buffer.mix((x, y), 0.5, _gen(3))
    assert set(my[:4].tolist()) <= set(range(8))
    assert torch.equal(my[4:], y[4:]) and torch.equal(mx[4:], x[4:])
    picks = torch.randint(8, (4,), generator=_gen(3))
    assert torch.equal(my[:4], picks)  # uniform with replacement, drawn first


def test_labels_travel_with_their_images():
    """A replayed image keeps the label it was stored with."""
    buffer = ReplayBuffer(16)
    for start in (0, 20, 40, 60):
        buffer.mix(_batch(start), 0.0, _gen(start))
    g = _gen(9)
    for start in range(5):
        x, y = buffer.mix(_batch(1000 + 4 * start), 0.75, g)
        assert torch.equal(x[:, 0, 0, 0], y.float())


def test_too_empty_buffer_returns_the_batch_unchanged():
    """Fewer stored rows than k: the very same tensors come back, and the rows are stored."""
    buffer = ReplayBuffer(10)
    batch = _batch(0, 4)
    assert buffer.mix(batch, 1.0, _gen()) is batch  # empty
    batch = _batch(10, 8)
    out = buffer.mix(batch, 0.75, _gen())  # k = 6 > 4 stored
    assert all(a is b for a, b in zip(out, batch))
    assert buffer.filled == 10


def test_stored_rows_are_detached_copies():
    """Mutating the input after mix leaves the buffer alone; no autograd graph is kept."""
    buffer = ReplayBuffer(4)
    x = torch.randn(4, 1, 2, 2, requires_grad=True)
    y = torch.arange(4)
    fake = x * 2
    buffer.mix((fake, y), 0.0, _gen())
    before = buffer.state_tensors()
    with torch.no_grad():
        fake.add_(1.0)
    y.add_(7)
    after = buffer.state_tensors()
    assert torch.equal(before["t0"], after["t0"]) and torch.equal(before["t1"], after["t1"])
    assert not after["t0"].requires_grad
    mixed, _ = buffer.mix((torch.randn(4, 1, 2, 2), y), 1.0, _gen())
    assert not mixed.requires_grad


def test_state_round_trip_gives_bitwise_the_same_mix():
    """Saved and restored, a buffer mixes exactly as the original with the same generator."""
    original = ReplayBuffer(8)
    g = _gen(0)
    for start in range(0, 40, 4):
        original.mix(_batch(start) + (torch.randn(4, 3),), 0.5, g)
    state = {k: v.clone() for k, v in original.state_tensors().items()}
    assert all(t.device.type == "cpu" for t in state.values())
    restored = ReplayBuffer(8)
    restored.load_state_tensors(state)
    for step in range(3):
        batch = _batch(100 + 4 * step) + (torch.randn(4, 3, generator=_gen(step)),)
        g_state = g.get_state()
        a = original.mix(batch, 0.5, g)
        g2 = torch.Generator()
        g2.set_state(g_state)
        b = restored.mix(batch, 0.5, g2)
        for ta, tb in zip(a, b):
            assert torch.equal(ta, tb) and ta.dtype == tb.dtype
    for key, value in original.state_tensors().items():
        assert torch.equal(value, restored.state_tensors()[key])


def test_partially_filled_round_trip_keeps_filling_in_order():
    """A buffer saved before it was full continues appending where it stopped."""
    original = ReplayBuffer(10)
    original.mix(_batch(0), 0.0, _gen())
    restored = ReplayBuffer(10)
    restored.load_state_tensors(original.state_tensors())
    for buffer in (original, restored):
        buffer.mix(_batch(4), 0.0, _gen())
    assert _ids(original) == _ids(restored) == list(range(8))


@pytest.mark.parametrize("state", [{}, {"filled": torch.tensor(0)}])
def test_empty_state_loads_as_an_empty_buffer(state):
    """{} and filled == 0 both restore an empty buffer, which then fills from scratch."""
    fresh = ReplayBuffer(4)
    assert set(fresh.state_tensors()) == {"filled"} and int(fresh.state_tensors()["filled"]) == 0
    buffer = ReplayBuffer(4)
    buffer.mix(_batch(0), 0.0, _gen())
    buffer.load_state_tensors(state)
    assert buffer.filled == 0
    batch = _batch(10)
    assert buffer.mix(batch, 0.5, _gen()) is batch
    assert _ids(buffer) == [10, 11, 12, 13]


def test_too_small_buffer_for_the_checkpoint_says_how_to_fix():
    """Restoring more rows than the buffer holds names stabilize.replay_size."""
    big = ReplayBuffer(8)
    big.mix(_batch(0, 8), 0.0, _gen())
    with pytest.raises(GanforgeError, match="replay_size"):
        ReplayBuffer(4).load_state_tensors(big.state_tensors())


def test_batch_of_one_and_mismatched_batches():
    """A single row mixes fully once stored; a batch of another shape is refused."""
    buffer = ReplayBuffer(3)
    buffer.mix(_batch(0, 1), 1.0, _gen())
    (x, y) = buffer.mix(_batch(5, 1), 1.0, _gen())
    assert y.tolist() == [0] and x[0, 0, 0, 0] == 0
    with pytest.raises(ValueError):
        buffer.mix((torch.zeros(2, 3), torch.zeros(2)), 0.5, _gen())
