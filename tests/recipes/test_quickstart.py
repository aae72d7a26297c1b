"""recipes/quickstart.sh end to end on a tiny folder-per-speaker tree of real speech."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from keras_spkid.data.catalogue import read_manifest
from keras_spkid.search.gallery import Gallery

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.sh"
TINY = {
    "QUICKSTART_STEPS": "2",
    "QUICKSTART_WAY": "3",
    "QUICKSTART_SHOT": "2",
    "QUICKSTART_QUERY": "2",
    "QUICKSTART_EPISODES": "10",
    "QUICKSTART_VAL_TASKS": "4",
    "QUICKSTART_FRACTIONS": "train=0.4,dev=0.3,test=0.3",
}


def _recipe(*args, **env):
    return subprocess.run(
        ["bash", str(RECIPE), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
    )


def _tiny_tree(wuw, folder, speakers=10, clips=6):
    """``folder/<speaker>/<clip>.flac``: copies of real WUW clips (symbolic links out of a
    data root are refused as escapes)."""
    by_speaker = defaultdict(list)
    for utt in wuw:
        by_speaker[utt.speaker].append(utt)
    chosen = [s for s, utts in by_speaker.items() if len(utts) >= clips][:speakers]
    for speaker in chosen:
        (folder / speaker).mkdir(parents=True)
        for utt in by_speaker[speaker][:clips]:
            shutil.copyfile(wuw.abspath(utt), folder / utt.path)
    return chosen


@pytest.mark.slow
def test_quickstart_on_a_tiny_folder_tree(wuw, tmp_path):
    tree, out = tmp_path / "tree", tmp_path / "out"
    speakers = _tiny_tree(wuw, tree)
    result = _recipe(tree, out, **TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (tree / "MANIFEST.tsv").exists()  # nothing written into the data folder

    parts = defaultdict(set)
    for utt in read_manifest(out / "data" / "MANIFEST.tsv"):
        parts[utt.split].add(utt.speaker)
    assert {k: len(v) for k, v in parts.items()} == {"train": 4, "dev": 3, "test": 3}
    assert set().union(*parts.values()) == set(speakers)
    assert (out / "protonet" / "best" / "model.keras").is_file()

    table = json.loads((out / "eval" / "fewshot.json").read_text())
    assert [(r["way"], r["shot"]) for r in table["rows"]] == [(3, 1), (3, 2)]
    assert all(0 <= r["mean"] <= 1 and r["episodes"] == 10 for r in table["rows"])
    assert "| full | 3 | 2 |" in (out / "eval" / "fewshot.md").read_text()

    gallery = Gallery.load(out / "gallery.npz")
    assert sorted(gallery.speakers) == sorted(parts["test"])
    answers = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert len(answers) == 3  # one held-out clip per test speaker
    for answer in answers:
        assert Path(answer["audio"]).parent.name in parts["test"]
        assert answer["decision"] in set(gallery.names) | {"unknown"}
        assert len(answer["matches"]) == 3
    assert f"queries:         {out}/queries.jsonl" in result.stdout


def test_missing_data_folder_is_one_line_naming_it(tmp_path):
    result = _recipe(tmp_path / "nowhere", tmp_path / "out")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'nowhere'}: no such folder")
    assert "SPKID_DATA" in result.stderr and not (tmp_path / "out").exists()
    result = _recipe(SPKID_DATA=str(tmp_path / "empty"))  # default: $SPKID_DATA/wuw_corpus_ii
    assert result.returncode == 2
    assert f"{tmp_path / 'empty' / 'wuw_corpus_ii'}: no such folder" in result.stderr
