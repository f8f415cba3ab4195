"""On-disk cache of reference statistics (real features, mean, covariance).

One entry is `NAME.safetensors` (features float32, mu and sigma float64) plus `NAME.json`, a
sidecar holding the full key (source, split, extractor and its digest, n, preprocessing, seed,
hash of the selected real pixels) and the SHA-256 of the tensors file. A sidecar whose key
differs (stale) or whose hash does not match (corrupt, truncated) makes the entry be rebuilt.
Writes are atomic, tensors first, so a crash never leaves a sidecar that vouches for a torn file.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ganforge.data.paths import user_cache_dir
from ganforge.fileio import atomic_write_bytes, atomic_write_json, file_digest
from ganforge.metrics.fid import feature_stats

FORMAT_VERSION = 1


@dataclass
class RefStats:
    """Reference features and their Gaussian statistics, with where they came from."""

    features: torch.Tensor  # (N, D) float32
    mu: torch.Tensor  # (D,) float64
    sigma: torch.Tensor  # (D, D) float64
    key: dict[str, Any]
    status: str  # "hit", "miss", or "rebuilt (why)"
    path: Path | None


def default_cache_dir() -> Path:
    """refstats/ inside ganforge's cache folder ($XDG_CACHE_HOME/ganforge or ~/.cache/ganforge)."""
    return user_cache_dir() / "refstats"


def tensor_digest(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (identifies the exact real subset)."""
    digest = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def entry_paths(key: dict[str, Any], cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(tensors path, sidecar path) of the cache entry for key."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    canonical = json.dumps(key, sort_keys=True, default=str)
    short = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    label = "-".join(str(key.get(part, "")) for part in ("source", "split", "extractor"))
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60] + "-" + short
    return folder / f"{stem}.safetensors", folder / f"{stem}.json"


def load_entry(key: dict[str, Any], cache_dir: str | Path | None = None) -> tuple[Any, str]:
    """(RefStats or None, reason): None with "missing", "stale: ..." or "corrupt: ..."."""
    tensors_path, sidecar_path = entry_paths(key, cache_dir)
    if not sidecar_path.is_file():
        return None, "missing"
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        recorded_key, recorded_hash = sidecar["key"], sidecar["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"corrupt: unreadable sidecar ({exc.__class__.__name__})"
    if json.loads(json.dumps(key, default=str)) != recorded_key:
        return None, "stale: key differs"
    if not tensors_path.is_file() or file_digest(tensors_path) != recorded_hash:
        return None, "corrupt: tensors file missing or hash mismatch"
    try:
        tensors = load_tensors(tensors_path.read_bytes())
        stats = RefStats(
            tensors["features"], tensors["mu"], tensors["sigma"], key, "hit", tensors_path
        )
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a corrupt entry
        return None, f"corrupt: {exc.__class__.__name__}"
    return stats, "hit"


def save_entry(stats: RefStats, cache_dir: str | Path | None = None) -> Path:
    """Write stats atomically (tensors, then sidecar with their hash); returns tensors path."""
    tensors_path, sidecar_path = entry_paths(stats.key, cache_dir)
    payload = save_tensors(
        {
            "features": stats.features.contiguous(),
            "mu": stats.mu.contiguous(),
            "sigma": stats.sigma.contiguous(),
        }
    )
    atomic_write_bytes(tensors_path, payload)
    sidecar = {
        "format": FORMAT_VERSION,
        "key": json.loads(json.dumps(stats.key, default=str)),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "shape": list(stats.features.shape),
    }
    atomic_write_json(sidecar_path, sidecar)
    return tensors_path


def get_or_compute(
    key: dict[str, Any],
    compute: Callable[[], torch.Tensor],
    cache_dir: str | Path | None = None,
) -> RefStats:
    """Cached reference statistics for key; compute() gives the features on a miss."""
    key = {"format": FORMAT_VERSION, **key}
    cached, reason = load_entry(key, cache_dir)
    if cached is not None:
        return cached
    features = compute().float()
    mu, sigma = feature_stats(features)
    status = "miss" if reason == "missing" else f"rebuilt ({reason})"
    stats = RefStats(features, mu, sigma, key, status, None)
    try:
        stats.path = save_entry(stats, cache_dir)
    except OSError as exc:
        warnings.warn(f"could not write the reference-statistics cache: {exc}", stacklevel=2)
    return stats
