"""A search space file (SPACE.yaml): dotted config keys mapped to Optuna distributions.

    optim.g_lr:    {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    model.g_width: {type: int, low: 16, high: 64, step: 16}
    loss.name:     {type: categorical, choices: [hinge, wgan-gp]}
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import typing
from pathlib import Path
from typing import Any

import optuna.distributions as od

from ganforge import config as configlib
from ganforge.config import Config
from ganforge.config_rules import nearest
from ganforge.errors import GanforgeError

TYPES = ("float", "int", "categorical")
FIELDS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
Space = dict[str, od.BaseDistribution]


def config_keys() -> list[str]:
    """Every dotted key a config has ('optim.g_lr', ...), in config order."""
    hints = typing.get_type_hints(Config)
    return [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(Config)
        for key in dataclasses.fields(hints[section.name])
    ]


def read_space(path: str | Path) -> Space:
    """Read and check SPACE.yaml: known keys, valid distributions (no config check yet)."""
    raw = configlib.read_yaml(path)
    if not raw:
        raise GanforgeError(
            f"Search space '{path}' is empty: map config keys to distributions, e.g. "
            "optim.g_lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}."
        )
    keys = config_keys()
    space: Space = {}
    for key, spec in raw.items():
        key = str(key)
        if key not in keys:
            raise GanforgeError(
                f"Search space '{path}': unknown config key '{key}'.{nearest(key, keys)} "
                "Keys are section.key as in --set (see `ganforge config`)."
            )
        space[key] = distribution(f"Search space '{path}', key '{key}'", spec)
    return space


def distribution(where: str, spec: Any) -> od.BaseDistribution:
    """One entry ({type: ..., ...}) as an Optuna distribution, with messages naming `where`."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise GanforgeError(
            f"{where}: give a mapping with a type ({', '.join(TYPES)}), e.g. "
            "{type: int, low: 16, high: 64, step: 16}; got " + repr(spec) + "."
        )
    kind = spec["type"]
    if kind not in TYPES:
        raise GanforgeError(
            f"{where}: type {kind!r} is not one of {', '.join(TYPES)}."
            f"{nearest(str(kind), TYPES)}"
        )
    unknown = [f for f in spec if f not in FIELDS[kind]]
    if unknown:
        raise GanforgeError(
            f"{where}: unknown field '{unknown[0]}' for type {kind}."
            f"{nearest(str(unknown[0]), FIELDS[kind])} Valid fields: {', '.join(FIELDS[kind])}."
        )
    if kind == "categorical":
        return categorical(where, spec.get("choices"))
    return numeric(where, kind, spec)


def categorical(where: str, choices: Any) -> od.CategoricalDistribution:
    """A non-empty list of scalar, distinct choices."""
    if not isinstance(choices, list) or not choices:
        raise GanforgeError(
            f"{where}: a categorical needs a non-empty list of choices, e.g. "
            f"choices: [hinge, wgan-gp]; got {choices!r}."
        )
    for choice in choices:
        if choice is not None and not isinstance(choice, (bool, int, float, str)):
            raise GanforgeError(
                f"{where}: choice {choice!r} is not a single value (number, string, true/false "
                "or null); lists cannot be searched over as one choice."
            )
    if len({json.dumps(c) for c in choices}) < len(choices):
        raise GanforgeError(f"{where}: the choices {choices!r} repeat a value; list each once.")
    return od.CategoricalDistribution(choices)


def numeric(where: str, kind: str, spec: dict[str, Any]) -> od.BaseDistribution:
    """An int or float range: low < high, optional log scale or step (not both)."""
    cast = int if kind == "int" else float
    values = {}
    for name in ("low", "high", "step"):
        value = spec.get(name)
        if value is None:
            if name != "step":
                raise GanforgeError(f"{where}: a {kind} range needs '{name}'.")
            continue
        if isinstance(value, str) and kind == "float":  # YAML 1.1 reads 1e-4 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and kind == "int" and not float(value).is_integer():
            ok = False
        if not ok or not math.isfinite(value):
            wanted = "an integer" if kind == "int" else "a number"
            raise GanforgeError(f"{where}: '{name}' must be {wanted}; got {value!r}.")
        values[name] = cast(value)
    low, high, step = values["low"], values["high"], values.get("step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise GanforgeError(f"{where}: 'log' must be true or false; got {log!r}.")
    if low >= high:
        raise GanforgeError(f"{where}: low ({low}) must be below high ({high}).")
    if log and low <= 0:
        raise GanforgeError(f"{where}: a log range needs low > 0; got low {low}.")
    if log and step is not None:
        raise GanforgeError(f"{where}: give either log: true or a step, not both.")
    if step is not None and step <= 0:
        raise GanforgeError(f"{where}: 'step' must be > 0; got {step}.")
    if kind == "int":
        return od.IntDistribution(low, high, log=log, step=step or 1)
    return od.FloatDistribution(low, high, log=log, step=step)


def grid_values(space: Space) -> dict[str, list[Any]]:
    """Every key's grid points; refuses what has no finite grid (float without step, log)."""
    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, od.CategoricalDistribution):
            grid[key] = list(dist.choices)
            continue
        if dist.log or dist.step is None:
            how = "log: true" if dist.log else "no step"
            raise GanforgeError(
                f"Search space key '{key}' has {how}, so --sampler grid has no points to try. "
                "Give the range a step (e.g. step: 1.0e-4) without log, list the values as "
                "{type: categorical, choices: [...]}, or use --sampler random or tpe."
            )
        count = round((dist.high - dist.low) / dist.step) + 1
        grid[key] = [dist.low + i * dist.step for i in range(count)]
        if isinstance(dist, od.FloatDistribution):
            grid[key] = [round(v, 12) for v in grid[key]]
    return grid


def grid_size(grid: dict[str, list[Any]]) -> int:
    """How many points the grid (the product of every key's values) has."""
    return math.prod(len(v) for v in grid.values())


def overrides(params: dict[str, Any]) -> list[str]:
    """A trial's values as --set strings (JSON scalars parse as the same YAML values)."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def corners(space: Space) -> list[dict[str, Any]]:
    """A few points that reach every value a key can take at its extremes (low, high, choices).

    Loading the config at each of them checks the space against the config's own rules
    (ranges, choices) before any trial runs.
    """
    ends = {}
    for key, dist in space.items():
        if isinstance(dist, od.CategoricalDistribution):
            ends[key] = list(dist.choices)
        else:
            ends[key] = [dist.low, dist.high]
    longest = max(len(v) for v in ends.values())
    return [{k: v[i % len(v)] for k, v in ends.items()} for i in range(longest)]


def product(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every point of the grid as a dict (used by tests and the plan line)."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]
