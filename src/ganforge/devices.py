"""Device names users write (auto, cpu, cuda, cuda:N, mps) and the torch devices they mean."""

from __future__ import annotations

import re

import torch

from ganforge.errors import GanforgeError

_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
NAMES = "auto, cpu, cuda, cuda:N (a GPU index) or mps"


def check_device_name(name: str, key: str = "train.device") -> None:
    """Refuse a device name that is not auto, cpu, cuda, cuda:N or mps."""
    if not _NAME.match(name):
        raise GanforgeError(f"{key} is {name!r}; valid choices: {NAMES}.")


def pick_device(name: str, key: str = "train.device") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit device must exist here."""
    check_device_name(name, key)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise GanforgeError(f"{key} is {name!r} but no CUDA GPU is visible; use auto or cpu.")
        if device.index is not None and device.index >= count:
            raise GanforgeError(
                f"{key} is {name!r} but only {count} CUDA GPU(s) are visible (cuda:0 to "
                f"cuda:{count - 1})."
            )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise GanforgeError(f"{key} is 'mps' but MPS is not available here; use auto or cpu.")
    return device
