"""Config trees flattened to dotted keys, and the keys on which several runs differ."""

from __future__ import annotations

import json
from typing import Any

ABSENT = "(absent)"  # how a key one run's config lacks is shown


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'steps': 6}} -> {'train.steps': 6}; lists and empty dicts stay leaves."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in every config (a missing key differs), in
    the order the configs list them."""
    flats = [flatten(c) for c in configs]
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(flat))
    return [k for k in keys if len({_canonical(f, k) for f in flats}) > 1]


def _canonical(flat: dict[str, Any], key: str) -> str | None:
    """Comparable text of flat[key] (lists are unhashable); None when the key is absent."""
    return json.dumps(flat[key], sort_keys=True, default=str) if key in flat else None


def show_value(flat: dict[str, Any], key: str) -> str:
    """A config value as text for a table: strings as they are, the rest as in YAML/JSON."""
    if key not in flat:
        return ABSENT
    value = flat[key]
    return value if isinstance(value, str) else json.dumps(value, default=str)
