"""Checkpoints: tensors in safetensors, metadata in JSON, written atomically, never unpickled.

A checkpoint is the pair checkpoints/step-XXXXXXXX.safetensors + .json. The JSON is written
last and records the SHA-256 of the tensor file, so a pair without its JSON (a crash mid-write)
is ignored, and a damaged tensor file is detected instead of half-loaded.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write, atomic_write_json, file_digest

FORMAT = "ganforge-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d{8,})\.json$")


def checkpoint_step(json_path: Path) -> int:
    """The step encoded in a checkpoint file name."""
    return int(json_path.stem.split("-")[1])


def checkpoint_name(step: int) -> str:
    """File stem of the checkpoint at a step, e.g. step-00001000."""
    return f"step-{step:08d}"


# -- optimizer state <-> flat tensors + JSON ----------------------------------------------------


def flatten_optimizer(prefix: str, state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into flat tensors and JSON-able values."""
    tensors: dict[str, torch.Tensor] = {}
    values: dict[str, dict[str, Any]] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{index}.{key}"] = value
            else:
                values.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "values": values}


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of flatten_optimizer."""
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for name, tensor in tensors.items():
        if name.startswith(head):
            index, key = name[len(head) :].split(".", 1)
            state.setdefault(int(index), {})[key] = tensor
    for index, slots in meta["values"].items():
        state.setdefault(int(index), {}).update(slots)
    return {"state": state, "param_groups": meta["param_groups"]}


# -- files ---------------------------------------------------------------------------------------


def save(
    checkpoint_dir: Path,
    step: int,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra_tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> Path:
    """Write one checkpoint (tensors, then JSON last); return the JSON path."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value
    optim_meta = {}
    for name, optimizer in optimizers.items():
        flat, optim_meta[name] = flatten_optimizer(name, optimizer.state_dict())
        tensors.update(flat)
    tensors.update(extra_tensors)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    stem = checkpoint_dir / checkpoint_name(step)
    tensor_path = stem.with_suffix(".safetensors")
    atomic_write(tensor_path, lambda tmp: save_file(tensors, str(tmp)))
    record = dict(meta)
    record.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        step=step,
        optimizers=optim_meta,
        tensors_file=tensor_path.name,
        tensors_sha256=file_digest(tensor_path),
    )
    return atomic_write_json(stem.with_suffix(".json"), record)


def list_checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(step, json path) of every complete-looking checkpoint, oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for path in checkpoint_dir.iterdir():
        match = _NAME.match(path.name)
        if match and path.with_suffix(".safetensors").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def resolve(target: str | Path) -> Path:
    """The checkpoint JSON for a run dir (its newest), a checkpoints dir, or a checkpoint file."""
    path = Path(target)
    if path.is_file():
        if path.suffix == ".safetensors":
            path = path.with_suffix(".json")
        if path.suffix != ".json" or not path.is_file():
            raise GanforgeError(
                f"'{target}' is not a ganforge checkpoint: expected a run directory or a "
                "checkpoints/step-XXXXXXXX.safetensors file (with its .json beside it)."
            )
        return path
    if not path.is_dir():
        raise GanforgeError(
            f"'{target}' does not exist. Give a run directory (made by `ganforge train`) "
            "or one of its checkpoints/step-XXXXXXXX.safetensors files."
        )
    checkpoint_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    found = list_checkpoints(checkpoint_dir)
    if not found:
        raise GanforgeError(
            f"No checkpoint found in '{checkpoint_dir}'. A run writes one every "
            "train.checkpoint_every steps and at the end; this run has none yet."
        )
    return found[-1][1]


def load(json_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint's tensors and metadata, verifying format and tensor-file hash."""
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GanforgeError(f"Checkpoint metadata '{json_path}' is unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GanforgeError(f"'{json_path}' is not a ganforge checkpoint file.")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise GanforgeError(
            f"'{json_path}' was written by a newer ganforge (format "
            f"{meta['format_version']}); upgrade ganforge to load it."
        )
    tensor_path = json_path.with_name(meta["tensors_file"])
    if not tensor_path.is_file() or file_digest(tensor_path) != meta["tensors_sha256"]:
        raise GanforgeError(
            f"Checkpoint '{tensor_path}' is missing or damaged (its SHA-256 does not match "
            f"{json_path.name}). Delete this pair to fall back to the previous checkpoint."
        )
    return load_file(str(tensor_path), device="cpu"), meta


def module_state(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The state_dict of module `name` from a flat checkpoint tensor dict."""
    head = f"{name}."
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def restore(
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> None:
    """Load networks and optimizers in place; shape mismatches become a clear error."""
    for name, module in modules.items():
        try:
            module.load_state_dict(module_state(tensors, name))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise GanforgeError(
                f"The checkpoint's {name} does not fit this config's architecture "
                f"({first[1].strip() if len(first) > 1 else first[0]}). Resume with the "
                "run's own model settings, or start a new run with --out."
            ) from None
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(unflatten_optimizer(name, tensors, meta["optimizers"][name]))


def prune(checkpoint_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (best.* is never touched)."""
    for _, json_path in list_checkpoints(checkpoint_dir)[:-keep]:
        json_path.unlink(missing_ok=True)
        json_path.with_suffix(".safetensors").unlink(missing_ok=True)


def copy_as(json_path: Path, stem: str) -> Path:
    """Copy a checkpoint pair to STEM.safetensors + STEM.json beside it (e.g. 'best')."""
    meta = json.loads(json_path.read_text())
    source = json_path.with_name(meta["tensors_file"])
    target = json_path.with_name(f"{stem}.safetensors")
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
    meta["tensors_file"] = target.name
    return atomic_write_json(json_path.with_name(f"{stem}.json"), meta)
