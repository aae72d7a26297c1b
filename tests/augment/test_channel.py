"""ChannelAugment on log-mel features of real speech."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import soxr

from keras_spkid.audio.frontend import LogMel
from keras_spkid.audio.io import load_audio
from keras_spkid.augment.channel import ChannelAugment
from keras_spkid.data.catalogue import read_manifest

OFF = {"band_probability": 0.0, "noise_probability": 0.0, "babble_probability": 0.0}


@pytest.fixture(scope="module")
def speech(shared_data):
    """Four 3 s LibriSpeech waveforms at 16 kHz, ``[4, 48000]``."""
    corpus = read_manifest(shared_data / "librispeech_1utt" / "MANIFEST.tsv")
    paths = sorted(corpus.root / u.path for u in corpus.utterances)[:4]
    return np.stack([load_audio(p)[16000:64000] for p in paths])


@pytest.fixture(scope="module")
def features(speech):
    return LogMel()(speech).numpy()  # [4, 301, 64], mean-normalised


def test_inference_passes_features_through(features):
    layer = ChannelAugment(band_probability=1.0, noise_probability=1.0, seed=0)
    np.testing.assert_array_equal(layer(features, training=False), features)


def test_nothing_chosen_changes_nothing(features):
    out = ChannelAugment(seed=0, **OFF)(features, training=True).numpy()
    np.testing.assert_allclose(out, features, atol=1e-4)


def test_telephone_band_matches_real_8khz_audio(speech, features):
    """Cut-off at 4 kHz: the bands match those of the same audio through 8 kHz."""
    telephone = np.stack(
        [soxr.resample(soxr.resample(x, 16000, 8000), 8000, 16000) for x in speech]
    )
    real = LogMel()(telephone).numpy()
    layer = ChannelAugment(
        seed=0, **{**OFF, "band_probability": 1.0, "band_cutoff_hz": (4000.0, 4000.0)}
    )
    out = layer(features, training=True).numpy()
    centres = layer._centres_hz
    low, high = centres < 3500, centres > 4300
    assert np.all(out[:, :, centres > 4000] == 0.0)
    assert np.abs(out[:, :, low] - real[:, :, low]).mean() < 0.05
    assert real[:, :, high].std(axis=1).max() < 0.5
    assert features[:, :, high].std(axis=1).mean() > 1.0


def test_constant_bands_of_8khz_corpora_stay_constant(speech):
    """Mixing noise into an 8 kHz recording must not invent energy above 4 kHz."""
    narrow = LogMel()(np.stack([soxr.resample(x[::2], 8000, 16000) for x in speech])).numpy()
    narrow[:, :, -10:] = 0.0  # what the cache holds above 4 kHz for an 8 kHz corpus
    out = ChannelAugment(
        seed=1, noise_probability=1.0, babble_probability=1.0, band_probability=0.0
    )(narrow, training=True).numpy()
    assert np.all(out[:, :, -10:] == 0.0)
    assert np.abs(out[:, :, :-10] - narrow[:, :, :-10]).max() > 1.0


@pytest.mark.parametrize("kind", ["noise", "babble"])
def test_lower_snr_changes_more(features, kind):
    """Added signals fill the quiet cells: the spread over time shrinks as SNR falls."""
    spreads = []
    for snr in (40.0, 15.0, 0.0):
        layer = ChannelAugment(
            seed=2, **{**OFF, f"{kind}_probability": 1.0, f"{kind}_snr_db": (snr, snr)}
        )
        out = layer(features, training=True).numpy()
        np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-3)  # still normalised
        spreads.append(out.std(axis=1).mean())
    assert spreads[0] > spreads[1] > spreads[2]
    assert abs(spreads[0] - features.std(axis=1).mean()) < 0.15


def test_seeded_and_serialisable(features):
    kwargs = {
        "seed": 5,
        "noise_probability": 0.5,
        "babble_probability": 0.5,
        "band_probability": 0.5,
    }
    first = ChannelAugment(**kwargs)(features, training=True).numpy()
    again = ChannelAugment(**kwargs)(features, training=True).numpy()
    np.testing.assert_array_equal(first, again)
    layer = ChannelAugment(**kwargs)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, ChannelAugment)
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("bad", [{"noise_probability": 1.5}, {"babble_snr_db": (20, 10)}])
def test_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        ChannelAugment(**bad)
