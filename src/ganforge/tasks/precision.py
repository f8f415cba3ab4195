"""Mixed precision for the two phases: autocast, loss scaling, and the state a checkpoint keeps.

train.precision picks one of
  fp32  no autocast (the default; CPU runs resume bitwise),
  bf16  forward passes under torch.autocast(bfloat16); same exponent range as fp32, so no
        loss scaling,
  fp16  forward passes under torch.autocast(float16) with one GradScaler per optimizer (the
        two players' gradients differ in size, so each gets its own scale).
Backward passes run with autocast off (PyTorch's AMP recipe). Gradients of D with respect to its
input (WGAN-GP, DRAGAN, R1) are taken of scaled scores under fp16, then unscaled
(`grad_scale`), as in the AMP notes on gradient penalties, so small gradients do not flush to
zero in half precision. Every backward pass here ends in `after_backward(name)`, where the loop
hooks in the averaging of gradients over torchrun processes (tasks never import training/).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch

from ganforge.errors import GanforgeError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast and per-optimizer GradScalers for one run (train.precision on one device)."""

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode != "fp32" and device.type not in ("cuda", "cpu"):
            raise GanforgeError(
                f"train.precision={mode} runs on CUDA or the CPU, not {device.type}. "
                "Set train.precision=fp32."
            )
        self.mode = mode
        # fp32 elsewhere (mps) only ever disables autocast, which the CPU type does harmlessly
        self.device_type = device.type if device.type in ("cuda", "cpu") else "cpu"
        self.dtype = DTYPES.get(mode)
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # called with the optimizer's name after each backward pass: the loop's averaging of
        # gradients over processes under torchrun (None alone)
        self.after_backward: Callable[[str], None] | None = None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def scaling(self) -> bool:
        return self.mode == "fp16"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The context the forward passes of one phase run in (nothing for fp32)."""
        if not self.enabled:
            yield
            return
        with torch.autocast(self.device_type, dtype=self.dtype):
            yield

    def scaler(self, name: str) -> torch.amp.GradScaler:
        """The GradScaler of optimizer `name`, made on first use."""
        if name not in self.scalers:
            with warnings.catch_warnings():  # CPU scaler: "not supported" notices on old torch
                warnings.simplefilter("ignore")
                self.scalers[name] = torch.amp.GradScaler(self.device_type)
        return self.scalers[name]

    def grad_scale(self, name: str) -> torch.Tensor | float:
        """The factor that input-gradient penalties of `name`'s loss scale scores by (1: none).

        A device tensor (no host sync): scaler.scale of a one.
        """
        if not self.scaling:
            return 1.0
        one = torch.ones((), device=self.device_type)
        return self.scaler(name).scale(one)

    def backward(self, loss: torch.Tensor, name: str) -> None:
        """loss.backward() with autocast off, scaled under fp16; then after_backward(name)."""
        with torch.autocast(self.device_type, enabled=False):
            if self.scaling:
                self.scaler(name).scale(loss).backward()
            else:
                loss.backward()
        if self.after_backward is not None:
            self.after_backward(name)

    def unscale(self, optimizer: torch.optim.Optimizer, name: str) -> None:
        """Bring `name`'s gradients to their true size (before a norm is read or clipped)."""
        if self.scaling:
            self.scaler(name).unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer, name: str) -> None:
        """optimizer.step(); under fp16 skipped when gradients overflowed, and the scale updated."""
        if not self.scaling:
            optimizer.step()
            return
        scaler = self.scaler(name)
        scaler.step(optimizer)
        scaler.update()

    # -- checkpoints -----------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Scale and growth tracker of each scaler (fp16 resume continues the same scaling)."""
        state = {}
        for name, scaler in self.scalers.items():
            s = scaler.state_dict()
            if s:  # empty until the first scale() call
                state[f"{name}.scale"] = torch.tensor(float(s["scale"]))
                state[f"{name}.growth_tracker"] = torch.tensor(int(s["_growth_tracker"]))
        return state

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore state_tensors (a run saved in another precision has none: scalers start anew)."""
        if not self.scaling:
            return
        for key, value in tensors.items():
            name, field = key.rsplit(".", 1)
            if field != "scale":
                continue
            scaler = self.scaler(name)
            state = scaler.state_dict()
            state.update(
                scale=float(value),
                _growth_tracker=int(tensors[f"{name}.growth_tracker"]),
            )
            scaler.load_state_dict(state)
