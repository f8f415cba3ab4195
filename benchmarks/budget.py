"""Run `ganforge train` as a child process for a fixed wall-clock budget (shared by the
benchmarks that compare methods at equal CPU time).

The child runs with one thread (OMP_NUM_THREADS=1) and is sent SIGINT when the budget is
spent, so it stops after the current step and saves its checkpoint (the loop's Ctrl-C path).
`calibrated_steps` first times a short run, so a method whose schedule depends on
train.steps (a learning-rate decay) can be given the number of steps that fits the budget.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_command(config: str, out: Path, overrides: list[str]) -> list[str]:
    """The `ganforge train` command line for a config and its --set overrides."""
    command = [sys.executable, "-m", "ganforge.cli", "train", config, "--out", str(out),
               "--overwrite", "--no-progress"]
    for item in overrides:
        command += ["--set", item]
    return command


def train_for(config: str, out: Path, overrides: list[str], seconds: float) -> float:
    """Train for at most `seconds` of wall time (SIGINT then); returns the seconds taken and
    writes them to OUT/train_seconds.json."""
    env = dict(os.environ, **ONE_THREAD)
    start = time.perf_counter()
    child = subprocess.Popen(train_command(config, out, overrides), env=env)
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)  # stop after this step, save a checkpoint
        child.wait()
    taken = time.perf_counter() - start
    if child.returncode not in (0, 130):
        raise SystemExit(f"{out.name}: training failed with exit code {child.returncode}")
    (out / "train_seconds.json").write_text(json.dumps(taken))
    return taken


def calibrated_steps(config: str, out: Path, overrides: list[str], seconds: float,
                     probe_steps: int = 40) -> int:
    """Steps that fit `seconds`, from the images per second of a short probe run (its last
    log line, which excludes start-up), minus the probe's start-up allowance."""
    probe = overrides + [f"train.steps={probe_steps}", "log.every=10"]
    env = dict(os.environ, **ONE_THREAD)
    subprocess.run(train_command(config, out, probe), env=env, check=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rate = [r["img_per_s"] for r in rows if "img_per_s" in r][-1]
    batch = next(int(o.split("=")[1]) for o in overrides if o.startswith("train.batch_size="))
    return max(1, int(0.95 * seconds * rate / batch))
