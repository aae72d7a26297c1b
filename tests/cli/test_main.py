"""The spkid command as a user runs it: real processes, real files, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest


def spkid(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "keras_spkid.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


def test_catalogue_summary_and_recording_split(tmp_path, shared_data):
    out = tmp_path / "MANIFEST.tsv"
    result = spkid(
        "catalogue",
        "--corpus",
        "wuw_corpus_ii",
        "--split-by",
        "recording",
        "--fractions",
        "train=0.5,test=0.5",
        "--output",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "train: 215 speakers" in result.stdout and "test: 36 speakers" in result.stdout
    header, first = out.read_text().splitlines()[:2]
    assert header == "speaker\tpath\trecording\tseconds\tsplit"
    assert first.split("\t")[-1] in ("train", "test")


@pytest.mark.slow
def test_features_then_episodes(tmp_path, wuw):
    speakers = [s for s, utts in wuw.by_speaker().items() if len(utts) >= 20][:6]
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(
        "speaker\tpath\n"
        + "".join(f"{u.speaker}\t{u.path}\n" for s in speakers for u in wuw.by_speaker()[s])
    )
    common = [
        "--manifest",
        manifest,
        "--root",
        wuw.root,
        "--cache",
        tmp_path / "cache",
        "--n-mels",
        "40",
    ]
    result = spkid("features", *common, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "0 failures" in result.stdout
    result = spkid(
        "episodes",
        *common,
        "--num_way",
        "5",
        "--num_support",
        "5",
        "--num_query",
        "15",
        "--query_frames",
        "100",
        "200",
        "--count",
        "8",
    )
    assert result.returncode == 0, result.stderr
    assert "support [4, 25, 200, 40]" in result.stdout
    assert "8 episodes in" in result.stdout


def test_malformed_manifest_line_is_one_clear_error(tmp_path):
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text("speaker\tpath\nalice\ta/1.wav\nbob b/1.wav\n")
    result = spkid("features", "--manifest", manifest, "--cache", tmp_path / "cache")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "MANIFEST.tsv:3: malformed line" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_too_many_ways_is_an_error_before_work(tmp_path, wuw):
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(
        "speaker\tpath\n" + "".join(f"{u.speaker}\t{u.path}\n" for u in wuw.utterances[:40])
    )
    result = spkid(
        "episodes",
        "--manifest",
        manifest,
        "--root",
        wuw.root,
        "--cache",
        tmp_path / "cache",
        "--num_way",
        "50",
        "--quiet",
    )
    assert result.returncode == 2
    assert "need 50 speakers with at least 10 clips" in result.stderr
    assert not (tmp_path / "cache").exists()  # refused before computing any feature


@pytest.mark.parametrize(
    "args, flag",
    [(["features"], "--corpus"), (["episodes", "--corpus", "x", "--num_way", "0"], "--num-way")],
)
def test_argument_errors_are_one_line(args, flag):
    result = spkid(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert flag in result.stderr and "--help" in result.stderr


def test_missing_corpus_names_the_fix(tmp_path):
    import os

    result = spkid(
        "catalogue", "--corpus", "wuw_corpus_ii", env=dict(os.environ, SPKID_DATA=str(tmp_path))
    )
    assert result.returncode == 2
    assert "corpus 'wuw_corpus_ii' not found; set SPKID_DATA" in result.stderr
