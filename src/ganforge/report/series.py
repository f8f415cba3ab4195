"""The numbers a run logged in metrics.jsonl, grouped for plotting: pure functions, no drawing.

Tasks log different keys (d_loss/g_loss; g_l1, g_adversarial; d_A_loss, g_cycle; d_class ...),
so keys are grouped by the shape of their names, never looked up in a fixed list: whatever a
task logs lands in some group, unknown names in "other".
"""

from __future__ import annotations

import math
import re
from typing import Any

EVAL_PREFIX = "eval/"
GROUPS = ("losses", "loss terms", "D outputs", "gradient norms", "throughput", "other")
GROUP_HELP = {
    "losses": "the total loss each network minimizes",
    "loss terms": "the parts of those totals (adversarial, reconstruction, class, penalties)",
    "D outputs": "mean discriminator output on real and fake examples, and its accuracy",
    "gradient norms": "norm of each network's gradient on logged steps",
    "throughput": "training speed",
    "other": "every other number the run logged (counters, ...)",
}
PENALTY_TERMS = ("gp", "r1", "dragan", "feature_matching")
_D_OUTPUT = re.compile(r"d_(\w+_)?(real|fake|accuracy)", re.IGNORECASE)
_COUNTER = re.compile(r".*_(skips|steps|updates)", re.IGNORECASE)

Series = tuple[list[int], list[float]]


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool (JSON true/false are not measurements)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def group_of(key: str) -> str | None:
    """The plot group of a training key; None for step and evaluation keys."""
    if key == "step" or key.startswith((EVAL_PREFIX, "eval_")):
        return None
    if "grad_norm" in key:
        return "gradient norms"
    if _D_OUTPUT.fullmatch(key):
        return "D outputs"
    if key.endswith("_per_s"):
        return "throughput"
    if _COUNTER.fullmatch(key):
        return "other"
    if key.endswith("loss"):
        return "losses"
    if key.startswith(("g_", "d_", "G_", "D_")) or key in PENALTY_TERMS:
        return "loss terms"
    return "other"


def training_groups(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """{group: keys}, in GROUPS order and first-logged key order, of every numeric training
    key; groups with no key are left out."""
    keys: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if is_number(value) and group_of(key) is not None:
                keys.setdefault(key, None)
    found = {group: [k for k in keys if group_of(k) == group] for group in GROUPS}
    return {group: found[group] for group in GROUPS if found[group]}


def eval_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """Names (without 'eval/') of every numeric evaluation metric, in first-logged order."""
    names: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith(EVAL_PREFIX) and is_number(value):
                names.setdefault(key[len(EVAL_PREFIX):], None)
    return list(names)


def spread_key(name: str, names: list[str]) -> str | None:
    """The metric holding name's standard deviation (kid -> kid_std, is -> is_std), if any."""
    return f"{name}_std" if f"{name}_std" in names else None


def is_spread(name: str, names: list[str]) -> bool:
    """True for a metric that is another one's standard deviation (drawn as its band)."""
    return name.endswith("_std") and name[: -len("_std")] in names


def series(rows: list[dict[str, Any]], key: str) -> Series:
    """(steps, values) of one key over the rows that logged it as a number; non-finite values
    (a diverged loss) become NaN, which plots as a gap."""
    steps, values = [], []
    for row in rows:
        value = row.get(key)
        if is_number(value) and is_number(row.get("step")):
            steps.append(int(row["step"]))
            values.append(float(value) if math.isfinite(value) else math.nan)
    return steps, values


def last_eval_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest row holding a numeric evaluation metric; None before the first evaluation."""
    for row in reversed(rows):
        if any(k.startswith(EVAL_PREFIX) and is_number(v) for k, v in row.items()):
            return row
    return None


def last_skipped_eval(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest row saying why an evaluation was skipped (e.g. while nets grow), if any."""
    for row in reversed(rows):
        if "eval_skipped" in row:
            return row
    return None


def last_step(rows: list[dict[str, Any]]) -> int | None:
    """The highest step logged; None when nothing was."""
    steps = [int(r["step"]) for r in rows if is_number(r.get("step"))]
    return max(steps) if steps else None
