"""LogMel against librosa, its serialisation inside a saved model, and SpecAugment."""

from __future__ import annotations

import keras
import librosa
import numpy as np
import pytest

from keras_spkid.audio.frontend import KaldiFbank, LogMel, SpecAugment, mel_filterbank
from keras_spkid.audio.io import load_audio


@pytest.fixture(scope="module")
def speech(shared_data):
    """5 s of real 16 kHz read speech (LibriSpeech)."""
    path = next((shared_data / "librispeech_1utt").glob("*/*.flac"))
    return load_audio(path)[: 5 * 16000]


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize(
    "n_mels,fmin,fmax", [(40, 0.0, None), (64, 20.0, 7600.0), (80, 50.0, 8000.0)]
)
def test_filterbank_matches_librosa(htk, n_mels, fmin, fmax):
    ours = mel_filterbank(16000, 512, n_mels, fmin, fmax, htk=htk, norm="slaney")
    ref = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm="slaney"
    )
    np.testing.assert_allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize(
    "options",
    [
        dict(
            n_mels=40, window="hann", mel_scale="slaney", pad_mode="constant", fmin=0.0, fmax=None
        ),
        dict(
            n_mels=64, window="hamming", mel_scale="htk", pad_mode="reflect", fmin=20.0, fmax=7600.0
        ),
        dict(
            n_mels=80,
            window="hann",
            mel_scale="slaney",
            pad_mode="constant",
            fmin=20.0,
            fmax=7600.0,
        ),
    ],
)
def test_logmel_matches_librosa_on_real_speech(speech, options):
    layer = LogMel(normalize=None, **options)
    ours = layer(speech[None])[0].numpy()
    power = librosa.feature.melspectrogram(
        y=speech,
        sr=16000,
        n_fft=512,
        hop_length=160,
        win_length=400,
        window=options["window"],
        center=True,
        pad_mode=options["pad_mode"],
        power=2.0,
        n_mels=options["n_mels"],
        fmin=options["fmin"],
        fmax=options["fmax"],
        htk=options["mel_scale"] == "htk",
    )
    reference = np.log(power.T + 1e-6)
    assert ours.shape == reference.shape == (layer.num_frames(len(speech)), options["n_mels"])
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_normalisation_over_time(speech):
    mean = LogMel(normalize="mean")(speech[None])[0].numpy()
    cmvn = LogMel(normalize="mean_var")(speech[None])[0].numpy()
    np.testing.assert_allclose(mean.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(cmvn.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(cmvn.std(axis=0), 1.0, atol=1e-2)


def test_model_with_frontend_saves_and_loads(tmp_path, speech):
    inputs = keras.Input((None,))
    features = LogMel(n_mels=40, normalize="mean_var")(inputs)
    features = SpecAugment(seed=1)(features)
    outputs = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(8)(features))
    model = keras.Model(inputs, outputs)
    expected = model(speech[None]).numpy()
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(speech[None]).numpy(), expected, atol=1e-5)
    assert restored.layers[1].get_config() == model.layers[1].get_config()


def test_logmel_rejects_bad_settings():
    with pytest.raises(ValueError, match="win_length"):
        LogMel(win_length=1024, n_fft=512)
    with pytest.raises(ValueError, match="fmin"):
        LogMel(fmin=9000.0, fmax=None)


def test_specaugment_masks_only_in_training():
    features = np.random.default_rng(0).normal(size=(4, 300, 64)).astype("float32") + 5.0
    layer = SpecAugment(freq_mask_param=10, time_mask_param=40, seed=3)
    np.testing.assert_array_equal(layer(features, training=False), features)
    masked = layer(features, training=True).numpy()
    zeros = masked == 0.0
    assert zeros.any()
    for example in zeros:
        full_rows = example.all(axis=1).sum()  # masked time frames
        full_cols = example.all(axis=0).sum()  # masked mel bins
        assert full_rows <= 2 * 40 and full_cols <= 2 * 10
        # Every zero lies in a fully masked frame or a fully masked bin.
        assert not (
            example & ~example.all(axis=1, keepdims=True) & ~example.all(axis=0, keepdims=True)
        ).any()
    # Examples get different masks.
    assert not np.array_equal(zeros[0], zeros[1])


@pytest.fixture(scope="module")
def telephone_speech(shared_data):
    """3 s of real 8 kHz telephone speech (WUW Corpus II) resampled to 16 kHz."""
    path = sorted((shared_data / "wuw_corpus_ii").glob("*/*.flac"))[3]
    return load_audio(path)[: 3 * 16000]


def _kaldi_native_fbank(waveform, n_mels=80, fmin=20.0, fmax=0.0):
    knf = pytest.importorskip("kaldi_native_fbank", reason="kaldi-native-fbank not installed")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = n_mels
    opts.mel_opts.low_freq = fmin
    opts.mel_opts.high_freq = fmax
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, waveform.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


@pytest.mark.parametrize("clip", ["speech", "telephone_speech"])
@pytest.mark.parametrize("n_mels,fmin,fmax", [(80, 20.0, 0.0), (40, 100.0, 7000.0)])
def test_kaldi_fbank_matches_kaldi_native_fbank(request, clip, n_mels, fmin, fmax):
    waveform = request.getfixturevalue(clip)
    reference = _kaldi_native_fbank(waveform, n_mels, fmin, fmax)
    layer = KaldiFbank(n_mels=n_mels, fmin=fmin, fmax=fmax, normalize=None)
    ours = layer(waveform[None])[0].numpy()
    assert ours.shape == reference.shape == (layer.num_frames(len(waveform)), n_mels)
    # log energies of ~-16 to +10: float32 FFTs of two libraries agree to ~1e-4
    np.testing.assert_allclose(ours, reference, atol=2e-3)
    normalised = KaldiFbank(n_mels=n_mels, fmin=fmin, fmax=fmax)(waveform[None])[0].numpy()
    np.testing.assert_allclose(normalised, reference - reference.mean(0), atol=2e-3)


def test_kaldi_fbank_saves_inside_a_model(tmp_path, speech):
    waveform = keras.Input(shape=(None,))
    model = keras.Model(waveform, KaldiFbank(n_mels=80, preemphasis=0.9)(waveform))
    model.save(tmp_path / "fbank.keras")
    loaded = keras.saving.load_model(tmp_path / "fbank.keras")
    layer = loaded.layers[-1]
    assert isinstance(layer, KaldiFbank) and isinstance(layer, LogMel)
    assert layer.preemphasis == 0.9 and layer.center is False
    np.testing.assert_allclose(loaded(speech[None]), model(speech[None]), atol=1e-6)
