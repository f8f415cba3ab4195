"""Replay of past fakes: D sees some of G's earlier samples again, not only the newest.

Shrivastava et al. 2017 ("Learning from Simulated and Unsupervised Images through Adversarial
Training", section 2.3) keep "a history of refined images" and fill half of each of D's fake
batches from it, so that D keeps rejecting what G produced before and G cannot escape by
cycling back to an old mode; the same idea is the "memory" of the seeds' GANs and CycleGAN's
image pool. A fake row travels with its conditioning (class labels ...), so a replayed image is
judged under the labels it was generated for.

The buffer holds `size` rows. `mix` first replaces the FIRST k = round(fraction * N) rows of a
batch by k rows drawn uniformly WITH replacement from the buffer (only once the buffer holds at
least k rows; before that the batch passes unchanged), then stores the batch's own fresh rows,
detached: appended in order until the buffer is full, afterwards each overwriting a uniformly
random slot (random replacement as in Shrivastava et al., who however store only b/2 new images
a step; unlike reservoir sampling it favours recent fakes). All randomness comes from the
caller's CPU generator, so runs and resumes are reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganforge.errors import GanforgeError


class ReplayBuffer:
    """A fixed-size store of past fake rows (image plus conditioning tensors)."""

    def __init__(self, size: int) -> None:
        """An empty buffer of `size` rows; storage is allocated on the first `mix`."""
        if size < 1:
            raise ValueError(f"replay buffer size must be at least 1, got {size}")
        self.size = size
        self.filled = 0
        self._store: list[Tensor] | None = None  # one (size, ...) tensor per batch element

    def mix(
        self, batch: tuple[Tensor, ...], fraction: float, generator: torch.Generator
    ) -> tuple[Tensor, ...]:
        """The batch with its first round(fraction * N) rows replayed; then stores its rows.

        `batch` is (fake x, *conditioning), all with the same first dimension N. k is Python's
        round (half to even). Replayed rows are drawn with replacement, first from `generator`;
        the slots of overwritten rows (once full) are drawn after. The input is not modified;
        when nothing is replayed, the same tensors are returned.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"replay fraction must be in [0, 1], got {fraction}")
        n = batch[0].shape[0]
        if any(t.shape[0] != n for t in batch):
            raise ValueError(f"replay: batch tensors differ in length: {[len(t) for t in batch]}")
        self._prepare(batch)
        k = round(fraction * n)
        out = batch
        if 0 < k <= self.filled:
            picks = torch.randint(self.filled, (k,), generator=generator)
            out = tuple(
                torch.cat([store[picks.to(store.device)], t[k:]])
                for store, t in zip(self._store, batch)
            )
        self._push(batch, generator)
        return out

    def _prepare(self, batch: tuple[Tensor, ...]) -> None:
        """Allocate storage like the batch on first use; check it matches and follow its device."""
        if self._store is None:
            self._store = [
                torch.zeros((self.size, *t.shape[1:]), dtype=t.dtype, device=t.device)
                for t in batch
            ]
            return
        if len(batch) != len(self._store):
            raise ValueError(f"replay: got {len(batch)} tensors, stored {len(self._store)}")
        for i, (store, t) in enumerate(zip(self._store, batch)):
            if store.shape[1:] != t.shape[1:] or store.dtype != t.dtype:
                raise ValueError(
                    f"replay: tensor {i} is {tuple(t.shape[1:])} {t.dtype}, "
                    f"stored rows are {tuple(store.shape[1:])} {store.dtype}"
                )
            if store.device != t.device:
                self._store[i] = store.to(t.device)

    @torch.no_grad()
    def _push(self, batch: tuple[Tensor, ...], generator: torch.Generator) -> None:
        """Append detached copies of the rows; past the end, overwrite uniform random slots."""
        n = batch[0].shape[0]
        appended = min(n, self.size - self.filled)
        for store, t in zip(self._store, batch):
            store[self.filled : self.filled + appended] = t[:appended].detach()
        self.filled += appended
        rest = n - appended
        if rest == 0:
            return
        slots = torch.randint(self.size, (rest,), generator=generator)
        # a slot drawn twice keeps the later row; writing only the last one keeps CUDA exact
        later = torch.triu(slots.view(-1, 1) == slots.view(1, -1), diagonal=1).any(dim=1)
        rows = torch.arange(appended, n)[~later]
        slots = slots[~later]
        for store, t in zip(self._store, batch):
            store[slots.to(store.device)] = t[rows.to(t.device)].detach()

    def state_tensors(self) -> dict[str, Tensor]:
        """CPU copies of the filled rows ("t0", "t1", ... in batch order) and "filled"."""
        state = {"filled": torch.tensor(self.filled, dtype=torch.int64)}
        for i, store in enumerate(self._store or []):
            state[f"t{i}"] = store[: self.filled].detach().to("cpu", copy=True)
        return state

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore what state_tensors returned ({} or filled == 0: an empty buffer)."""
        filled = int(tensors["filled"]) if "filled" in tensors else 0
        if filled == 0:
            self._store, self.filled = None, 0
            return
        if filled > self.size:
            raise GanforgeError(
                f"The checkpoint's replay buffer holds {filled} samples but the buffer has room "
                f"for {self.size}; set stabilize.replay_size to at least {filled} to resume."
            )
        count = sum(1 for key in tensors if key != "filled")
        rows = [tensors[f"t{i}"] for i in range(count)]
        if any(r.shape[0] != filled for r in rows):
            raise ValueError(f"replay state: rows {[len(r) for r in rows]}, filled {filled}")
        self._store = []
        for r in rows:
            store = torch.zeros((self.size, *r.shape[1:]), dtype=r.dtype)
            store[:filled] = r
            self._store.append(store)
        self.filled = filled
