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
    result = FewShotEvaluator(_store(), EpisodeSpec(n_way, 2, 5, 20, 20), 300, seed=1,
                              distance="squared_euclidean")(_random_encoder)
    assert abs(result.mean - 1 / n_way) <= max(result.ci95, 1e-9) * 1.5
    assert 0 < result.ci95 < 0.1


def test_ci95_is_computed_over_episodes():
    values = [0.5, 0.7, 0.9, 0.6]
    result = mean_ci95(values)
    assert result.mean == pytest.approx(0.675)
    assert result.ci95 == pytest.approx(1.96 * np.std(values, ddof=1) / 2)
    with pytest.raises(ValueError):
        mean_ci95([])
