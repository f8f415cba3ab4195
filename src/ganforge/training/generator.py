"""Use a trained generator: rebuild its task's sampler from a checkpoint (no data, no pickle),
draw samples and write them as a PNG grid or .npy arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganforge import config as configlib
from ganforge import tasks
from ganforge.config import Config
from ganforge.data.dataset import DataInfo, to_data_scale
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write
from ganforge.images import make_grid, save_captioned_grid, save_grid, to_uint8
from ganforge.latent import walks
from ganforge.nets.style import check_truncation
from ganforge.tasks.sampling import Drawn, Sampler
from ganforge.training import checkpoint

GIF_MS = 80  # milliseconds per frame of a latent-walk GIF


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
        if drawn.captions:
            return [save_captioned_grid(x, out, drawn.nrow, drawn.captions)]
        return [save_grid(x, out, nrow=drawn.nrow)]
    data = to_data_scale(x, kind)
    if kind == "image":
        data = data.permute(0, 2, 3, 1)
    written = [write_npy(out, data.numpy().astype(np.float32))]
    if drawn.labels is not None:
        written.append(write_npy(labels_path(out), drawn.labels.numpy().astype(np.int64)))
    return written


def draw_text_walk(
    loaded: LoadedRun, n: int, seed: int, request: dict[str, Any], steps: int | None, out: Path
) -> Drawn:
    """--text A --text-to B --interpolate K: rows of K images from A's code to B's."""
    if steps is None:
        raise GanforgeError(
            "--text-to walks from the --text prompt to another: give the number of steps, "
            "e.g. --interpolate 8."
        )
    rows = n if out.suffix == ".gif" else n // steps
    return loaded.sampler.draw(rows, seed, {**request, "steps": steps})


def walk_noise(sampler: Sampler, steps: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    """A replacement for sampler.noise: n // steps walks of `steps` latents each, from one
    random latent to another along the great circle (latent.walks), row by row."""

    def noise(n: int, generator: torch.Generator) -> torch.Tensor:
        rows = n // steps
        ends = torch.randn(2, rows, sampler.G.z_dim, generator=generator) * sampler.z_scale
        return walks(ends[0], ends[1], steps)

    return noise


def save_gif(x: torch.Tensor, steps: int, out: Path) -> Path:
    """Model-scale images of walks (rows * steps, row by row) as an animated GIF: frame t
    shows step t of every walk in one grid; the frames go there and back, looping."""
    x = to_uint8(x).view(-1, steps, *x.shape[1:])
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    frames = [Image.fromarray(squeeze_gray(make_grid(x[:, t]))) for t in order]
    return atomic_write(out, lambda tmp: frames[0].save(
        tmp, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_MS, loop=0))


def squeeze_gray(array: np.ndarray) -> np.ndarray:
    """HWC with one channel -> HW, what PIL takes for a gray image."""
    return array[..., 0] if array.shape[-1] == 1 else array


def check_sample_args(out: Path, n: int, interpolate: int | None) -> None:
    """The output suffix, -n and --interpolate make sense together; clear errors otherwise."""
    suffixes = (".png", ".npy", ".gif") if interpolate else (".png", ".npy")
    if out.suffix not in suffixes:
        gif = " or .gif (an animated walk)" if interpolate else " (.gif with --interpolate)"
        raise GanforgeError(
            f"--out must end in .png (a grid) or .npy (raw samples){gif}; got '{out}'."
        )
    if n < 1:
        raise GanforgeError("-n must be at least 1.")
    if interpolate is not None and interpolate < 2:
        raise GanforgeError(
            f"--interpolate {interpolate}: a walk needs at least 2 steps (its two ends); "
            "e.g. --interpolate 8."
        )
    if interpolate is not None and out.suffix != ".gif" and n < interpolate:
        raise GanforgeError(
            f"-n {n} is fewer than one walk of --interpolate {interpolate} steps; the grid "
            f"has one walk per row: use -n {interpolate} or more (a multiple of it)."
        )


def sample_to_file(
    target: str | Path, n: int, seed: int, out: str | Path, *, request: dict[str, Any] | None,
    overwrite: bool = False, device: str | torch.device = "cpu", truncation: float | None = None,
    interpolate: int | None = None,
) -> tuple[LoadedRun, Drawn, list[Path]]:
    """`ganforge sample`: checks the output, draws from the run (with the truncation trick
    when given, Sampler.set_truncation; as latent walks of `interpolate` steps when
    given: n // steps walks in a grid or .npy, or a GIF whose frames show n walks), writes
    the file(s)."""
    out = Path(out)
    check_sample_args(out, n, interpolate)
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
        loaded.sampler.set_truncation(truncation)
    if request and request.get("text_to"):  # a walk between two prompts, not latents
        drawn = draw_text_walk(loaded, n, seed, request, interpolate, out)
        if out.suffix == ".gif":
            return loaded, drawn, [save_gif(drawn.x, interpolate, out)]
    elif interpolate is None:
        drawn = loaded.sampler.draw(n, seed, request)
    else:
        loaded.sampler.check_request(request)  # a translator refuses here, before the walk
        loaded.sampler.noise = walk_noise(loaded.sampler, interpolate)
        count = n * interpolate if out.suffix == ".gif" else n - n % interpolate
        drawn = loaded.sampler.draw(count, seed, request)
        drawn.nrow = interpolate
        if out.suffix == ".gif":
            if loaded.kind != "image":
                raise GanforgeError(
                    "A .gif walk shows images; this run's data are vectors. Write .png (points "
                    "along the walks) or .npy."
                )
            return loaded, drawn, [save_gif(drawn.x, interpolate, out)]
    written = write_samples(loaded, drawn, out, f"{len(drawn.x)} samples, step {loaded.step}")
    return loaded, drawn, written
