"""Test-wide fixtures: no test reads or writes the user's real ganforge cache."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Point XDG_CACHE_HOME at a per-session temp dir (decode caches, reference statistics)."""
    patcher = pytest.MonkeyPatch()
    patcher.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    patcher.delenv("GANFORGE_DATA", raising=False)
    yield
    patcher.undo()
