"""Closed-set identification and kNN on embeddings, split by recording."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.errors import DataError
from keras_spkid.evaluation.identification import (
    closed_set_identification,
    knn_identification,
    recording_disjoint_split,
)
from keras_spkid.inference.embedding_set import EmbeddingSet


def _set(noise, seed=0, n_speakers=8, recordings=3, clips=4, dim=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_speakers, dim))
    paths, speakers, emb = [], [], []
    for s in range(n_speakers):
        for r in range(recordings):
            for c in range(clips):
                paths.append(f"id{s:05d}/video{r:07d}x/{c:05d}.wav")
                speakers.append(f"id{s:05d}")
                emb.append(centres[s] + noise * rng.normal(size=dim))
    return EmbeddingSet(paths, np.asarray(emb), speakers)


def test_split_keeps_recordings_apart():
    data = _set(0.1)
    enrol, test = recording_disjoint_split(data, 0.5, seed=0)
    rec = data.recordings()
    assert set(rec[enrol]).isdisjoint(rec[test])
    assert set(data.speakers[test]) <= set(data.speakers[enrol])
    single = EmbeddingSet(["a/v1/1.wav", "a/v1/2.wav"], np.eye(2), ["a", "a"])
    with pytest.raises(DataError, match="no speaker has two recordings"):
        recording_disjoint_split(single)


def test_separable_is_perfect_and_random_is_chance():
    data = _set(0.05)
    enrol, test = recording_disjoint_split(data)
    result = closed_set_identification(data.select(enrol), data.select(test))
    assert result.top1 == result.top5 == result.macro == 1.0 and result.num_speakers == 8
    noisy = _set(0.0)
    noisy.embeddings = (
        np.random.default_rng(1).normal(size=noisy.embeddings.shape).astype(np.float32)
    )
    result = closed_set_identification(noisy.select(enrol), noisy.select(test))
    assert result.top1 < 0.4 and result.top5 >= result.top1


def test_top5_and_macro_by_hand():
    enrol = EmbeddingSet(["a/1/1", "b/1/1", "c/1/1"], np.eye(3), ["a", "b", "c"])
    test = EmbeddingSet(
        ["a/2/1", "a/2/2", "a/2/3", "b/2/1"],
        np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0.1], [0, 0, 1]]),
        ["a", "a", "a", "b"],
    )
    result = closed_set_identification(enrol, test)
    assert result.top1 == pytest.approx(0.5)  # 2 of 4
    assert result.macro == pytest.approx((2 / 3 + 0) / 2)
    assert result.top5 == 1.0  # only 3 speakers
    with pytest.raises(DataError, match="not enrolled"):
        closed_set_identification(enrol.select([0]), test)


def test_knn_on_clustered_embeddings_and_its_options():
    data = _set(0.3, seed=2)
    enrol, test = recording_disjoint_split(data, seed=1)
    result = knn_identification(data.select(enrol), data.select(test), k=3)
    assert result.top1 > 0.9
    weighted = knn_identification(
        data.select(enrol), data.select(test), k=7, metric="euclidean", weights="distance"
    )
    assert 0 <= weighted.top1 <= weighted.top5 <= 1


def test_knn_with_more_neighbours_than_enrolment_clips_is_refused():
    data = _set(0.3, seed=2)
    enrol, test = recording_disjoint_split(data, seed=1)
    with pytest.raises(DataError, match=rf"--k 1000: kNN needs 1 to {len(enrol)} neighbours"):
        knn_identification(data.select(enrol), data.select(test), k=1000)  # was cut silently
    with pytest.raises(DataError, match="--k 0"):
        knn_identification(data.select(enrol), data.select(test), k=0)
