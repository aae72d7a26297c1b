"""Open-set metrics on embeddings of known structure: separable speakers, and noise."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.errors import DataError
from keras_spkid.evaluation.openset import (
    episode_rates,
    episode_scores,
    openset_metrics,
    threshold_at_far,
    threshold_curve,
)
from keras_spkid.evaluation.openset_calibration import (
    SpeakerSet,
    calibrate_decision,
    speaker_cohort,
)
from keras_spkid.scoring.decision import OpenSetDecision


def speakers_on_directions(num_speakers=30, clips=8, dim=64, noise=0.1, seed=0):
    """Each speaker's clips scatter around their own random direction."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_speakers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    speakers = np.repeat([f"s{i:02d}" for i in range(num_speakers)], clips)
    noise = noise / np.sqrt(dim)  # noise vectors of norm about `noise`
    x = np.repeat(centres, clips, axis=0) + noise * rng.normal(size=(len(speakers), dim))
    return x, speakers


def test_separable_speakers_are_named_and_strangers_are_not():
    x, speakers = speakers_on_directions()
    scores = episode_scores(x, speakers, gallery_size=5, enrol_count=3, episodes=50)
    metrics = openset_metrics(scores, OpenSetDecision.fixed(0.7))
    assert metrics["named_right"]["mean"] == 1.0 and metrics["missed"]["mean"] == 0.0
    assert metrics["strangers_named"]["mean"] == 0.0 and metrics["named_wrong"]["mean"] == 0.0
    assert metrics["episodes"] == 50 and metrics["stranger_queries"] == 50 * 25 * 2


def test_without_a_threshold_every_stranger_is_named():
    x, speakers = speakers_on_directions()
    metrics = openset_metrics(episode_scores(x, speakers, 5, 3, episodes=20), None)
    assert metrics["strangers_named"]["mean"] == 1.0 and metrics["named_right"]["mean"] == 1.0


def test_random_embeddings_name_the_right_speaker_by_chance_only():
    rng = np.random.default_rng(1)
    speakers = np.repeat([f"s{i}" for i in range(40)], 6)
    x = rng.normal(size=(len(speakers), 32))
    scores = episode_scores(x, speakers, gallery_size=10, enrol_count=1, episodes=300)
    metrics = openset_metrics(scores, None)
    assert metrics["named_right"]["mean"] == pytest.approx(0.1, abs=0.03)
    assert metrics["named_right"]["ci95"] > 0
    # a threshold at a 5% false-alarm target names about 5% of the strangers
    threshold = threshold_at_far(scores.best[~scores.genuine], 0.05)
    named = openset_metrics(scores, OpenSetDecision.fixed(threshold))["strangers_named"]["mean"]
    assert 0.03 < named <= 0.05


def test_each_episode_splits_its_genuine_queries_into_right_wrong_and_missed():
    x, speakers = speakers_on_directions(noise=2.0, dim=16, seed=2)
    scores = episode_scores(x, speakers, 5, 1, episodes=30, seed=4)
    rates = episode_rates(scores, OpenSetDecision.fixed(0.3))
    total = rates["named_right"] + rates["named_wrong"] + rates["missed"]
    np.testing.assert_allclose(total, 1.0)
    assert 0 < rates["missed"].mean() < 1 and 0 < rates["named_wrong"].mean() < 1


def test_episodes_are_seeded():
    x, speakers = speakers_on_directions(noise=0.5)
    a = episode_scores(x, speakers, 5, 2, episodes=10, seed=3)
    b = episode_scores(x, speakers, 5, 2, episodes=10, seed=3)
    c = episode_scores(x, speakers, 5, 2, episodes=10, seed=4)
    np.testing.assert_array_equal(a.best, b.best)
    assert not np.array_equal(a.best, c.best)


def test_fillers_top_up_the_gallery_and_are_never_queried():
    x, speakers = speakers_on_directions(num_speakers=9)
    fx, fs = speakers_on_directions(num_speakers=50, seed=7)
    scores = episode_scores(x, speakers, 20, 3, episodes=5, fillers=(fx, fs))
    assert scores.fillers == 20 - 6  # a third of the 9 speakers stay strangers
    assert scores.genuine.sum() == 5 * 6 * 2 and (~scores.genuine).sum() == 5 * 3 * 2
    with pytest.raises(DataError, match="filler"):
        episode_scores(x, speakers, 20, 3, episodes=5)


def test_threshold_at_far_names_at_most_the_target():
    best = np.arange(100, dtype=float)
    threshold = threshold_at_far(best, 0.05)
    assert (best >= threshold).sum() == 5
    assert (best >= threshold_at_far(best, 0.0)).sum() == 0


def test_curve_trades_named_right_for_strangers_named():
    x, speakers = speakers_on_directions(noise=0.7)
    curve = threshold_curve(episode_scores(x, speakers, 5, 3, episodes=20))
    assert np.all(np.diff(curve["named_right"]) <= 0)
    assert np.all(np.diff(curve["strangers_named"]) <= 0)
    assert curve["strangers_named"][0] == 1.0


def test_calibrated_decision_holds_the_target_in_every_cell():
    sets = {}
    for seed in (0, 1):
        x, speakers = speakers_on_directions(num_speakers=24, noise=0.9, seed=seed)
        fx, fs = speakers_on_directions(num_speakers=40, noise=0.9, seed=10 + seed)
        sets[f"corpus{seed}"] = SpeakerSet(x, speakers, (fx, fs))
    cx, cs = speakers_on_directions(num_speakers=60, noise=0.9, seed=20)
    decision, report = calibrate_decision(
        sets, speaker_cohort(cx, cs), 0.05, (1, 5, 20), (1, 3), episodes=40
    )
    assert set(report["candidates"]) == {
        "cosine-table",
        "cosine-single",
        "asnorm-table",
        "asnorm-single",
    }
    for candidate in report["candidates"].values():
        assert candidate["max_strangers_named"] <= 0.05 + 0.02  # per-episode mean vs pooled
    table = np.asarray(decision.thresholds)
    assert report["chosen"].endswith("table")  # a table names more than its highest cell
    assert decision.measured["chosen"] == report["chosen"]
    # the best of more impostors is higher: thresholds grow with the gallery
    cosine = np.asarray(
        [[c for c in row] for row in decision.thresholds] if decision.score == "cosine" else table
    )
    assert cosine[:, -1].min() > cosine[:, 0].max() - 1e-9 or decision.score == "asnorm"
