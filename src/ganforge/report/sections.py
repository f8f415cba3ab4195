"""The sections a report shows for each run: overview, samples, curves, evaluation, final
metrics, config, versions. Each returns escaped HTML."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError
from ganforge.report import html as h
from ganforge.report.configdiff import flatten
from ganforge.report.plots import plot_series
from ganforge.report.rundata import RunData
from ganforge.report.series import (
    EVAL_PREFIX,
    GROUP_HELP,
    eval_metrics,
    is_number,
    is_spread,
    last_eval_row,
    last_skipped_eval,
    last_step,
    series,
    spread_key,
    training_groups,
)

MAX_GRIDS = 8  # evenly spaced sample grids shown per run, plus the last one
RUN_SECTIONS = ("overview", "samples", "curves", "evaluation", "final-metrics", "config",
                "versions")
DEFAULT_N = "the protocol's default: 10,000 images (Lucic et al. 2018), 2,500 points (2D)"


class Plotter:
    """Draws plots into a scratch folder and hands back their PNG bytes."""

    def __init__(self, folder: Path) -> None:
        """Plots go into folder (a temporary one, deleted with the page's other scratch)."""
        self.folder = folder
        self.count = 0

    def lines(self, lines: dict[str, tuple[list[int], list[float]]], title: str,
              markers: bool = False, spread: dict[str, list[float]] | None = None
              ) -> bytes | None:
        """One panel of lines against step (a band of +- spread where given), as PNG bytes;
        None when there is nothing to draw."""
        self.count += 1
        path = plot_series(lines, self.folder / f"plot-{self.count}.png", title,
                           markers=markers, spread=spread)
        return None if path is None else path.read_bytes()


def fmt(value: Any) -> str:
    """A number as a table shows it (4 significant digits), anything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def setting(run: RunData, key: str, default: Any = None) -> Any:
    """A dotted config key of a run (default when its config lacks it)."""
    return flatten(run.config).get(key, default)


def pick_evenly(items: list, k: int = MAX_GRIDS) -> list:
    """Up to k evenly spaced items from the first on, plus the last: all when few."""
    n = len(items)
    if n <= k + 1:
        return list(items)
    chosen = sorted({i * (n - 1) // k for i in range(k)} | {n - 1})
    return [items[i] for i in chosen]


def grid_png(path: Path) -> bytes:
    """A sample grid's bytes, refused unless they are a PNG (as a run writes them)."""
    data = path.read_bytes()
    if not data.startswith(h.PNG_MAGIC):
        raise GanforgeError(
            f"'{path}' is not a PNG image, but a run writes its sample grids as PNG. Move the "
            "file out of the samples folder and run the report again."
        )
    return data


# -- one run ---------------------------------------------------------------------------------


def run_section(run: RunData, anchor: str, plotter: Plotter) -> str:
    """Every section of one run, under its name."""
    parts = [
        overview(run, f"{anchor}-overview"),
        samples(run, f"{anchor}-samples"),
        curves(run, f"{anchor}-curves", plotter),
        evaluation(run, f"{anchor}-evaluation", plotter),
        final_metrics(run, f"{anchor}-final-metrics"),
        config(run, f"{anchor}-config"),
        versions(run, f"{anchor}-versions"),
    ]
    return h.section(anchor, "run", f"Run: {run.label}", "".join(parts), level=2)


def overview(run: RunData, anchor: str) -> str:
    """What the run is: task, data, model, loss, and how far it got."""
    done = last_step(run.rows)
    saved = run.checkpoint.get("step") if run.checkpoint else None
    rows = [
        ["directory", str(run.root)],
        ["task", str(setting(run, "task.name", "?"))],
        ["data", str(setting(run, "data.source", "?"))],
        ["architecture", str(setting(run, "model.arch", "?"))],
        ["loss", str(setting(run, "loss.name", "?"))],
        ["steps planned", fmt(setting(run, "train.steps", "?"))],
        ["last step logged", "none yet" if done is None else str(done)],
        ["newest checkpoint", run.checkpoint_note if saved is None else f"step {saved}"],
    ]
    return h.section(anchor, "overview", "Overview", h.table(None, rows))


def samples(run: RunData, anchor: str) -> str:
    """Sample grids across training (a selection when there are many)."""
    if not run.grids:
        body = h.note("No sample grids yet: a run writes samples/step-*.png every "
                      "train.sample_every steps and when it stops.")
        return h.section(anchor, "samples", "Samples across training", body)
    shown = pick_evenly(run.grids)
    intro = (f"Fixed inputs, {len(shown)} of {len(run.grids)} grids"
             if len(shown) < len(run.grids) else f"Fixed inputs, all {len(run.grids)} grids")
    figures = "".join(h.figure(grid_png(path), f"step {step}", "grid") for step, path in shown)
    body = f'<p class="muted">{h.esc(intro)}.</p><div class="gallery">{figures}</div>'
    return h.section(anchor, "samples", "Samples across training", body)


def curves(run: RunData, anchor: str, plotter: Plotter) -> str:
    """Training curves: one panel per group of logged keys (losses, D outputs, ...)."""
    groups = training_groups(run.rows)
    if not groups:
        body = h.note("No metrics logged yet: metrics.jsonl is missing or empty (a run logs "
                      "one line every log.every steps).")
        return h.section(anchor, "curves", "Training curves", body)
    panels, legend = [], []
    for group, keys in groups.items():
        png = plotter.lines({k: series(run.rows, k) for k in keys}, group)
        if png is not None:
            panels.append(h.img(png, f"{group}: {', '.join(keys)}", "plot"))
            legend.append([group, ", ".join(keys), GROUP_HELP[group]])
    body = f'<div class="plots">{"".join(panels)}</div>'
    body += h.table(["panel", "keys", "what"], legend)
    return h.section(anchor, "curves", "Training curves", body)


def evaluation(run: RunData, anchor: str, plotter: Plotter) -> str:
    """Evaluation metrics over training, one panel per metric (their scales differ)."""
    names = eval_metrics(run.rows)
    if not names:
        return h.section(anchor, "evaluation", "Evaluation over training",
                         h.note(no_evaluation(run)))
    panels = []
    for name in [n for n in names if not is_spread(n, names)]:
        line = series(run.rows, EVAL_PREFIX + name)
        std = spread_key(name, names)
        spread = None
        if std is not None:  # logged in the same rows as the metric: one per step
            steps, values = series(run.rows, EVAL_PREFIX + std)
            spread = {name: values} if steps == line[0] else None
        png = plotter.lines({name: line}, name, markers=True, spread=spread)
        if png is not None:
            panels.append(h.img(png, f"{name} over training", "plot"))
    body = f'<div class="plots">{"".join(panels)}</div>'
    skipped = last_skipped_eval(run.rows)
    if skipped is not None:
        body += h.note(f"Step {skipped['step']}: evaluation skipped, {skipped['eval_skipped']}")
    return h.section(anchor, "evaluation", "Evaluation over training", body)


def no_evaluation(run: RunData) -> str:
    """Why a run has no evaluation rows, and how to get some."""
    every = setting(run, "eval.every", 0)
    skipped = last_skipped_eval(run.rows)
    if skipped is not None:
        return f"No evaluation yet; step {skipped['step']}: {skipped['eval_skipped']}."
    if not every:
        return ("No evaluation during training (eval.every is 0). Set eval.every=N to "
                f"evaluate every N steps, or run `ganforge eval {run.root}`.")
    return f"No evaluation yet (eval.every is {every}; none has finished)."


def final_metrics(run: RunData, anchor: str) -> str:
    """The last evaluation's numbers with their protocol, and the best checkpoint's record."""
    title = "Final metrics"
    row = last_eval_row(run.rows)
    if row is None:
        return h.section(anchor, "final-metrics", title, h.note(no_evaluation(run)))
    values = [[k[len(EVAL_PREFIX):], fmt(v)] for k, v in row.items()
              if k.startswith(EVAL_PREFIX) and is_number(v)]
    body = f'<p class="muted">The last evaluation, at step {h.esc(row["step"])}.</p>'
    body += h.table(["metric", "value"], values, numeric=[1])
    if "eval_resolution" in row:
        body += f"<p>Computed at resolution {h.esc(row['eval_resolution'])}.</p>"
    body += "<h4>Protocol</h4>" + h.table(None, protocol_rows(run))
    best = (run.checkpoint or {}).get("best")
    if isinstance(best, dict) and {"metric", "value", "step"} <= best.keys():
        body += "<h4>Best checkpoint</h4>" + h.table(
            ["metric", "value", "step", "files"],
            [[str(best["metric"]), fmt(best["value"]), str(best["step"]),
              "checkpoints/best.json + best.safetensors"]], numeric=[1, 2])
    return h.section(anchor, "final-metrics", title, body)


def protocol_rows(run: RunData) -> list[list[str]]:
    """How the run's in-training evaluation was done, from its eval config."""
    features = str(setting(run, "eval.features", "inception"))
    if features.startswith("classifier:"):
        kind = ("a domain classifier's features: the fast protocol, comparable only with "
                "numbers from the same classifier file")
    elif features.startswith("inception"):
        kind = "TF Inception-v3 (2015-12-05) pool features, images resized to 299x299"
    else:
        kind = ""
    n = setting(run, "eval.n")
    against = setting(run, "eval.against") or (
        f"{setting(run, 'data.source', '?')}, test split (the run's own data)")
    return [
        ["reference", str(against)],
        ["features", f"{features} ({kind})" if kind else features],
        ["samples per side", DEFAULT_N if n is None else str(n)],
        ["class labels", str(setting(run, "eval.labels", "uniform"))],
        ["seed", str(setting(run, "train.seed", "?"))],
        ["every", f"{setting(run, 'eval.every', '?')} steps"],
    ]


def config(run: RunData, anchor: str) -> str:
    """The run's config.yaml as written (every key resolved)."""
    body = f"<pre>{h.esc(run.config_text)}</pre>"
    return h.section(anchor, "config", "Config (config.yaml)", body)


def versions(run: RunData, anchor: str) -> str:
    """Library versions and data the newest checkpoint records."""
    if run.checkpoint is None:
        body = h.note(f"Versions are recorded in checkpoints; {run.checkpoint_note}.")
        return h.section(anchor, "versions", "Versions", body)
    recorded = run.checkpoint.get("versions") or {}
    rows = [[str(k), str(v)] for k, v in recorded.items()]
    data = run.checkpoint.get("data") or {}
    for key in ("name", "kind", "shape", "num_classes"):
        if data.get(key) is not None:
            rows.append([f"data {key}", fmt(data[key])])
    body = (f'<p class="muted">Recorded in the checkpoint of step '
            f'{h.esc(run.checkpoint.get("step", "?"))}.</p>' + h.table(None, rows))
    return h.section(anchor, "versions", "Versions", body)
