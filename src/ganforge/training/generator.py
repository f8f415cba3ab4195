"""Use a trained generator: rebuild its task's sampler from a checkpoint (no data, no pickle),
draw samples and write them as a PNG grid or .npy arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge import config as configlib
from ganforge import tasks
from ganforge.config import Config
from ganforge.data.dataset import DataInfo, to_data_scale
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write
from ganforge.images import save_grid
from ganforge.nets.style import check_truncation, set_truncation
from ganforge.tasks.sampling import Drawn, Sampler
from ganforge.training import checkpoint


@dataclass
class LoadedRun:
    """A checkpoint's sampler with what is known about the run that made it."""

    sampler: Sampler
    config: Config
    step: int
    checkpoint: Path
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        """'image' or 'vector'."""
        return self.sampler.kind


def group_states(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Flat checkpoint tensors 'NAME.key' -> {NAME: state_dict} (what tasks load from)."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, rest = key.partition(".")
        states.setdefault(name, {})[rest] = value
    return states


def load_run(target: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The sampler of a run directory's newest checkpoint, or of a given checkpoint file."""
    json_path = checkpoint.resolve(target)
    tensors, meta = checkpoint.load(json_path)
    config = configlib.from_dict(meta["config"])
    info = DataInfo.from_meta(meta["data"])
    task = tasks.get(meta.get("task", config.task.name))
    with torch.random.fork_rng(devices=[]):  # building nets draws init weights: leave no trace
        sampler = task.load_sampler(config, info, group_states(tensors), device)
    return LoadedRun(sampler, config, int(meta["step"]), json_path, meta)


def write_npy(path: Path, array: np.ndarray) -> Path:
    """Save one array atomically as .npy."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a path would get '.npy' appended by numpy
            np.save(handle, array)

    return atomic_write(path, write)


def labels_path(out: Path) -> Path:
    """Where the labels of FILE.npy go: FILE.labels.npy beside it."""
    return out.with_name(f"{out.stem}.labels.npy")


def write_samples(
    loaded: LoadedRun, drawn: Drawn, out: Path, title: str
) -> list[Path]:
    """Write drawn samples as a PNG grid or .npy (+ .labels.npy); returns the files written."""
    x, kind = drawn.x, loaded.kind
    if out.suffix == ".png":
        if kind != "image":
            from ganforge.report.scatter import plot_points

            return [plot_points(x, None, out, title=title, labels=drawn.labels)]
        return [save_grid(x, out, nrow=drawn.nrow)]
    data = to_data_scale(x, kind)
    if kind == "image":
        data = data.permute(0, 2, 3, 1)
    written = [write_npy(out, data.numpy().astype(np.float32))]
    if drawn.labels is not None:
        written.append(write_npy(labels_path(out), drawn.labels.numpy().astype(np.int64)))
    return written


def sample_to_file(
    target: str | Path, n: int, seed: int, out: str | Path, *, request: dict[str, Any] | None,
    overwrite: bool = False, device: str | torch.device = "cpu", truncation: float | None = None,
) -> tuple[LoadedRun, Drawn, list[Path]]:
    """`ganforge sample`: checks the output, draws from the run (with the truncation trick
    when given: style-based generators only), writes the file(s)."""
    out = Path(out)
    if out.suffix not in (".png", ".npy"):
        raise GanforgeError(f"--out must end in .png (a grid) or .npy (raw samples); got '{out}'.")
    if n < 1:
        raise GanforgeError("-n must be at least 1.")
    if truncation is not None:
        check_truncation(truncation)
    targets = [out] + ([labels_path(out)] if out.suffix == ".npy" else [])
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise GanforgeError(
            f"'{existing[0]}' exists. Pick another --out or pass --overwrite."
        )
    loaded = load_run(target, device)
    if truncation is not None:
        set_truncation(loaded.sampler.G, truncation)
    drawn = loaded.sampler.draw(n, seed, request)
    written = write_samples(loaded, drawn, out, f"{len(drawn.x)} samples, step {loaded.step}")
    return loaded, drawn, written
