"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_voxceleb_tree(voxceleb_meta, tmp_path):
    """A VoxCeleb1-test-layout tree of 8 synthetic speakers (2 videos, 3 clips each at most)."""
    from tests.fixtures.voxceleb_tree import make_voxceleb_tree

    return make_voxceleb_tree(
        voxceleb_meta / "vox1_tst_duration.txt.gz",
        tmp_path / "vox",
        n_speakers=8,
        max_videos=2,
        max_utts_per_video=3,
    )
