"""Threshold calibration: EER point and target false-accept rate, checked against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from keras_spkid.errors import DataError
from keras_spkid.scoring.calibration import Calibration, calibrate


def _trials(seed=0, n=2000):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.normal(labels * 1.5, 1.0)
    return scores, labels


def test_far_threshold_meets_the_target_on_the_trials():
    scores, labels = _trials()
    cal = calibrate(scores, labels, "far", far=0.01)
    nontarget = scores[labels == 0]
    assert np.mean(nontarget >= cal.threshold) <= 0.01
    assert cal.false_accept == pytest.approx(np.mean(nontarget >= cal.threshold))
    assert cal.false_reject == pytest.approx(np.mean(scores[labels == 1] < cal.threshold))
    # the lowest such threshold: sklearn's ROC point with the largest fpr <= 1%
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert cal.threshold == pytest.approx(thresholds[np.flatnonzero(fpr <= 0.01)[-1]])


def test_eer_threshold_balances_errors():
    scores, labels = _trials(seed=1)
    cal = calibrate(scores, labels, "eer")
    assert abs(cal.false_accept - cal.false_reject) < 0.01
    assert cal.eer == pytest.approx((cal.false_accept + cal.false_reject) / 2, abs=0.01)
    assert cal.num_target + cal.num_nontarget == scores.size


def test_save_load_round_trip_and_bad_file(tmp_path):
    scores, labels = _trials()
    cal = calibrate(scores, labels, "far", far=0.05, trials="dev.txt")
    cal.save(tmp_path / "calibration.json")
    assert Calibration.load(tmp_path / "calibration.json") == cal
    assert "5%" in cal.describe()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not a calibration file"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(ValueError):
        calibrate(scores, labels, "median")
