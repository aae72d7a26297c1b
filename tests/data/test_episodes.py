"""Episode and speaker-batch pipelines: invariants, determinism, crops, bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.data.catalogue import Catalogue, Utterance
from keras_spkid.data.episodes import (
    EpisodeSpec,
    episode_dataset,
    speaker_batch_dataset,
)
from keras_spkid.data.store import UtteranceStore
from keras_spkid.errors import DataError


def _synthetic_store(clips_per_speaker, frames=(30, 400), n_mels=8, seed=0):
    """Store whose frame values encode (item, position) so crops can be checked exactly."""
    rng = np.random.default_rng(seed)
    utterances, arrays = [], {}
    for s, count in enumerate(clips_per_speaker):
        for c in range(count):
            path = f"spk{s:02d}/clip{c:02d}.wav"
            utterances.append(Utterance(path, f"spk{s:02d}", f"spk{s:02d}/rec{c % 2}"))
            length = int(rng.integers(*frames))
            arrays[path] = rng.normal(size=(length, n_mels)).astype(np.float32)
    catalogue = Catalogue(".", utterances)
    return UtteranceStore.from_arrays(catalogue, arrays)


@pytest.fixture(scope="module")
def store():
    return _synthetic_store([25] * 12 + [6, 3])


def _episodes(store, spec, count=6, **kwargs):
    return [
        {k: v.numpy() for k, v in e.items()}
        for e in episode_dataset(store, spec, num_episodes=count, **kwargs)
    ]


def _is_wrapped_window(crop, item):
    """True if ``crop`` equals ``item[(start + arange(L)) % len(item)]`` for some start."""
    for start in range(len(item)):
        positions = (start + np.arange(len(crop))) % len(item)
        if np.array_equal(item[positions], crop):
            return True
    return False


def test_episode_invariants(store):
    spec = EpisodeSpec(n_way=5, k_shot=3, q_query=4, support_frames=50, query_frames=40)
    for e in _episodes(store, spec):
        assert e["support"].shape == (15, 50, 8) and e["query"].shape == (20, 40, 8)
        assert e["support"].dtype == np.float32
        # N distinct speakers, labels 0..N-1 class-major, consistent with global ids.
        speakers = e["support_speakers"].reshape(5, 3)
        assert len(set(speakers[:, 0])) == 5 and (speakers == speakers[:, :1]).all()
        np.testing.assert_array_equal(e["support_labels"], np.repeat(np.arange(5), 3))
        np.testing.assert_array_equal(e["query_labels"], np.repeat(np.arange(5), 4))
        np.testing.assert_array_equal(e["query_speakers"], np.repeat(speakers[:, 0], 4))
        # K+Q distinct clips per class, all of that speaker; support and query disjoint.
        items = np.concatenate(
            [e["support_items"].reshape(5, 3), e["query_items"].reshape(5, 4)], 1
        )
        for row, speaker in zip(items, speakers[:, 0]):
            assert len(set(row)) == 7
            assert (store.labels[row] == speaker).all()
        assert not set(e["support_items"]) & set(e["query_items"])
        # Each crop is a window of the clip it claims to come from.
        for crop, item in zip(e["support"][:4], e["support_items"][:4]):
            assert _is_wrapped_window(crop, store.item(item))


def test_short_clips_wrap_around():
    store = _synthetic_store([3] * 3, frames=(30, 31))
    e = _episodes(store, EpisodeSpec(2, 1, 1, support_frames=100, query_frames=100), count=1)[0]
    crop, item = e["support"][0], store.item(e["support_items"][0])
    assert _is_wrapped_window(crop, item)
    np.testing.assert_array_equal(crop[:30], crop[30:60])  # repeated, not zero-padded


def test_same_seed_same_episodes(store):
    spec = EpisodeSpec(4, 2, 2, 40, (20, 40))
    a = _episodes(store, spec, seed=7, episodes_per_batch=2)
    b = _episodes(store, spec, seed=7, episodes_per_batch=2)
    c = _episodes(store, spec, seed=8, episodes_per_batch=2)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert any(not np.array_equal(x["support_items"], z["support_items"]) for x, z in zip(a, c))


def test_batches_of_episodes_with_variable_query_length(store):
    spec = EpisodeSpec(3, 2, 3, support_frames=60, query_frames=(20, 40))
    dataset = episode_dataset(store, spec, episodes_per_batch=4, seed=1, num_episodes=40)
    lengths = []
    for batch in dataset:
        assert batch["support"].shape == (4, 6, 60, 8)
        assert batch["query"].shape[:2] == (4, 9)
        lengths.append(batch["query"].shape[2])
    assert len(lengths) == 10
    assert all(20 <= n <= 40 for n in lengths) and len(set(lengths)) > 1


def test_speakers_with_too_few_clips_are_left_out(store, caplog):
    spec = EpisodeSpec(5, 5, 10)
    with caplog.at_level("WARNING"):
        episodes = _episodes(store, spec, count=20)
    assert "left out 2 of 14 speakers with fewer than 15 clips" in caplog.text
    used = {int(s) for e in episodes for s in e["support_speakers"]}
    assert used <= set(range(12))


def test_impossible_settings_fail_before_work(store):
    with pytest.raises(DataError, match="need 13 speakers .* only 12 of 14"):
        episode_dataset(store, EpisodeSpec(13, 5, 5))
    with pytest.raises(DataError, match="only 0 of 14"):
        episode_dataset(store, EpisodeSpec(2, 20, 20))
    with pytest.raises(DataError, match="n_way"):
        EpisodeSpec(0, 1, 1)
    with pytest.raises(DataError, match="query_frames"):
        EpisodeSpec(5, 1, 1, query_frames=(200, 100))


def test_speaker_batches(store):
    dataset = speaker_batch_dataset(
        store, speakers_per_batch=6, clips_per_speaker=2, frames=32, seed=0, num_batches=5
    )
    for features, labels in dataset:
        assert features.shape == (12, 32, 8)
        labels = labels.numpy().reshape(6, 2)
        assert (labels[:, 0] == labels[:, 1]).all()
        assert len(set(labels[:, 0])) == 6  # no speaker twice in a batch


def test_segments_of_long_single_clips(shared_data):
    from keras_spkid.data.corpora import load_corpus

    libri = load_corpus("librispeech_1utt", shared_data)
    subset = libri.filter(speakers=libri.speakers[:5])
    # features of each clip's real length (100 frames a second)
    arrays = {u.path: np.zeros((int(u.seconds * 100), 8), np.float32) for u in subset}
    store = UtteranceStore.from_arrays(subset, arrays, segment_frames=200)
    per_speaker = store.items_per_speaker()
    assert (per_speaker >= 2).all()  # one 5-35 s clip becomes several 2 s segments
    assert set(store.recordings) == {u.recording for u in subset}
    assert all(n == 200 for n in store.lengths)  # 2 s of frames, remainders dropped
    assert len(store) == sum(int(u.seconds * 100) // 200 for u in subset)


def test_start_continues_the_same_stream(store):
    spec = EpisodeSpec(3, 2, 2, 40, (20, 40))
    full = _episodes(store, spec, count=12, seed=5, episodes_per_batch=3)
    resumed = list(
        episode_dataset(store, spec, episodes_per_batch=3, seed=5, start=2, num_episodes=6)
    )
    assert len(full) == 4 and len(resumed) == 2
    for x, y in zip(full[2:], resumed):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key].numpy())
    batches = list(speaker_batch_dataset(store, 4, 2, 16, seed=1, num_batches=5))
    later = list(speaker_batch_dataset(store, 4, 2, 16, seed=1, num_batches=2, start=3))
    np.testing.assert_array_equal(batches[3][0], later[0][0])


def test_clip_batches_draw_any_clip(store):
    from keras_spkid.data.episodes import clip_batch_dataset

    batches = list(clip_batch_dataset(store, batch_size=40, frames=24, seed=2, num_batches=3))
    for features, labels in batches:
        assert features.shape == (40, 24, 8)
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert len(set(labels)) > 8  # many speakers, repeats allowed
    again = list(clip_batch_dataset(store, batch_size=40, frames=24, seed=2, num_batches=3))
    np.testing.assert_array_equal(batches[2][0], again[2][0])
