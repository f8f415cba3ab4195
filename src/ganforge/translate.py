"""`ganforge translate RUN INPUT --out OUT`: an image-to-image run applied to image files.

INPUT is one image or a folder of them (read as ganforge.inputs reads them). Each output is
written to OUT/<the input's file name>, in the format of its suffix, atomically. Existing
outputs are refused (every clash named) unless overwrite is set, before anything is written.
Images of another channel count or size than the run's input domain are refused unless
resize=True, which converts them (channels matched, shorter side resized, center crop) and
says how many it converted. Translation runs in eval mode (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.images import from_uint8, save_image, to_uint8
from ganforge.inputs import SHOW_FIRST, fit_images, list_images, read_image, shape_text
from ganforge.tasks.translation import TranslationSampler
from ganforge.training.generator import load_run


@dataclass
class Translated:
    """What translate_images wrote."""

    out: Path
    files: list[Path]
    direction: str
    step: int
    converted: int = 0
    warnings: list[str] = field(default_factory=list)


def load_translator(target: str | Path, device: torch.device | str) -> tuple:
    """(loaded run, its TranslationSampler); a clear error for runs of other tasks."""
    loaded = load_run(target, device)
    if not isinstance(loaded.sampler, TranslationSampler):
        task = loaded.meta.get("task", loaded.config.task.name)
        raise GanforgeError(
            f"'{target}' is a run of task '{task}', which does not translate images. "
            "`ganforge translate` needs an image-to-image run (task.name=pix2pix or cyclegan, "
            "e.g. `ganforge train configs/fashion_edges_pix2pix.yaml`); sample this one with "
            "`ganforge sample`."
        )
    return loaded, loaded.sampler


def output_paths(out: Path, names: list[str], overwrite: bool) -> list[Path]:
    """OUT/<name> for each input; refused when OUT is a file or outputs exist (unless
    overwrite)."""
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out '{out}' is a file; give a folder for the translations.")
    paths = [out / name for name in names]
    clashes = [p for p in paths if p.exists()]
    if clashes and not overwrite:
        shown = ", ".join(str(p) for p in clashes[:SHOW_FIRST])
        more = f" and {len(clashes) - SHOW_FIRST} more" if len(clashes) > SHOW_FIRST else ""
        raise GanforgeError(
            f"{len(clashes)} output file(s) exist: {shown}{more}. Pick another --out or pass "
            "--overwrite."
        )
    return paths


def translate_images(
    target: str | Path, source: str | Path, out: str | Path, *, direction: str | None = None,
    resize: bool = False, overwrite: bool = False, device: torch.device | str = "cpu",
) -> Translated:
    """Translate INPUT's images with a run's generator; one output file per input."""
    files, names = list_images(source)
    paths = output_paths(Path(out), names, overwrite)
    loaded, sampler = load_translator(target, device)
    direction = direction or sampler.forward
    sampler.translator(direction)  # refuse a direction the run did not learn, before reading
    shape = sampler.input_shape(direction)
    images = [read_image(path, name) for path, name in zip(files, names, strict=True)]
    x, converted = fit_images(images, names, shape, resize)
    outputs = to_uint8(sampler.translate(from_uint8(x), direction))
    for path, image in zip(paths, outputs, strict=True):
        save_image(image.permute(1, 2, 0).numpy(), path)
    result = Translated(Path(out), paths, direction, loaded.step, converted)
    if converted:
        result.warnings.append(
            f"converted {converted} of {len(names)} images to the run's {shape_text(shape)} "
            f"(channels matched, shorter side resized to {shape[1]}, center crop)"
        )
    return result
