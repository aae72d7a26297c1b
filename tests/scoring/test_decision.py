"""The one open-set decision rule: thresholds by gallery size and clips, and naming."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.errors import DataError
from keras_spkid.scoring.decision import (
    OpenSetDecision,
    decide,
    decision_scores,
    name_best,
)

TABLE = OpenSetDecision(((0.5, 0.6, 0.7), (0.6, 0.7, 0.8)), (1, 10, 100), (1, 4))


def test_thresholds_are_read_between_and_beyond_the_grid():
    assert TABLE.threshold_for(10, 1) == pytest.approx(0.6)
    assert TABLE.threshold_for(10, 4) == pytest.approx(0.7)
    assert TABLE.threshold_for(10, 2) == pytest.approx(0.65)  # half way in log K
    assert TABLE.threshold_for(1000, 1) == pytest.approx(0.8)  # along the last segment
    assert TABLE.threshold_for(10, 50) == pytest.approx(0.7)  # clamped in K
    np.testing.assert_allclose(TABLE.threshold_for(10, np.array([1, 4])), [0.6, 0.7])
    assert OpenSetDecision.fixed(0.3).threshold_for(500, 7) == pytest.approx(0.3)


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="thresholds must be"):
        OpenSetDecision(((0.5, 0.6),), (1, 10, 100), (1,))
    with pytest.raises(ValueError, match="increasing"):
        OpenSetDecision(((0.5, 0.6),), (10, 1), (1,))
    with pytest.raises(DataError, match="not an open-set decision"):
        OpenSetDecision.from_dict({"score": "cosine"})


def test_round_trip():
    again = OpenSetDecision.from_dict(TABLE.to_dict())
    assert again == TABLE and again.threshold_for(30, 3) == TABLE.threshold_for(30, 3)


def test_decide_names_the_best_only_above_its_threshold():
    scores = np.array([[0.2, 0.75], [0.65, 0.1]])
    result = decide(scores, counts=[1, 4], decision=TABLE)  # gallery of 2
    assert result.best.tolist() == [1, 0]
    # speaker 1 has 4 clips (stricter threshold), speaker 0 has 1
    assert result.threshold[0] > result.threshold[1]
    assert result.known.tolist() == [True, True]
    assert decide(scores * 0.5, [1, 4], TABLE).known.tolist() == [False, False]
    assert decide(scores * 0.5, [1, 4], None).known.all()
    threshold, known = name_best([0.9], [1], 2, TABLE)
    assert known.tolist() == [True] and threshold[0] == pytest.approx(TABLE.threshold_for(2, 1))


def test_asnorm_scores_need_a_cohort():
    decision = OpenSetDecision.fixed(1.0, score="asnorm")
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(2, 8)), rng.normal(size=(3, 8))
    with pytest.raises(DataError, match="cohort"):
        decision_scores(q, g, decision)
    scores = decision_scores(q, g, decision, cohort=rng.normal(size=(20, 8)))
    assert scores.shape == (2, 3)
    cosine = decision_scores(q, g, None)
    assert np.argmax(cosine, 1).shape == (2,) and not np.allclose(scores, cosine)
