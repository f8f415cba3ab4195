"""Where data files live: the user cache folder and the one lookup order all file sources share.

Lookup order for a named dataset NAME (e.g. "fashion-mnist"): data.dir, then each folder in
$GANFORGE_DATA (os.pathsep-separated), each tried as is and with a NAME/ subfolder; then the
user cache (~/.cache/ganforge/NAME, honouring $XDG_CACHE_HOME); then /usr/share/datasets/NAME,
where Debian's dataset-* packages install.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ganforge.errors import GanforgeError

# Folders where system packages put datasets (Debian: dataset-fashion-mnist). A list so tests
# can hide them.
SYSTEM_DATA_DIRS: list[Path] = [Path("/usr/share/datasets")]


def expand(path: str | Path) -> Path:
    """A user-given path with ~ and $VARS expanded, made absolute (relative to the cwd)."""
    return Path(os.path.expandvars(os.path.expanduser(str(path)))).absolute()


def user_cache_dir() -> Path:
    """ganforge's cache folder: $XDG_CACHE_HOME/ganforge, else ~/.cache/ganforge."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return expand(base) / "ganforge"


def search_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Folders to look in for dataset NAME, in priority order (see the module docstring)."""
    roots = [expand(data_dir)] if data_dir else []
    env = os.environ.get("GANFORGE_DATA", "")
    roots += [expand(part) for part in env.split(os.pathsep) if part.strip()]
    dirs = [d for root in roots for d in (root, root / name)]
    dirs.append(user_cache_dir() / name)
    dirs += [system / name for system in SYSTEM_DATA_DIRS]
    return list(dict.fromkeys(dirs))  # drop duplicates, keep order


def find_in(directory: Path, filename: str) -> Path | None:
    """directory/filename, or its uncompressed twin when filename ends in .gz; None if absent."""
    candidates = [filename] + ([filename[:-3]] if filename.endswith(".gz") else [])
    for candidate in candidates:
        path = directory / candidate
        if path.is_file():
            return path
    return None


def locate(name: str, filenames: Sequence[str], data_dir: str | None) -> list[Path] | None:
    """Paths of all filenames from the first search folder that holds every one, else None."""
    for directory in search_dirs(name, data_dir):
        found = [find_in(directory, f) for f in filenames]
        if all(p is not None for p in found):
            return [p for p in found if p is not None]
    return None


def source_path(kind: str, text: str) -> Path:
    """The PATH of a 'kind:PATH' source, expanded; a clear error when it is empty."""
    if not text.strip():
        raise GanforgeError(
            f"data.source '{kind}:' needs a path after the colon, e.g. {kind}:~/data/faces."
        )
    return expand(text.strip())
