"""`ganforge report`: one self-contained HTML file for one or several runs, written atomically.

A run with no metrics, grids or checkpoint yet still gets a report; each missing part says
what is missing and when a run writes it (ReportResult.notes lists them for the CLI).
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

import ganforge
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_text
from ganforge.report import html as h
from ganforge.report.compare import comparison
from ganforge.report.rundata import RunData, load_runs
from ganforge.report.sections import Plotter, run_section
from ganforge.report.series import eval_metrics, training_groups


@dataclass
class ReportResult:
    """What `write_report` wrote."""

    out: Path
    runs: list[str]
    size: int  # bytes
    notes: list[str] = field(default_factory=list)  # parts some run does not have yet


def write_report(
    runs: list[str | Path], out: str | Path, overwrite: bool = False
) -> ReportResult:
    """Read the runs, draw their plots, and write the HTML page to `out` (refused when it
    exists, unless overwrite)."""
    out = Path(out)
    check_out(out, overwrite)
    loaded = load_runs(list(runs))
    with tempfile.TemporaryDirectory(prefix="ganforge-report-") as scratch:
        text = render(loaded, Plotter(Path(scratch)))
    atomic_write_text(out, text)
    return ReportResult(out, [r.label for r in loaded], len(text.encode("utf-8")),
                        missing_parts(loaded))


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an --out that is a folder, or an existing file without overwrite."""
    if out.is_dir():
        raise GanforgeError(
            f"--out '{out}' is a directory; give the HTML file to write, e.g. "
            f"--out {out / 'report.html'}."
        )
    if out.exists() and not overwrite:
        raise GanforgeError(
            f"'{out}' already exists. Pass --overwrite to replace it, or pick another --out."
        )


def render(runs: list[RunData], plotter: Plotter) -> str:
    """The whole page: header with links, the comparison (several runs), then each run."""
    anchors = [f"run-{i}" for i in range(1, len(runs) + 1)]
    links = [(a, r.label) for a, r in zip(anchors, runs)]
    if len(runs) > 1:
        links.insert(0, ("comparison", "side by side"))
    nav = "".join(f'<a href="#{h.esc(a)}">{h.esc(text)}</a>' for a, text in links)
    made = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by ganforge "
            f"{ganforge.__version__} (Python {platform.python_version()}, matplotlib "
            f"{matplotlib.__version__})")
    header = (f"<h1>ganforge report</h1><p class=\"muted\">{len(runs)} "
              f"run{'s' if len(runs) != 1 else ''}; made {h.esc(made)}.</p><nav>{nav}</nav>")
    body = comparison(runs, plotter) if len(runs) > 1 else ""
    body += "\n".join(run_section(r, a, plotter) for r, a in zip(runs, anchors))
    title = "ganforge report: " + ", ".join(r.label for r in runs)
    return h.page(title, header, body)


def missing_parts(runs: list[RunData]) -> list[str]:
    """One line per run and part it lacks so far (metrics, evaluation where eval.every is
    set, grids, checkpoint)."""
    notes = []
    for run in runs:
        evaluates = bool((run.config.get("eval") or {}).get("every"))
        lacks = [what for what, present in (
            ("metrics", training_groups(run.rows)),
            ("evaluation", eval_metrics(run.rows) or not evaluates),
            ("sample grids", run.grids), ("checkpoint", run.checkpoint),
        ) if not present]
        if lacks:
            notes.append(f"{run.label}: no {', no '.join(lacks)} yet")
    return notes
