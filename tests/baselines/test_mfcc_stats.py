"""The MFCC-statistics baseline: what it computes, that it saves, that it identifies speakers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from keras_spkid.audio.frontend import LogMel
from keras_spkid.audio.io import load_audio
from keras_spkid.baselines import MFCCStats, baseline_model_path, build_mfcc_stats
from keras_spkid.evaluation.fewshot import embedding_episode_accuracies
from keras_spkid.inference.embedder import Embedder
from keras_spkid.inference.model_io import load_embedding_model


def _signal(seconds=1.5, seed=0):
    """Noise shaped by a moving resonance: not speech, but with a changing spectrum."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    return (0.1 * rng.normal(size=n) + 0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(
        "float32"
    )


def test_layer_matches_a_numpy_reference():
    log_mel = np.random.default_rng(0).normal(size=(2, 50, 40)).astype("float32")
    cepstra = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=-1)[..., 1:21]
    expected = np.concatenate([cepstra.mean(axis=1), cepstra.std(axis=1)], axis=-1)
    np.testing.assert_allclose(MFCCStats(n_mfcc=20)(log_mel), expected, atol=1e-4)
    with_c0 = MFCCStats(n_mfcc=3, include_c0=True)(log_mel)
    np.testing.assert_allclose(
        with_c0[:, :3],
        scipy.fft.dct(log_mel, type=2, norm="ortho", axis=-1)[..., :3].mean(axis=1),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="need more than 20 mel bands"):
        MFCCStats(n_mfcc=20)(log_mel[..., :20])


def test_shape_and_keras_round_trip(tmp_path):
    model = build_mfcc_stats()
    waves = np.stack([_signal(seed=0), _signal(seed=1)])
    embeddings = np.asarray(model(waves))
    assert embeddings.shape == (2, 40) and np.isfinite(embeddings).all()
    assert (embeddings[:, 20:] > 0).all()  # standard deviations
    model.save(tmp_path / "mfcc.keras")
    loaded = load_embedding_model(tmp_path / "mfcc.keras")
    assert loaded.dim == 40 and isinstance(loaded.frontend, LogMel)
    assert loaded.frontend.normalize is None and loaded.min_samples == 400
    np.testing.assert_array_equal(np.asarray(loaded.model(waves)), embeddings)


def test_the_name_stands_for_a_built_file(baseline_cache):
    by_name = load_embedding_model("mfcc_stats")
    assert by_name.path == baseline_model_path("mfcc_stats")  # built once, then reused
    assert by_name.path.parent == baseline_cache / "keras-spkid" / "baselines"
    assert by_name.path.name.startswith("mfcc_stats-") and by_name.dim == 40
    assert by_name.calibration is None


def test_beats_chance_clearly_on_wuw_test_speakers(wuw):
    test = wuw.filter(split="test")
    catalogue = test.filter(speakers=test.speakers[:8])
    waves = [load_audio(catalogue.abspath(u)) for u in catalogue]
    embeddings = Embedder(build_mfcc_stats())(waves)
    speakers = [u.speaker for u in catalogue]
    accuracy = embedding_episode_accuracies(embeddings, embeddings, speakers, 5, 1, 5, 200).mean()
    assert accuracy > 0.6, f"5-way 1-shot accuracy {accuracy:.2f} (chance 0.2)"
