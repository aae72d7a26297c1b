"""``spkid eval calibrate``: one threshold from the dev speakers of two corpora."""

from __future__ import annotations

import json

import pytest

from keras_spkid.cli.main import main as spkid
from keras_spkid.scoring.calibration import Calibration


@pytest.mark.slow
def test_calibrates_on_both_corpora_and_ships_the_threshold(shared_data, tmp_path):
    target = tmp_path / "model" / "calibration.json"
    assert (
        spkid(
            [
                "eval",
                "calibrate",
                "--model",
                "conv6",  # the command's work; conv6 embeds the dev sets 8x faster than CAM++
                "--out",
                str(tmp_path / "out"),
                "--quiet",
                "--save_calibration",
                str(target),
            ]
        )
        == 0
    )
    calibration = Calibration.load(target)
    report = json.loads((tmp_path / "out" / "calibration.json").read_text())
    corpora = report["corpora"]
    assert set(corpora) == {"wuw_corpus_ii", "librispeech_1utt"}
    # librispeech_1utt has one clip per dev speaker: only segments give target trials
    assert corpora["librispeech_1utt"]["targets"] > 100
    smallest = min(c["targets"] for c in corpora.values())
    assert calibration.num_target == 2 * smallest
    assert 0.0 < calibration.threshold < 1.0 and calibration.eer < 0.4
    for rates in corpora.values():  # the shared threshold still works for each corpus
        assert rates["false_accept"] < 0.4 and rates["false_reject"] < 0.4
    assert "threshold" in (tmp_path / "out" / "calibration.md").read_text()
