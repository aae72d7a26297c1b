"""A tiny real-speech corpus (WUW Corpus II clips) with train/dev/test splits."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, wuw):
    """MANIFEST.tsv of 9 real speakers x 10 clips: 3 train, 3 dev, 3 test speakers.

    The clips are copied (symbolic links out of a data root are refused as escapes).
    """
    speakers = [s for s, utts in wuw.by_speaker().items() if len(utts) >= 10][:9]
    folder = tmp_path_factory.mktemp("tiny")
    lines = ["speaker\tpath\tsplit"]
    for i, speaker in enumerate(speakers):
        split = ("train", "dev", "test")[i // 3]
        for u in wuw.by_speaker()[speaker][:10]:
            (folder / "audio" / u.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wuw.abspath(u), folder / "audio" / u.path)
            lines.append(f"{speaker}\taudio/{u.path}\t{split}")
    manifest = folder / "MANIFEST.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")
