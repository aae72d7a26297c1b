"""``spkid eval table`` end to end on a reduced setting, and few-shot on segments.

8 test speakers per corpus and 50 episodes per cell (the real table: every test
speaker, 1,000 episodes); fsdd is left out here (3,000 clips).
"""

from __future__ import annotations

import json
import logging

import pytest

from keras_spkid.cli.main import main as spkid


@pytest.fixture(scope="module")
def baseline_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("xdg_cache")
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def table(tmp_path_factory, shared_data, baseline_cache):
    out = tmp_path_factory.mktemp("table")
    assert (
        spkid(
            [
                "eval",
                "table",
                "--model",
                "conv6",
                "--out",
                str(out),
                "--episodes",
                "50",
                "--max_speakers",
                "8",
                "--corpora",
                "wuw_corpus_ii",
                "librispeech_1utt",
                "--quiet",
            ]
        )
        == 0
    )
    return out


def test_table_has_both_models_side_by_side(table, baseline_cache):
    data = json.loads((table / "table.json").read_text())
    assert data["models"]["model"]["path"].endswith("pretrained/conv6/model.keras")
    baseline = data["models"]["baseline"]
    assert baseline["path"].startswith(str(baseline_cache)) and baseline["dim"] == 40
    assert all(len(m["sha256"]) == 12 for m in data["models"].values())
    assert "--max-speakers 8" in data["command"] and data["machine"]["cpus"] >= 1
    cells = {(r["corpus"], r["way"], r["shot"]): r for r in data["fewshot"]}
    assert set(cells) == {(c, 5, s) for c in ("wuw_corpus_ii", "librispeech_1utt") for s in (1, 5)}
    wuw = cells[("wuw_corpus_ii", 5, 1)]
    assert wuw["queries"] == 5 and wuw["speakers"] == 8 and wuw["model"]["episodes"] == 50
    for key in ("model", "baseline"):
        assert wuw[key]["mean"] > 0.6, f"{key}: chance is 0.2"
    assert wuw["difference"]["mean"] == pytest.approx(
        wuw["model"]["mean"] - wuw["baseline"]["mean"]
    )
    # 8 LibriSpeech speakers, 2 s segments: too few have 6 segments for 5 shots + 1 query
    assert "need 5 speakers with 6 clips" in cells[("librispeech_1utt", 5, 5)]["note"]
    assert cells[("librispeech_1utt", 5, 1)]["baseline"]["mean"] > 0.4
    corpora = {c["corpus"]: c for c in data["corpora"]}
    assert corpora["librispeech_1utt"]["item"] == "2 s segments"
    assert corpora["librispeech_1utt"]["items"] > corpora["librispeech_1utt"]["clips"] == 8
    rows = {r["trials"]: r for r in data["verification"]}
    assert rows["all"]["targets"] > 100 and rows["all"]["nontargets"] == 10 * rows["all"]["targets"]
    assert 0 < rows["all"]["model"]["eer"] < 0.5 and 0 < rows["all"]["baseline"]["eer"] < 0.5
    assert (table / rows["all"]["file"]).is_file()
    assert "no target trial" in rows["cross_session"]["note"]  # the 8 speakers called once
    markdown = (table / "table.md").read_text()
    assert "| wuw_corpus_ii | 5 | 5 | 5 | 8 |" in markdown and "baseline: `" in markdown


def test_a_second_run_reuses_the_embeddings(table, caplog):
    caplog.set_level(logging.INFO, "keras_spkid")
    assert (
        spkid(
            [
                "eval",
                "table",
                "--model",
                "conv6",
                "--out",
                str(table),
                "--episodes",
                "10",
                "--max_speakers",
                "8",
                "--corpora",
                "wuw_corpus_ii",
                "--ways",
                "5",
                "--shots",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert caplog.text.count("reusing") == 2  # one file per model


def test_fewshot_on_segments(tmp_path, shared_data, baseline_cache, capsys):
    command = [
        "eval",
        "fewshot",
        "--corpus",
        "librispeech_1utt",
        "--split",
        "test",
        "--model",
        "mfcc_stats",
        "--segment_seconds",
        "2",
        "--ways",
        "5",
        "--shots",
        "1",
        "--queries",
        "1",
        "--episodes",
        "50",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert spkid(command + ["--query", "full", "1"]) == 0
    data = json.loads((tmp_path / "fewshot.json").read_text())
    assert data["segment_seconds"] == 2.0 and len(data["rows"]) == 2
    assert all(r["mean"] > 0.3 for r in data["rows"])
    assert "2 s segments of each clip" in (tmp_path / "fewshot.md").read_text()
    assert spkid(command + ["--query", "3"]) == 2
    assert "cannot be longer than the 2 s segments" in capsys.readouterr().err
