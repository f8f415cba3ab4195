"""What a report shows of one run directory, read once: config, metrics, grids, checkpoint.

Only config.yaml is required: a run that has not logged, sampled or checkpointed yet still
gets a report that says so. Checkpoint metadata is JSON (read as such); tensors are not read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.config import read_yaml
from ganforge.errors import GanforgeError
from ganforge.training.checkpoint import list_checkpoints
from ganforge.training.logger import read_metrics
from ganforge.training.rundir import RunDir

RUN_FILES = "config.yaml, metrics.jsonl, samples/ and checkpoints/"
_GRID = re.compile(r"^step-(\d+)\.png$")


@dataclass
class RunData:
    """One run as the report sees it."""

    root: Path
    label: str  # short unique name among the runs of one report
    config: dict[str, Any]
    config_text: str
    rows: list[dict[str, Any]]  # metrics.jsonl, complete lines only
    grids: list[tuple[int, Path]]  # (step, samples/step-*.png), oldest first
    checkpoint: dict[str, Any] | None  # the newest checkpoint's JSON metadata
    checkpoint_note: str = ""  # why there is none, or why it could not be read


def load_runs(paths: list[str | Path]) -> list[RunData]:
    """Read every run (refusing non-runs and a run given twice) and label them uniquely."""
    if not paths:
        raise GanforgeError("Name at least one run directory, e.g. `ganforge report runs/fm`.")
    seen: dict[Path, str] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise GanforgeError(
                f"Run '{path}' is given twice (also as '{seen[resolved]}'); name each run once."
            )
        seen[resolved] = str(path)
    runs = [load_run(Path(p)) for p in paths]
    for run, label in zip(runs, unique_labels([r.root for r in runs])):
        run.label = label
    return runs


def load_run(root: Path) -> RunData:
    """Read one run directory; a GanforgeError says what is missing when it is not a run."""
    run = RunDir(root)
    check_is_run(run)
    config = read_yaml(run.config)
    grids = []
    if run.samples.is_dir():
        matches = [(_GRID.match(p.name), p) for p in run.samples.iterdir() if p.is_file()]
        grids = sorted((int(m.group(1)), p) for m, p in matches if m)
    meta, note = newest_checkpoint_meta(run.checkpoints)
    return RunData(
        root=root, label=root.name, config=config, config_text=run.config.read_text(),
        rows=[r for r in read_metrics(run.metrics) if isinstance(r, dict) and "step" in r],
        grids=grids, checkpoint=meta, checkpoint_note=note,
    )


def check_is_run(run: RunDir) -> None:
    """Refuse a path that is not a run directory, naming what is missing and what to give."""
    root = run.root
    if not root.exists():
        raise GanforgeError(
            f"'{root}' does not exist. Give a run directory made by `ganforge train` "
            f"(it holds {RUN_FILES})."
        )
    parent = next((p for p in root.parents if (p / "config.yaml").is_file()), None)
    hint = f" Did you mean its run directory '{parent}'?" if parent else ""
    if not root.is_dir():
        raise GanforgeError(
            f"'{root}' is a file, not a run directory; the report reads a whole run "
            f"({RUN_FILES}).{hint}"
        )
    if not run.config.is_file():
        inside = sorted(p.name for p in root.iterdir() if (p / "config.yaml").is_file())
        if inside:
            shown = " ".join(str(root / name) for name in inside[:3])
            hint = f" It holds runs: name them, e.g. `ganforge report {shown}`."
        raise GanforgeError(
            f"'{root}' is not a ganforge run: config.yaml is missing. A run directory made "
            f"by `ganforge train` holds {RUN_FILES}.{hint}"
        )


def newest_checkpoint_meta(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """(metadata of the newest checkpoint, '') or (None, why there is none)."""
    found = list_checkpoints(folder)
    if not found:
        return None, "no checkpoint yet (one is written every train.checkpoint_every steps)"
    path = found[-1][1]
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"checkpoint metadata {path.name} is unreadable ({exc})"
    if not isinstance(meta, dict):
        return None, f"checkpoint metadata {path.name} is not a JSON object"
    return meta, ""


def unique_labels(roots: list[Path]) -> list[str]:
    """Folder names, or paths below the runs' common folder where two names are the same."""
    names = [r.name or str(r) for r in roots]
    if len(set(names)) == len(names):
        return names
    absolute = [str(r.resolve()) for r in roots]
    common = os.path.commonpath(absolute)
    return [os.path.relpath(a, common) for a in absolute]
