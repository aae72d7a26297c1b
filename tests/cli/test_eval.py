"""spkid eval, extract_embeds and closest_celeb end to end on the WUW test speakers.

The embeddings of the 365 test clips (35 speakers, never seen in training) are made
once with the built-in model by the first command and reused by the others, as users
do with ``--out``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_spkid.cli.main import main as spkid
from keras_spkid.inference.embedding_set import EmbeddingSet

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def out(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("eval")
    assert (
        spkid(
            [
                "eval",
                "fewshot",
                "--model",
                "conv6",  # the CLI's work, with a model that embeds 8x faster than CAM++
                "--corpus",
                "wuw_corpus_ii",
                "--split",
                "test",
                "--ways",
                "5",
                "10",
                "--shots",
                "1",
                "5",
                "--queries",
                "5",
                "--episodes",
                "300",
                "--query",
                "full",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


def _embeddings(out) -> Path:
    return next(out.glob("embeddings-*-full.npz"))


@pytest.mark.slow
def test_fewshot_table(out):
    data = json.loads((out / "fewshot.json").read_text())
    cells = {(r["query"], r["way"], r["shot"]): r for r in data["rows"]}
    assert len(cells) == 8 and data["episodes"] == 300
    full_5w5s = cells[("full", 5, 5)]
    assert full_5w5s["mean"] > 0.85 and 0 < full_5w5s["ci95"] < 0.05
    assert cells[("full", 5, 5)]["mean"] > cells[("full", 5, 1)]["mean"]  # more shots help
    assert cells[("full", 5, 1)]["mean"] > cells[("full", 10, 1)]["mean"]  # more ways hurt
    assert cells[("1 s", 5, 5)]["mean"] < full_5w5s["mean"]  # short queries are harder
    markdown = (out / "fewshot.md").read_text()
    assert "| full | 5 | 5 |" in markdown and (out / "fewshot.png").stat().st_size > 1000


def test_fewshot_cell_that_cannot_be_formed_says_why(out, capsys):
    common = ["eval", "fewshot", "--embeddings", str(_embeddings(out)), "--episodes", "10"]
    # 2 test speakers have 16 clips (1 shot + 15 queries), none has 25 (10 + 15)
    big = ["--ways", "2", "--shots", "1", "10", "--queries", "15", "--out", str(out / "big")]
    assert spkid(common + big) == 0
    rows = json.loads((out / "big" / "fewshot.json").read_text())["rows"]
    assert rows[0]["mean"] is not None
    assert rows[1]["mean"] is None and "need 2 speakers with 25 clips" in rows[1]["note"]
    capsys.readouterr()
    none = ["--ways", "5", "--shots", "10", "--queries", "15", "--out", str(out / "none")]
    assert spkid(common + none) == 2  # no cell at all: an error, not a blank table
    err = capsys.readouterr().err
    assert (
        err.startswith("error: --ways 5 --shots 10 --queries 15: no cell") and err.count("\n") == 1
    )


def test_trials_verify_and_calibration(out, shared_data):
    trials = out / "trials.txt"
    assert (
        spkid(
            [
                "eval",
                "trials",
                "--corpus",
                "wuw_corpus_ii",
                "--split",
                "test",
                "--same_recording",
                "--output",
                str(trials),
            ]
        )
        == 0
    )
    cohort = out / "cohort.npz"
    full = EmbeddingSet.load(_embeddings(out))
    full.select(np.arange(0, len(full), 2)).save(cohort)  # any speakers work as a cohort here
    assert (
        spkid(
            [
                "eval",
                "verify",
                "--model",
                "conv6",
                "--trials",
                str(trials),
                "--corpus",
                "wuw_corpus_ii",
                "--cohort",
                str(cohort),
                "--calibrate",
                "far",
                "--far",
                "0.05",
                "--out",
                str(out / "verify"),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "verify" / "verify.json").read_text())
    cosine = report["results"]["cosine"]
    assert 0 < cosine["eer"] < 0.3 and 0 < cosine["min_dcf_0.01"] <= 1.0
    assert "asnorm" in report["results"]
    calibration = json.loads((out / "verify" / "calibration.json").read_text())
    assert calibration["score"] == "asnorm" and calibration["false_accept"] <= 0.05
    assert (out / "verify" / "verify.png").stat().st_size > 1000


def test_identify_and_knn(out):
    for command in ("identify", "knn"):
        assert (
            spkid(["eval", command, "--embeddings", str(_embeddings(out)), "--out", str(out)]) == 0
        )
        result = json.loads((out / f"{command}.json").read_text())
        assert result["top1"] > 1 / result["num_speakers"] * 3 and result["top5"] >= result["top1"]


@pytest.mark.slow
def test_gallery_round_trip_on_real_clips(out, tmp_path):
    """Enrol 3 clips per test speaker, query the others: the right speaker mostly comes first."""
    full = EmbeddingSet.load(_embeddings(out))
    rng = np.random.default_rng(0)
    enrol, queries = [], []
    for speaker in np.unique(full.speakers):
        rows = rng.permutation(np.flatnonzero(full.speakers == speaker))
        enrol += list(rows[:3])
        queries += list(rows[3:5])
    full.select(enrol).save(tmp_path / "enrol.npz")
    names = tmp_path / "names.txt"
    names.write_text("".join(f"{s} Speaker_{s}\n" for s in np.unique(full.speakers)))
    build = [
        sys.executable,
        str(REPO / "closest_celeb.py"),
        "build",
        "--embeddings",
        str(tmp_path / "enrol.npz"),
        "--names",
        str(names),
        "--output",
        str(tmp_path / "g.npz"),
    ]
    done = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "35 speakers" in done.stdout, done.stderr
    corpus_root = _corpus_root()
    audio = [str(tmp_path / "missing.wav")] + [str(corpus_root / full.paths[q]) for q in queries]
    query = [
        sys.executable,
        str(REPO / "closest_celeb.py"),
        "query",
        "--model",
        "conv6",
        "--gallery",
        str(tmp_path / "g.npz"),
        "--audio",
        *audio,
        "--top_k",
        "3",
        "--json",
    ]
    done = subprocess.run(query, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # one file failed, the rest answered
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert "file not found" in lines[0]["error"]
    answers = lines[1:]
    assert len(answers) == len(queries) and all(len(a["matches"]) == 3 for a in answers)
    right = [
        a["matches"][0]["name"] == "Speaker " + full.speakers[q] for a, q in zip(answers, queries)
    ]
    assert np.mean(right) > 0.6, f"top-1 {np.mean(right):.2f}"
    assert all(a["decision"] in ("unknown", a["matches"][0]["name"]) for a in answers)


def _corpus_root():
    from keras_spkid.data.corpora import load_corpus

    return load_corpus("wuw_corpus_ii").root


def test_bad_inputs_are_one_line_errors(tmp_path, capsys, out):
    not_model = tmp_path / "model.keras"
    not_model.write_text("hello")
    listing = tmp_path / "l.tsv"
    listing.write_text("path\n")
    from keras_spkid.cli.embed import main as extract

    assert extract(["--manifest", str(listing), "--output", str(tmp_path / "o.npz")]) == 2
    assert "l.tsv: list has a header but no rows" in capsys.readouterr().err
    listing.write_text("path\na.wav\n")
    assert (
        extract(
            [
                "--model",
                str(not_model),
                "--manifest",
                str(listing),
                "--output",
                str(tmp_path / "o.npz"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "model.keras: not a Keras model" in err and err.count("\n") == 1
    assert spkid(["eval", "verify", "--trials", str(tmp_path / "none.txt"), "--root", "."]) == 2
    assert "none.txt" in capsys.readouterr().err


def test_voxceleb_layout_trials_crops_short_tests_and_iden_split(tmp_path, voxceleb_meta):
    """veri_test.txt and iden_split.txt of a VoxCeleb-layout tree (synthetic voices)."""
    from tests.fixtures.voxceleb_tree import make_voxceleb_tree

    tree = make_voxceleb_tree(
        voxceleb_meta / "vox1_tst_duration.txt.gz",
        tmp_path / "vox",
        n_speakers=4,
        max_videos=2,
        max_utts_per_video=3,
        max_seconds=3.0,
    )
    out = tmp_path / "out"
    assert (
        spkid(
            [
                "eval",
                "verify",
                "--model",
                "conv6",
                "--trials",
                str(tree.trials),
                "--root",
                str(tree.wav_root),
                "--crops",
                "2",
                "--test_seconds",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "verify.json").read_text())
    assert report["test"] == "test utterances cut to 1 s"
    assert 0 <= report["results"]["cosine"]["eer"] <= 1
    assert len(list(out.glob("embeddings-trials-*crop1s.npz"))) == 1
    assert len(list(out.glob("embeddings-trials-*-2crops.npz"))) == 1
    assert (
        spkid(
            [
                "eval",
                "identify",
                "--model",
                "conv6",
                "--iden-split",
                str(tree.iden_split),
                "--root",
                str(tree.wav_root),
                "--enrol_split",
                "train",
                "--test_split",
                "test",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads((out / "identify.json").read_text())
    assert result["num_test"] == sum(u.split == "test" for u in tree.utterances)
