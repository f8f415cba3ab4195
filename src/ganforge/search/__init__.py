"""Hyperparameter search with Optuna: a space file over config keys, a study in SQLite."""

from ganforge.errors import GanforgeError

try:
    import optuna  # noqa: F401
except ImportError:
    raise GanforgeError(
        "ganforge search needs Optuna: pip install 'ganforge[search]' (or pip install optuna)."
    ) from None

from ganforge.search.space import read_space
from ganforge.search.study import SearchResult, format_table, search

__all__ = ["SearchResult", "format_table", "read_space", "search"]
