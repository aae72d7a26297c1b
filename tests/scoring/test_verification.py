"""EER / minDCF / thresholds on hand-computed cases and against scikit-learn's ROC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from keras_spkid.data.voxceleb import read_trials
from keras_spkid.scoring.verification import (
    equal_error_rate,
    error_rates,
    min_dcf,
    threshold_at_far,
)


def test_hand_computed_case():
    # targets 0.9 0.8 0.4, non-targets 0.7 0.3 0.2 0.1
    scores = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1]
    labels = [1, 1, 1, 0, 0, 0, 0]
    rates = error_rates(scores, labels)
    # threshold 0.4 accepts 0.9, 0.8, 0.7, 0.4: no miss, one false alarm in four.
    i = list(rates.thresholds).index(0.4)
    assert rates.miss[i] == 0 and rates.false_alarm[i] == 0.25
    # threshold 0.7: miss 1/3 (0.4), false alarm 1/4 (0.7).
    j = list(rates.thresholds).index(0.7)
    assert rates.miss[j] == pytest.approx(1 / 3) and rates.false_alarm[j] == 0.25
    eer, threshold = equal_error_rate(scores, labels)
    # Between (miss 0, fa 1/4) at 0.4 and (1/3, 1/4) at 0.7 the rates cross at 1/4.
    assert eer == pytest.approx(0.25) and threshold == 0.7
    # p=0.5: cost = (miss + fa)/2 / 0.5 -> min at threshold 0.4 or 0.8 (0.25 each).
    dcf, _ = min_dcf(scores, labels, p_target=0.5)
    assert dcf == pytest.approx(0.25)
    assert threshold_at_far(scores, labels, 0.0) == 0.8
    assert threshold_at_far(scores, labels, 0.25) == 0.4


def test_perfect_and_inverted_scores():
    labels = np.array([1, 1, 0, 0])
    assert equal_error_rate([0.9, 0.8, 0.2, 0.1], labels)[0] == 0.0
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], labels)[0] == 1.0
    assert min_dcf([0.9, 0.8, 0.2, 0.1], labels, 0.01)[0] == 0.0


def test_ties_share_one_threshold():
    rates = error_rates([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])
    assert list(rates.thresholds) == [0.5, np.inf]
    assert list(rates.miss) == [0.0, 1.0] and list(rates.false_alarm) == [1.0, 0.0]
    assert equal_error_rate([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scikit_learn_roc(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 2000)
    scores = np.round(rng.normal(labels * 1.5, 1.0), 2)  # rounding makes ties
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    rates = error_rates(scores, labels)
    for t, f, p in zip(thresholds[1:], fpr[1:], tpr[1:]):  # sklearn's first is +inf
        k = int(np.flatnonzero(rates.thresholds == t)[0])
        assert rates.false_alarm[k] == pytest.approx(f)
        assert rates.miss[k] == pytest.approx(1 - p)
    fnr = 1 - tpr
    closest = np.argmin(np.abs(fnr - fpr))
    eer, _ = equal_error_rate(scores, labels)
    low, high = sorted((fnr[closest], fpr[closest]))
    assert low - 1e-3 <= eer <= high + 1e-3  # within the step around the crossing
    dcf = np.min(0.05 * fnr + 0.95 * fpr) / 0.05
    assert min_dcf(scores, labels, 0.05)[0] == pytest.approx(dcf)


def test_real_voxceleb_trial_labels_with_chance_scores(voxceleb_meta):
    trials = read_trials(voxceleb_meta / "veri_test.txt")
    scores = np.random.default_rng(0).normal(size=len(trials))
    eer, _ = equal_error_rate(scores, trials.labels)
    assert 0.48 < eer < 0.52  # random scores on 37,720 balanced trials


def test_bad_input():
    with pytest.raises(ValueError, match="both target"):
        equal_error_rate([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0"):
        equal_error_rate([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        equal_error_rate([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="p_target"):
        min_dcf([0.1, 0.2], [1, 0], p_target=1.5)
