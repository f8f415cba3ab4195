"""`ganforge search`: grid coverage, a killed study continued, pruning, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ganforge import config as configlib
from ganforge.cli import main
from ganforge.errors import GanforgeError

optuna = pytest.importorskip("optuna")
from ganforge.search import search

TINY = {  # ring8, small MLPs, two evaluations of 500 points: about a second a trial
    "data": {"source": "ring8"},
    "model": {"arch": "mlp", "z_dim": 8, "g_hidden": [32, 32], "d_hidden": [32, 32],
              "g_norm": "batch"},
    "optim": {"g_lr": 1.0e-3, "d_lr": 1.0e-3},
    "train": {"steps": 40, "batch_size": 64, "sample_every": 40, "checkpoint_every": 40},
    "eval": {"every": 20, "metrics": ["modes"], "n": 500},
    "log": {"every": 20, "progress": False},
}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def eval_values(run_dir: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[f"eval/{key}"] for r in rows if f"eval/{key}" in r]


def running_with_pid(db: Path) -> bool:
    """Whether a RUNNING trial has recorded its process id (a trial's first write)."""
    with sqlite3.connect(db, timeout=30) as con:
        return bool(con.execute(
            "SELECT 1 FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
            "WHERE t.state = 'RUNNING' AND a.key = 'pid'").fetchall())


def states(db: Path, study: str) -> list[str]:
    """Trial states straight from the SQLite file (as another process sees them)."""
    with sqlite3.connect(db, timeout=30) as con:
        rows = con.execute(
            "SELECT t.state FROM trials t JOIN studies s ON t.study_id = s.study_id "
            "WHERE s.study_name = ? ORDER BY t.number", (study,),
        ).fetchall()
    return [r[0] for r in rows]


def test_grid_search_runs_every_value_once_and_writes_the_best_config(tmp_path, capsys):
    config = write(tmp_path / "base.yaml", TINY)
    space = write(tmp_path / "space.yaml",
                  {"optim.g_lr": {"type": "categorical", "choices": [1.0e-3, 2.0e-4]}})
    args = {"config_path": config, "space_path": space, "out": tmp_path / "out",
            "storage": f"sqlite:///{tmp_path}/s.db", "study_name": "grid", "trials": 5,
            "sampler": "grid", "pruner": "none"}
    result = search(**args)
    assert "the grid has 2 points" in capsys.readouterr().out  # 5 asked, the grid holds 2
    assert [t.state.name for t in result.trials] == ["COMPLETE", "COMPLETE"]
    assert sorted(t.params["optim.g_lr"] for t in result.trials) == [2.0e-4, 1.0e-3]
    assert result.metric == "modes_covered" and result.direction == "maximize"
    for t in result.trials:  # an ordinary run with the trial's value; value = its best eval
        run = tmp_path / "out" / f"trial-{t.number:04d}"
        assert configlib.load(run / "config.yaml").optim.g_lr == t.params["optim.g_lr"]
        assert t.value == max(eval_values(run, "modes_covered"))
        assert sorted(t.intermediate_values) == [20, 40]
    best = max(result.trials, key=lambda t: t.value)
    assert result.best.number == best.number
    resolved = configlib.load(result.best_config)  # ready for `ganforge train`
    assert resolved == configlib.load(config, [f"optim.g_lr={best.params['optim.g_lr']}"])
    again = search(**args)  # the study is done: the same command runs nothing more
    assert again.ran == 0 and len(again.trials) == 2


def test_a_killed_random_search_continues_to_the_planned_trials(tmp_path):
    config = write(tmp_path / "base.yaml", TINY)
    space = write(tmp_path / "space.yaml", {
        "optim.g_lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True},
        "model.z_dim": {"type": "int", "low": 4, "high": 16, "step": 4},
    })
    db = tmp_path / "s.db"
    command = [sys.executable, "-m", "ganforge.cli", "search", str(config), "--space",
               str(space), "--trials", "3", "--sampler", "random", "--storage",
               f"sqlite:///{db}", "--study", "killed", "--out", str(tmp_path / "out"),
               "--pruner", "none", "--set", "train.steps=60"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:  # kill -9 while trial 1 runs, trial 0 being complete
        while time.monotonic() < deadline and first.poll() is None:
            try:
                seen = states(db, "killed") if db.exists() else []
            except sqlite3.OperationalError:  # the file exists, its tables not yet
                seen = []
            if seen[:1] == ["COMPLETE"] and seen[1:2] == ["RUNNING"] and running_with_pid(db):
                break
            time.sleep(0.05)
        assert first.poll() is None, "the search ended before it could be killed"
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    assert states(db, "killed")[:2] == ["COMPLETE", "RUNNING"]
    trial0 = (tmp_path / "out" / "trial-0000" / "metrics.jsonl").read_text()
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert second.returncode == 0, second.stderr
    assert states(db, "killed") == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert "trial 1: its process" in second.stdout  # the dead trial was marked FAIL
    assert (tmp_path / "out" / "trial-0000" / "metrics.jsonl").read_text() == trial0
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{db}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len({t.user_attrs["run_dir"] for t in complete}) == 3  # the dead one's dir unused
    assert len({t.params["optim.g_lr"] for t in complete}) == 3  # no repeated draw
    assert (tmp_path / "out" / "best.yaml").is_file()
    assert "COMPLETE" in second.stdout and "FAIL" in second.stdout  # the table


def test_the_median_pruner_stops_trials_of_a_hopeless_branch(tmp_path):
    config = write(tmp_path / "base.yaml", {  # fid of raw 2D points: falls at once with a
        **TINY, "eval": {"every": 20, "metrics": ["fid"], "n": 500},  # real learning rate
        "optim": {"d_lr": 1.0e-3, "lr_decay": "none"},
    })
    space = write(tmp_path / "space.yaml",  # 1e-9: G never moves
                  {"optim.g_lr": {"type": "categorical", "choices": [1.0e-3, 1.0e-9]}})
    result = search(config, space, tmp_path / "out", f"sqlite:///{tmp_path}/s.db", "prune",
                    trials=4, sampler="random", pruner="median", startup_trials=1, seed=0)
    # seed 0 draws hopeless, good, hopeless, hopeless: the last two fall below the median
    pruned = [t for t in result.trials if t.state.name == "PRUNED"]
    assert pruned, [(t.state.name, t.params, t.intermediate_values) for t in result.trials]
    assert len(result.trials) == 4 and result.metric == "fid"
    for t in pruned:  # only the hopeless branch, stopped before train.steps, checkpoint saved
        assert t.params["optim.g_lr"] == 1.0e-9
        assert max(t.intermediate_values) < 40
        run = tmp_path / "out" / f"trial-{t.number:04d}"
        assert eval_values(run, "fid") and len(eval_values(run, "fid")) < 2
        assert (run / "checkpoints" / f"step-{max(t.intermediate_values):08d}.json").is_file()
    assert result.best.params["optim.g_lr"] == 1.0e-3


@pytest.mark.parametrize(("entry", "message"), [
    ({"optim.g_lrr": {"type": "float", "low": 1e-5, "high": 1e-3}},
     "unknown config key 'optim.g_lrr'. Did you mean 'optim.g_lr'?"),
    ({"loss.name": {"type": "categorical", "choices": []}}, "non-empty list of choices"),
    ({"optim.g_lr": {"type": "float", "low": 1e-3, "high": 1e-5}}, "low .* must be below high"),
    ({"optim.g_lr": {"type": "flaot", "low": 1e-5, "high": 1e-3}}, "Did you mean 'float'"),
    ({"loss.name": {"type": "categorical", "choices": ["hinge", "hinj"]}},
     "config refuses: .*'loss.name' is 'hinj'"),
])
def test_bad_search_spaces_are_refused_before_any_trial(tmp_path, entry, message):
    config = write(tmp_path / "base.yaml", TINY)
    space = write(tmp_path / "space.yaml", entry)
    with pytest.raises(GanforgeError, match=message):
        search(config, space, tmp_path / "out", f"sqlite:///{tmp_path}/s.db", "bad", 2)
    assert not (tmp_path / "out").exists() and not (tmp_path / "s.db").exists()


def test_grid_refuses_a_range_without_points(tmp_path):
    config = write(tmp_path / "base.yaml", TINY)
    space = write(tmp_path / "space.yaml",
                  {"optim.g_lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}})
    with pytest.raises(GanforgeError, match="'optim.g_lr' has log: true.*--sampler grid"):
        search(config, space, tmp_path / "out", f"sqlite:///{tmp_path}/s.db", "g", 2,
               sampler="grid")


def test_the_cli_refuses_a_config_that_never_evaluates(tmp_path, capsys):
    config = write(tmp_path / "base.yaml", {**TINY, "eval": {"every": 0}})
    space = write(tmp_path / "space.yaml",
                  {"loss.name": {"type": "categorical", "choices": ["hinge"]}})
    code = main(["search", str(config), "--space", str(space), "--trials", "2", "--storage",
                 f"sqlite:///{tmp_path}/s.db", "--study", "x", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "eval.every" in err and "Traceback" not in err
