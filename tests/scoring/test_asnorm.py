"""AS-Norm against hand-computed values, and its effect on speaker-dependent score offsets."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.scoring.asnorm import ASNorm


def test_stats_match_hand_computation():
    cohort = np.array([[1, 0], [0, 1], [-1, 0], [0.6, 0.8]], np.float32)
    norm = ASNorm(cohort, top_k=2)
    mean, std = norm.stats(np.array([[1, 0]], np.float32))
    # cosines with the cohort: 1, 0, -1, 0.6 -> top-2 = (1, 0.6)
    assert mean[0] == pytest.approx(0.8)
    assert std[0] == pytest.approx(0.2)


def test_normalize_formula():
    norm = ASNorm(np.eye(3, dtype=np.float32), top_k=2)
    s = norm.normalize(
        np.array([0.5]), (np.array([0.1]), np.array([0.2])), (np.array([0.3]), np.array([0.1]))
    )
    assert s[0] == pytest.approx(0.5 * ((0.5 - 0.1) / 0.2 + (0.5 - 0.3) / 0.1))


def test_asnorm_removes_a_per_speaker_offset():
    """Speakers close to the cohort get high raw impostor scores; AS-Norm evens them out."""
    rng = np.random.default_rng(0)
    dim = 64
    hub = rng.normal(size=dim)
    cohort = hub + rng.normal(size=(300, dim))  # a crowd near the hub
    far_speaker = rng.normal(size=dim) * 3
    near_speaker = hub + 0.3 * rng.normal(size=dim)
    impostors = hub + rng.normal(size=(200, dim))
    norm = ASNorm(cohort, top_k=50)

    def nontarget_scores(speaker):
        e = speaker / np.linalg.norm(speaker)
        t = impostors / np.linalg.norm(impostors, axis=1, keepdims=True)
        raw = t @ e
        return raw, norm.normalize(raw, norm.stats(e[None]), norm.stats(t))

    raw_far, norm_far = nontarget_scores(far_speaker)
    raw_near, norm_near = nontarget_scores(near_speaker)
    raw_gap = abs(raw_near.mean() - raw_far.mean()) / raw_far.std()
    norm_gap = abs(norm_near.mean() - norm_far.mean()) / norm_far.std()
    assert norm_gap < raw_gap / 2


def test_rejects_tiny_cohort():
    with pytest.raises(ValueError):
        ASNorm(np.ones((1, 4)))
