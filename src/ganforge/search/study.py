"""`ganforge search`: an Optuna study over config keys, one ordinary run directory per trial.

The objective is the run's in-training evaluation, its primary score (eval.primary, else the
first number of the first metric: FID, modes covered, accuracy, L1...). Each evaluation is
reported to Optuna so a pruner can stop a trial early; the trial's value is the best score its
run reached, the score of the run's own best.* checkpoint (the last one would let a late
wobble hide a good run).

The study lives in SQLite (or any database URL Optuna takes). A killed search continues with
the same command: COMPLETE and PRUNED trials count towards --trials, a trial left RUNNING by a
dead process is marked FAIL (same host: its recorded process id is gone; otherwise: its
heartbeat is older than GRACE_S) and its run directory is left as it is (the new trial gets a
new number). Several processes may share one study: each starts trials while fewer than
--trials are finished or running, then waits for the others' trials, so every worker ends
with the whole table and best.yaml.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import optuna.distributions as od
from optuna.trial import FrozenTrial, TrialState

from ganforge import config as configlib
from ganforge.config import Config
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_text
from ganforge.search import space as spacelib
from ganforge.training.loop import LOWER_IS_BETTER, train

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # what --trials counts
HEARTBEAT_S, GRACE_S = 5, 30  # a trial whose heartbeat is older than GRACE_S is dead


@dataclass
class SearchResult:
    """Where a search ended: every trial of the study, the best one and its config file."""

    study: str
    metric: str
    direction: str
    planned: int
    ran: int  # trials this process ran
    trials: list[FrozenTrial] = field(default_factory=list)
    best: FrozenTrial | None = None
    best_config: Path | None = None


def search(
    config_path: str | Path, space_path: str | Path, out: str | Path, storage: str,
    study_name: str, trials: int, sampler: str = "tpe", pruner: str = "median",
    overrides: list[str] | None = None, seed: int = 0, startup_trials: int = 3,
    echo: Callable[[str], None] = print,
) -> SearchResult:
    """Run trials until the study holds `trials` finished ones; write OUT/best.yaml."""
    overrides = list(overrides or [])
    base = configlib.load(config_path, overrides)
    metric = check_objective(base)
    space = spacelib.read_space(space_path)
    check_space(config_path, overrides, space)
    planned = check_counts(trials, sampler, space, startup_trials, echo)
    direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    study = open_study(storage, study_name, direction, metric)
    study.sampler = make_sampler(sampler, space, seed + len(study.get_trials(deepcopy=False)))
    study.pruner = make_pruner(pruner, base, startup_trials)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    objective = Objective(config_path, overrides, space, metric, direction, out, echo)
    ran = failed = 0
    waiting = False
    while True:
        fail_dead_trials(study, echo)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        done, running = sum(s in COUNTED for s in states), states.count(TrialState.RUNNING)
        if done >= planned:
            break
        if done + running >= planned:  # the rest run elsewhere: wait (their end, or death)
            if not waiting:
                echo(f"waiting for {running} trial(s) running in other processes")
            waiting = True
            time.sleep(HEARTBEAT_S)
            continue
        study.optimize(objective, n_trials=1)
        ran += 1
        number = objective.last
        if number is not None and study.get_trials()[number].state == TrialState.FAIL:
            failed += 1  # no finite score: the run diverged (or never evaluated)
        if failed > planned:
            raise GanforgeError(
                f"{failed} trials failed (no finite {metric} in any evaluation), more than the "
                f"{planned} planned; check the runs under {out} (e.g. {out}/trial-"
                f"{number:04d}/metrics.jsonl) and narrow the search space."
            )
    result = SearchResult(study_name, metric, direction, planned, ran, study.trials)
    complete = [t for t in result.trials if t.state == TrialState.COMPLETE]
    if complete:
        result.best = study.best_trial
        result.best_config = out / "best.yaml"
        best = configlib.load(config_path, result.best.user_attrs["overrides"])
        atomic_write_text(result.best_config, configlib.dump(best))
    return result


# -- checks before any trial -----------------------------------------------------------------


def check_objective(config: Config) -> str:
    """The score trials are compared on; refuses a config that never evaluates."""
    e, steps = config.eval, config.train.steps
    if not e.every:
        raise GanforgeError(
            "ganforge search compares trials on the in-training evaluation, but eval.every is "
            "0 (off). Set eval.every (e.g. --set eval.every=500) and eval.metrics."
        )
    if e.every > steps:
        raise GanforgeError(
            f"eval.every ({e.every}) is above train.steps ({steps}): no trial would ever be "
            f"evaluated. Set eval.every to at most {steps}."
        )
    return configlib.primary_score(e)


def check_space(config_path: str | Path, overrides: list[str], space: spacelib.Space) -> None:
    """Load the config at the extremes of every key, so bad values fail before trial 0."""
    for point in spacelib.corners(space):
        try:
            configlib.load(config_path, overrides + spacelib.overrides(point))
        except GanforgeError as exc:
            raise GanforgeError(f"The search space allows a value the config refuses: {exc}") \
                from None


def check_counts(
    trials: int, sampler: str, space: spacelib.Space, startup_trials: int,
    echo: Callable[[str], None],
) -> int:
    """The planned number of finished trials (a grid search stops when its grid is done)."""
    if trials < 1:
        raise GanforgeError(f"--trials must be at least 1; got {trials}.")
    if startup_trials < 0:
        raise GanforgeError(f"--startup-trials must be at least 0; got {startup_trials}.")
    if sampler not in SAMPLERS:
        raise GanforgeError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}.")
    if sampler != "grid":
        return trials
    size = spacelib.grid_size(spacelib.grid_values(space))
    if trials > size:
        echo(f"note: the grid has {size} points; running {size} trials, not {trials}.")
    return min(trials, size)


# -- the study -------------------------------------------------------------------------------


def open_study(storage: str, name: str, direction: str, metric: str) -> optuna.Study:
    """Create the study, or load it when it exists (same direction and metric required)."""
    # a failing trial is reported by our own error (its traceback would hide the message)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # heartbeats (how a dead worker's trial is found) are marked experimental; we rely on them
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        rdb = optuna.storages.RDBStorage(
            storage, engine_kwargs={"connect_args": {"timeout": 60}}
            if storage.startswith("sqlite") else None,
            heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
        )
        study = optuna.create_study(
            storage=rdb, study_name=name, direction=direction, load_if_exists=True,
        )
    except (ValueError, ImportError, optuna.exceptions.OptunaError) as exc:
        raise GanforgeError(
            f"Cannot open the study storage '{storage}': {exc}. Give a database URL, e.g. "
            "--storage sqlite:///search.db."
        ) from None
    stored = study.user_attrs.get("metric")
    if stored is None:
        study.set_user_attr("metric", metric)
    elif stored != metric or study.direction.name.lower() != direction:
        raise GanforgeError(
            f"Study '{name}' in {storage} compares trials on {stored} "
            f"({study.direction.name.lower()}); this config's eval gives {metric} "
            f"({direction}). Use another --study name, or the eval settings the study began with."
        )
    return study


def make_sampler(name: str, space: spacelib.Space, seed: int) -> optuna.samplers.BaseSampler:
    """grid, random or tpe, seeded (a continued search gets a new seed: no repeated draws)."""
    if name == "grid":
        return optuna.samplers.GridSampler(spacelib.grid_values(space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str, config: Config, startup_trials: int) -> optuna.pruners.BasePruner:
    """none, median (after startup_trials finished trials) or hyperband (over train.steps)."""
    if name not in PRUNERS:
        raise GanforgeError(f"--pruner must be one of {', '.join(PRUNERS)}; got {name!r}.")
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=config.eval.every, max_resource=config.train.steps,
        )
    return optuna.pruners.NopPruner()


def fail_dead_trials(study: optuna.Study, echo: Callable[[str], None]) -> None:
    """Mark FAIL the RUNNING trials whose process died (this host) or went silent (any host)."""
    optuna.storages.fail_stale_trials(study)
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") != host or pid is None or process_alive(pid):
            continue
        try:  # Study has no public way to fail another process's trial; its storage has
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # it ended meanwhile
            continue
        echo(f"trial {trial.number}: its process ({pid}) is gone; marked FAIL (its run "
             f"directory is kept and not reused)")


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class Objective:
    """One trial: suggest the space, train DIR/trial-NNNN, report evaluations, return the best."""

    def __init__(
        self, config_path: str | Path, overrides: list[str], space: spacelib.Space,
        metric: str, direction: str, out: Path, echo: Callable[[str], None],
    ) -> None:
        self.config_path, self.overrides, self.space = config_path, overrides, space
        self.metric, self.lower, self.out, self.echo = metric, direction == "minimize", out, echo
        self.last: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        """Train one run with the trial's values; its best score is the trial's value."""
        self.last = trial.number
        params = {key: suggest(trial, key, dist) for key, dist in self.space.items()}
        overrides = self.overrides + spacelib.overrides(params)
        run_dir = self.out / f"trial-{trial.number:04d}"
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("run_dir", str(run_dir))
        try:
            config = configlib.load(self.config_path, overrides + ["log.progress=false"])
        except GanforgeError as exc:  # a combination of values the config refuses
            raise GanforgeError(f"trial {trial.number} ({describe(params)}): {exc}") from None
        values: list[float] = []
        pruned = False

        def on_eval(step: int, scores: dict[str, float]) -> bool:
            nonlocal pruned
            value = scores.get(self.metric)
            if value is None or not math.isfinite(value):
                return False
            values.append(value)
            trial.report(value, step)
            pruned = trial.should_prune()
            return pruned

        self.echo(f"trial {trial.number}: {describe(params)} -> {run_dir}")
        try:
            result = train(config, run_dir, progress=False, on_eval=on_eval)
        except GanforgeError as exc:
            raise GanforgeError(f"trial {trial.number} ({run_dir}): {exc}") from None
        if pruned:
            self.echo(f"trial {trial.number}: pruned at step {result.step}")
            raise optuna.TrialPruned(f"pruned at step {result.step}")
        if result.interrupted:  # Ctrl-C: the trial fails, the search stops (rerun continues)
            raise KeyboardInterrupt
        if not values:
            self.echo(f"trial {trial.number}: no finite {self.metric} in any evaluation: FAIL")
            return math.nan
        best = min(values) if self.lower else max(values)
        self.echo(f"trial {trial.number}: {self.metric} {best:.4g}")
        return best


def suggest(trial: optuna.Trial, key: str, dist: od.BaseDistribution) -> Any:
    """The trial's value for one key, drawn from its distribution."""
    if isinstance(dist, od.CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, od.IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


# -- reporting -------------------------------------------------------------------------------


def describe(params: dict[str, Any]) -> str:
    """'optim.g_lr=0.0003, loss.name=hinge'."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def format_table(result: SearchResult) -> str:
    """The study's trials, one row each: number, state, value, params."""
    rows = [("trial", "state", result.metric, "params")]
    for t in result.trials:
        value = "" if t.value is None or math.isnan(t.value) else f"{t.value:.4g}"
        if t.state == TrialState.PRUNED and t.intermediate_values:
            last = max(t.intermediate_values)
            value = f"({t.intermediate_values[last]:.4g} @ {last})"
        mark = " *" if result.best is not None and t.number == result.best.number else ""
        rows.append((f"{t.number}{mark}", t.state.name, value, describe(t.params)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths)) + "  " + r[3] for r in rows
    )
