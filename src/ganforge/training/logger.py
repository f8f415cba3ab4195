"""Where a run reports: metrics.jsonl lines, a tqdm progress bar, TensorBoard when asked."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_text


def truncate_after(path: Path, step: int) -> None:
    """Drop metrics lines logged after `step`, so a resumed run does not log a step twice."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete JSON lines of a metrics.jsonl."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _short(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


class RunLogger:
    """Writes one JSON object per logged step and mirrors it to the bar and TensorBoard."""

    def __init__(
        self, metrics_path: Path, start: int, total: int, progress: bool, tb_dir: Path | None
    ) -> None:
        self.file = open(metrics_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.bar = tqdm(
            total=total, initial=start, unit="step", dynamic_ncols=True,
            disable=None if progress else True,  # None: tqdm stays quiet when not on a terminal
        )
        self.writer = None
        if tb_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GanforgeError(
                    "log.tensorboard is true but TensorBoard is not installed. "
                    "Install it with `pip install tensorboard`, or set log.tensorboard=false."
                ) from None
            self.writer = SummaryWriter(str(tb_dir))

    def log(self, row: dict[str, Any]) -> None:
        """Record one row (must hold 'step')."""
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        shown = {k: _short(v) for k, v in row.items() if k in ("d_loss", "g_loss", "img_per_s")}
        self.bar.set_postfix(shown, refresh=False)
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["step"])

    def advance(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def message(self, text: str) -> None:
        """A line printed above the bar."""
        self.bar.write(text)

    def close(self) -> None:
        self.bar.close()
        self.file.close()
        if self.writer is not None:
            self.writer.close()
