"""Few-shot evaluator on embeddings of known structure, and the 95% CI."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.data.catalogue import Catalogue, Utterance
from keras_spkid.data.episodes import EpisodeSpec
from keras_spkid.data.store import UtteranceStore
from keras_spkid.evaluation.fewshot import FewShotEvaluator, mean_ci95


def _store(n_speakers=10, clips=8, dim=16, seed=0):
    """Every frame of a speaker's clips is that speaker's one-hot code plus small noise."""
    rng = np.random.default_rng(seed)
    utterances, arrays = [], {}
    for s in range(n_speakers):
        for c in range(clips):
            path = f"s{s}/c{c}.wav"
            utterances.append(Utterance(path, f"s{s}", path))
            frames = np.zeros((50, dim), np.float32)
            frames[:, s] = 1.0
            arrays[path] = frames + 0.05 * rng.normal(size=frames.shape).astype(np.float32)
    return UtteranceStore.from_arrays(Catalogue(".", utterances), arrays)


def _mean_encoder(features, training=False):
    return tf.reduce_mean(features, axis=1)


def _random_encoder(features, training=False):
    return tf.random.normal([tf.shape(features)[0], 8])


def test_separable_embeddings_give_100_percent():
    evaluator = FewShotEvaluator(_store(), EpisodeSpec(5, 1, 3, 20, 20), 50, seed=0)
    result = evaluator(_mean_encoder)
    assert result.mean == 1.0 and result.ci95 == 0.0 and result.episodes == 50


@pytest.mark.parametrize("n_way", [2, 5])
def test_random_embeddings_give_chance_within_the_ci(n_way):
    tf.random.set_seed(0)
    result = FewShotEvaluator(
        _store(), EpisodeSpec(n_way, 2, 5, 20, 20), 300, seed=1, distance="squared_euclidean"
    )(_random_encoder)
    assert abs(result.mean - 1 / n_way) <= max(result.ci95, 1e-9) * 1.5
    assert 0 < result.ci95 < 0.1


def test_ci95_is_computed_over_episodes():
    values = [0.5, 0.7, 0.9, 0.6]
    result = mean_ci95(values)
    assert result.mean == pytest.approx(0.675)
    assert result.ci95 == pytest.approx(1.96 * np.std(values, ddof=1) / 2)
    with pytest.raises(ValueError):
        mean_ci95([])


# ----- the table evaluator on precomputed embeddings -----
from keras_spkid.errors import DataError  # noqa: E402
from keras_spkid.evaluation.fewshot import embedding_episode_accuracies  # noqa: E402


def _clustered(n_speakers=12, clips=20, dim=32, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_speakers, dim))
    speakers = np.repeat([f"s{i}" for i in range(n_speakers)], clips)
    emb = np.repeat(centres, clips, axis=0) + noise * rng.normal(size=(n_speakers * clips, dim))
    return emb.astype(np.float32), speakers


def test_table_evaluator_separable_is_100_percent():
    emb, speakers = _clustered(noise=0.01)
    acc = embedding_episode_accuracies(emb, emb, speakers, 10, 5, 15, 200, seed=1)
    assert acc.shape == (200,) and acc.min() == 1.0


def test_table_evaluator_random_is_chance_within_ci():
    rng = np.random.default_rng(3)
    speakers = np.repeat([f"s{i}" for i in range(20)], 20)
    emb = rng.normal(size=(len(speakers), 32)).astype(np.float32)
    for way in (3, 5, 10):
        ci = mean_ci95(embedding_episode_accuracies(emb, emb, speakers, way, 5, 15, 1000, seed=way))
        assert abs(ci.mean - 1 / way) <= 2 * ci.ci95, (way, ci)


def test_table_evaluator_uses_query_rows_for_queries():
    """Support rows separable, query rows random: accuracy must drop to about chance.

    (The same few query rows recur across episodes, so episodes are correlated and the
    CI is too narrow to test against; a loose bound far below 100% is what matters.)
    """
    emb, speakers = _clustered(noise=0.01)
    noise = np.random.default_rng(0).normal(size=emb.shape).astype(np.float32)
    ci = mean_ci95(embedding_episode_accuracies(emb, noise, speakers, 5, 5, 15, 500, seed=0))
    assert 0.1 < ci.mean < 0.3


def test_table_evaluator_is_seeded_and_checks_eligibility():
    emb, speakers = _clustered(noise=2.0)
    a = embedding_episode_accuracies(emb, emb, speakers, 5, 1, 5, 50, seed=7)
    b = embedding_episode_accuracies(emb, emb, speakers, 5, 1, 5, 50, seed=7)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="only 0 have them"):
        embedding_episode_accuracies(emb, emb, speakers, 5, 10, 15, 5)
