"""Built baselines go to a temporary cache folder, never to the user's ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def baseline_cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "xdg_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder
