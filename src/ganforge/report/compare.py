"""Several runs side by side: the config keys that differ, final numbers, newest grids, and
curves with one line per run. Returns escaped HTML."""

from __future__ import annotations

from ganforge.report import html as h
from ganforge.report.configdiff import differing_keys, flatten, show_value
from ganforge.report.rundata import RunData
from ganforge.report.sections import Plotter, fmt, grid_png
from ganforge.report.series import (
    EVAL_PREFIX,
    eval_metrics,
    is_spread,
    last_eval_row,
    last_step,
    series,
    training_groups,
)


def comparison(runs: list[RunData], plotter: Plotter) -> str:
    """Several runs side by side: config differences, final numbers, last grids, curves."""
    parts = [config_differences(runs), final_summary(runs), last_grids(runs),
             overlaid_curves(runs, plotter)]
    return h.section("comparison", "comparison", "Runs side by side", "".join(parts), level=2)


def config_differences(runs: list[RunData]) -> str:
    """A table of only the config keys that differ; values unlike the first run's marked."""
    keys = differing_keys([r.config for r in runs])
    title = "Config differences"
    if not keys:
        return h.section("config-differences", "config-differences", title,
                         "<p>The configs are identical.</p>")
    flats = [flatten(r.config) for r in runs]
    rows, changed = [], []
    for i, key in enumerate(keys):
        shown = [show_value(f, key) for f in flats]
        rows.append([key, *shown])
        changed += [(i, c + 1) for c, value in enumerate(shown) if value != shown[0]]
    body = (f'<p class="muted">Only the {len(keys)} keys that differ; values unlike the '
            f"first run's are highlighted.</p>"
            + h.table(["key", *[r.label for r in runs]], rows, changed=changed))
    return h.section("config-differences", "config-differences", title, body)


def final_summary(runs: list[RunData]) -> str:
    """One row per run: last step, last evaluation's step and numbers, best checkpoint."""
    names: list[str] = []
    for run in runs:
        names += [n for n in eval_metrics(run.rows) if n not in names]
    rows = []
    for run in runs:
        last = last_eval_row(run.rows) or {}
        best = (run.checkpoint or {}).get("best")
        best_text = (f"{best['metric']} {fmt(best['value'])} at step {best['step']}"
                     if isinstance(best, dict) and {"metric", "value", "step"} <= best.keys()
                     else "")
        step = last_step(run.rows)
        rows.append([run.label, "" if step is None else str(step), str(last.get("step", "")),
                     *[fmt(last.get(EVAL_PREFIX + n, "")) for n in names], best_text])
    headers = ["run", "last step", "last evaluation", *names, "best"]
    table = h.table(headers, rows, numeric=range(1, len(names) + 3))
    return h.section("final-summary", "final-summary", "Final numbers", table)


def last_grids(runs: list[RunData]) -> str:
    """Each run's newest sample grid, next to each other."""
    figures = [h.figure(grid_png(run.grids[-1][1]), f"{run.label}, step {run.grids[-1][0]}",
                        "grid") for run in runs if run.grids]
    body = f'<div class="gallery">{"".join(figures)}</div>' if figures else h.note(
        "No run has a sample grid yet.")
    return h.section("last-grids", "last-grids", "Newest samples", body)


def overlaid_curves(runs: list[RunData], plotter: Plotter) -> str:
    """Every evaluation metric (but standard deviations) and every total loss, one line per
    run."""
    keys = []
    for run in runs:
        names = eval_metrics(run.rows)
        keys += [EVAL_PREFIX + n for n in names if not is_spread(n, names)]
    keys += [k for run in runs for k in training_groups(run.rows).get("losses", [])]
    panels = []
    for key in dict.fromkeys(keys):
        png = plotter.lines({run.label: series(run.rows, key) for run in runs},
                            key.removeprefix(EVAL_PREFIX), markers=key.startswith(EVAL_PREFIX))
        if png is not None:
            panels.append(h.img(png, f"{key} of every run", "plot"))
    body = f'<div class="plots">{"".join(panels)}</div>' if panels else h.note(
        "No run has logged metrics yet.")
    return h.section("overlaid-curves", "overlaid-curves", "Curves of every run", body)
