"""The RUN_DIR layout users and scripts rely on (DESIGN.md), and the rules for reusing one."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def loss_plot(self) -> Path:
        return self.root / "losses.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def holds_run(self) -> bool:
        """True when a previous run left its config or checkpoints here."""
        return self.config.exists() or self.checkpoints.exists()

    def refuse_existing(self, overwrite: bool) -> None:
        """Refuse to reuse a run's folder silently (checked before any work starts)."""
        if self.root.exists() and not self.root.is_dir():
            raise GanforgeError(f"--out '{self.root}' is a file, not a directory.")
        if self.holds_run() and not overwrite:
            raise GanforgeError(
                f"'{self.root}' already holds a run. Continue it with "
                f"`ganforge train --resume {self.root}`, pick another --out, or pass "
                "--overwrite to delete that run's files and start again."
            )

    def prepare_new(self) -> None:
        """Clear a previous run's files (overwrite was allowed) and create the folders."""
        self.clear()
        self.samples.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        """Delete what a ganforge run writes here (and nothing else)."""
        for path in (self.config, self.metrics, self.loss_plot):
            path.unlink(missing_ok=True)
        for folder in (self.samples, self.checkpoints, self.tensorboard):
            if folder.is_dir():
                shutil.rmtree(folder)

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step-{step:08d}.png"
