"""Threshold calibration: EER point and target false-accept rate, checked against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from keras_spkid.errors import DataError
from keras_spkid.scoring.calibration import (
    Calibration,
    all_pair_trials,
    calibrate,
    calibrate_balanced,
)


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


def test_all_pair_trials_scores_every_pair_once():
    embeddings = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)
    scores, labels = all_pair_trials(embeddings, ["a", "a", "b"])
    np.testing.assert_allclose(scores, [0.6, 0.0, 0.8])  # pairs (0,1), (0,2), (1,2)
    np.testing.assert_array_equal(labels, [1, 0, 0])


def _group(rng, target_mean, nontarget_mean, targets, nontargets):
    scores = np.concatenate(
        [rng.normal(target_mean, 0.05, targets), rng.normal(nontarget_mean, 0.05, nontargets)]
    )
    return scores, np.r_[np.ones(targets, np.int8), np.zeros(nontargets, np.int8)]


def test_balanced_threshold_serves_every_group_not_the_largest():
    """A big easy-to-accept group must not pull the threshold away from a small one."""
    rng = np.random.default_rng(0)
    groups = {
        "phone": _group(rng, 0.72, 0.48, 2000, 80000),  # own EER point 0.60
        "studio": _group(rng, 0.88, 0.66, 300, 5000),
    }  # own EER point 0.77
    calibration, per_group = calibrate_balanced(groups)
    assert 0.65 < calibration.threshold < 0.72
    assert calibration.num_target == 600 and calibration.num_nontarget == 10000
    assert per_group["studio"]["targets"] == 300 and per_group["phone"]["nontargets"] == 80000
    for group in per_group.values():
        assert group["false_accept"] < 0.35 and group["false_reject"] < 0.35
    pooled = calibrate(
        np.concatenate([g[0] for g in groups.values()]),
        np.concatenate([g[1] for g in groups.values()]),
    )
    studio_scores, studio_labels = groups["studio"]
    pooled_far = np.mean(studio_scores[studio_labels == 0] >= pooled.threshold)
    assert pooled_far > 1.5 * per_group["studio"]["false_accept"]  # the phone group dominates


def test_balanced_needs_both_kinds_of_trial():
    with pytest.raises(DataError, match="solo: needs both"):
        calibrate_balanced({"solo": (np.array([0.9, 0.8]), np.array([1, 1]))})
