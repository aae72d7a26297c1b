"""Trial lists: drawing them, writing them in veri_test format, scoring them."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.data.voxceleb import read_trials
from keras_spkid.errors import DataError
from keras_spkid.evaluation.trials import (
    make_trials,
    score_trials,
    trial_paths,
    write_trials,
)
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.scoring.asnorm import ASNorm


def _corpus():
    speakers = np.repeat(["a", "b", "c"], 4)
    recordings = np.array(["a1", "a1", "a2", "a2", "b1", "b1", "b1", "b1", "c1", "c2", "c3", "c3"])
    paths = np.array([f"{s}/{r}/{i}.wav" for i, (s, r) in enumerate(zip(speakers, recordings))])
    return paths, speakers, recordings


def test_cross_recording_targets_and_round_trip(tmp_path):
    paths, speakers, recordings = _corpus()
    trials = make_trials(paths, speakers, recordings, targets_per_speaker=50, seed=0)
    speaker_of = dict(zip(paths, speakers))
    recording_of = dict(zip(paths, recordings))
    for label, e, t in zip(trials.labels, trials.enrol, trials.test):
        assert (speaker_of[e] == speaker_of[t]) == bool(label)
        if label:
            assert recording_of[e] != recording_of[t]
    # a: 4 cross pairs, b: none (one recording), c: 5 cross pairs
    assert int(trials.labels.sum()) == 9 and int((trials.labels == 0).sum()) == 9
    write_trials(trials, tmp_path / "t.txt")
    again = read_trials(tmp_path / "t.txt")
    assert again.enrol == trials.enrol and again.labels.tolist() == trials.labels.tolist()
    any_pairs = make_trials(paths, speakers, recordings, 50, cross_recording=False)
    assert int(any_pairs.labels.sum()) == 18  # 6 pairs per speaker
    with pytest.raises(DataError, match="no target trial"):
        make_trials(paths[[0, 4, 8]], speakers[[0, 4, 8]], recordings[[0, 4, 8]])


def test_single_recordings_name_the_flag_that_allows_them():
    paths, speakers, recordings = _corpus()
    keep = [4, 5, 6, 7]  # b: four clips of one recording
    with pytest.raises(DataError, match="single recording .*--same-recording"):
        make_trials(paths[keep], speakers[keep], recordings[keep])


def test_scores_are_cosines_and_asnorm_applies(tmp_path):
    paths, speakers, recordings = _corpus()
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(paths), 8)).astype(np.float32)
    embeddings = EmbeddingSet(paths, emb, speakers)
    trials = make_trials(paths, speakers, recordings, 50, seed=1)
    assert set(trial_paths(trials)) <= set(paths)
    scores = score_trials(trials, embeddings)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    row = {p: i for i, p in enumerate(paths)}
    expected = [unit[row[e]] @ unit[row[t]] for e, t in zip(trials.enrol, trials.test)]
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    normed = score_trials(trials, embeddings, asnorm=ASNorm(rng.normal(size=(30, 8)), top_k=5))
    assert normed.shape == scores.shape and not np.allclose(normed, scores)
    with pytest.raises(DataError, match="paths have no embedding"):
        score_trials(trials, embeddings.select(np.arange(3)))
