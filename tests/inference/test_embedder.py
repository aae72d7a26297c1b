"""Batched, length-grouped embedding: batch-independent, crops, short clips."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.errors import AudioError
from keras_spkid.inference.embedder import Embedder, crop_starts
from keras_spkid.inference.model_io import load_embedding_model


@pytest.fixture(scope="module")
def model():
    return load_embedding_model("conv6")  # a small model is enough


def _waves(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.normal(size=n)).astype(np.float32) for n in lengths]


def test_embedding_does_not_depend_on_the_batch(model):
    embedder = Embedder(model.model, min_samples=model.min_samples)
    waves = _waves([16000, 16100, 40000, 9000, 52000])
    together = embedder(waves)
    alone = np.concatenate([embedder([w]) for w in waves])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_grid_trims_at_most_two_percent(model):
    embedder = Embedder(model.model)
    for n in (16001, 23456, 160000, 480123):
        g = embedder.grid_length(n)
        assert 0.98 * n <= g <= n
    assert embedder.grid_length(5000) == 16000  # short clips are wrap-padded to 1 s


def test_crops_average_fixed_windows(model):
    embedder = Embedder(model.model, crops=3, crop_seconds=1.0)
    wave = _waves([48000])[0]
    starts = crop_starts(48000, 16000, 3)
    assert starts.tolist() == [0, 16000, 32000]
    single = Embedder(model.model)
    parts = single([wave[s : s + 16000] for s in starts])
    mean = parts.mean(axis=0)
    np.testing.assert_allclose(embedder([wave])[0], mean / np.linalg.norm(mean), atol=1e-5)
    assert crop_starts(48000, 16000, 1).tolist() == [16000]  # one crop: the centre


def test_clip_shorter_than_the_window_is_an_error(model):
    embedder = Embedder(model.model, min_samples=model.min_samples)
    with pytest.raises(AudioError, match="tiny.wav: too short to embed: 12.5 ms"):
        embedder([np.ones(200, np.float32)], ["tiny.wav"])


def test_long_clips_are_embedded_in_windows_short_ones_as_before(model, shared_data):
    """Issue 14: a 30-minute file went through the model in one pass (2.5 GB); now long
    clips are the mean of equal windows, and clips up to the window are unchanged."""
    from keras_spkid.audio.io import load_audio

    x = load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")  # 14.7 s
    whole = Embedder(model.model, min_samples=model.min_samples, max_window_seconds=1e9)
    windowed = Embedder(model.model, min_samples=model.min_samples, max_window_seconds=5.0)
    size = x.size // 3  # 14.7 s in 5 s windows: 3 windows of 4.9 s
    windows = [x[i * size : (i + 1) * size] for i in range(3)]
    mean = whole(windows).mean(axis=0)
    np.testing.assert_allclose(windowed([x])[0], mean / np.linalg.norm(mean), atol=1e-5)
    short = x[: 4 * 16000]
    np.testing.assert_array_equal(windowed([short]), whole([short]))
    default = Embedder(model.model, min_samples=model.min_samples)
    np.testing.assert_array_equal(default([x]), whole([x]))  # default window: 120 s


def test_embedders_of_one_model_share_its_traced_graph(model):
    """A demo service or command session builds many Embedders; tracing CAM++ takes 13 s."""
    first, second = Embedder(model.model), Embedder(model.model)
    assert first._call is second._call
    assert Embedder(model.model, crops=2)._call is not first._call  # per-shape graphs
    clip = np.random.default_rng(0).normal(size=(1, 16000)).astype(np.float32)
    first._call(tf.constant(clip))
    assert first._call.experimental_get_tracing_count() == 1
    second._call(tf.constant(np.concatenate([clip, clip], axis=1)))  # another length
    assert second._call.experimental_get_tracing_count() == 1
