"""The front door: keras_spkid.SpeakerEncoder on real WUW telephone speech."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras_spkid
from keras_spkid.audio.io import load_audio
from keras_spkid.errors import AudioError
from keras_spkid.inference.embedder import Embedder
from keras_spkid.inference.model_io import ModelError


@pytest.fixture(scope="module")
def encoder(preset):
    # the front door's logic is the same for every model; conv6 embeds 8x faster than the
    # default CAM++ (which README's Python block, run as pasted, loads by name)
    return keras_spkid.SpeakerEncoder(preset("conv6"))


@pytest.fixture(scope="module")
def speakers(wuw):
    """Two held-out (test split) WUW speakers with four clips each, as file paths."""
    test = wuw.filter(split="test")
    chosen = sorted({u.speaker for u in test})[:2]
    return {s: [str(test.abspath(u)) for u in test if u.speaker == s][:4] for s in chosen}


def test_import_keras_spkid_stays_light():
    code = "import sys, keras_spkid; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert {"SpeakerEncoder", "Gallery"} <= set(dir(keras_spkid))
    with pytest.raises(AttributeError):
        _ = keras_spkid.NoSuchThing


def test_embed_matches_the_embedder_it_wraps(encoder, speakers):
    path = next(iter(speakers.values()))[0]
    wave = load_audio(path)
    reference = Embedder(encoder.model.model, min_samples=encoder.model.min_samples)([wave])[0]
    one = encoder.embed(wave)
    assert one.shape == (encoder.dim,)
    np.testing.assert_allclose(one, reference, atol=1e-5)
    np.testing.assert_allclose(encoder.embed_files([path])[0], reference, atol=1e-5)


def test_verify_scores_same_speaker_above_different(encoder, speakers):
    (a, b) = speakers.values()
    same = encoder.verify(a[0], a[1])
    other = encoder.verify(a[0], b[0])
    assert same.score > other.score
    assert same.threshold == encoder.threshold
    if encoder.threshold is not None:
        assert same.same == (same.score >= same.threshold)
    # waveforms and paths give the same answer
    assert encoder.verify(load_audio(a[0]), a[1]).score == pytest.approx(same.score, abs=1e-5)


def test_enrol_and_identify_on_a_gallery(encoder, speakers):
    gallery = keras_spkid.Gallery.empty()
    for speaker, clips in speakers.items():
        encoder.enrol(gallery, speaker, clips[:3], name=f"person {speaker}")
    assert len(gallery) == 2 and list(gallery.counts) == [3, 3]
    for speaker, clips in speakers.items():
        result = encoder.identify(gallery, clips[3], top_k=2)
        assert result.matches[0].speaker == speaker
        assert result.decision == f"person {speaker}"


def test_bad_input_is_a_clear_error(encoder, tmp_path):
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        encoder.embed_files([tmp_path / "missing.wav"])
    with pytest.raises(AudioError, match="too short to embed"):
        encoder.embed(np.ones(100, np.float32))
    with pytest.raises(ModelError, match="model file not found"):
        keras_spkid.SpeakerEncoder.from_preset(tmp_path / "nothing.keras")


def test_a_models_config_bounds_the_audio_per_call(tmp_path, speakers):
    """``max_batch_seconds`` in the config.json next to a model bounds each model call
    and the windows long clips are cut into; without it, the default holds."""
    import shutil

    from keras_spkid.inference.model_io import DEFAULT_BATCH_SECONDS, resolve_model_path

    shutil.copy(resolve_model_path("conv6"), tmp_path / "model.keras")  # a small model
    default = keras_spkid.SpeakerEncoder.from_preset(tmp_path / "model.keras")
    assert default.model.max_batch_seconds == DEFAULT_BATCH_SECONDS
    (tmp_path / "config.json").write_text('{"max_batch_seconds": 2.5}')
    bounded = keras_spkid.SpeakerEncoder.from_preset(tmp_path / "model.keras")
    assert bounded.embedder.max_batch_samples == bounded.embedder.max_window == 40_000
    clip = np.concatenate([load_audio(p) for p in next(iter(speakers.values()))])
    assert clip.size > 2 * 40_000  # so it is cut into windows
    pieces = bounded.embedder._pieces(clip)
    assert len(pieces) >= 3 and max(p.size for p in pieces) <= 40_000
    # windowed, the clip still lands next to its own embedding from one pass
    assert float(bounded.embed(clip) @ default.embed(clip)) > 0.9
    (tmp_path / "config.json").write_text('{"max_batch_seconds": "lots"}')
    assert (
        keras_spkid.SpeakerEncoder.from_preset(tmp_path / "model.keras").model.max_batch_seconds
        == DEFAULT_BATCH_SECONDS
    )


def test_campplus_preset_embeds_in_bounded_calls(preset):
    assert preset("campplus_zh_en").max_batch_seconds == 20.0


@pytest.fixture(scope="module")
def conv6(preset):
    return keras_spkid.SpeakerEncoder(preset("conv6"))


@pytest.fixture(scope="module")
def reading(shared_data):
    """6 s of a real LibriSpeech reader."""
    return load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")[: 6 * 16000]


def _bad_waveforms(reading):
    """Waveforms that must never be embedded: regex of the error -> array."""
    nan = reading.copy()
    nan[3 * 16000 : 3 * 16000 + 960] = np.nan
    return {
        "960 samples are NaN or infinite": nan,
        "no speech found": np.random.default_rng(0).normal(0, 0.1, 3 * 16000).astype("f4"),
        "clipped": 50 * reading,
        r"not a waveform: .*shape \[16000, 2, 2\]": np.zeros((16000, 2, 2), np.float32),
        r"not a waveform: .*<U5": np.asarray(["hello"] * 16000),
    }


def test_waveforms_that_are_not_speech_are_refused(conv6, reading):
    """Issue 14 on the Python front door: ``embed`` took a waveform with 0.06 s of NaN,
    Gaussian noise, x50 clipped audio, a [n, 2, 2] array (flattened) and strings."""
    for words, array in _bad_waveforms(reading).items():
        with pytest.raises(AudioError, match=f"^<waveform>: .*{words}"):
            conv6.embed(array)
    with pytest.raises(AudioError, match="^<waveform 1>: 960 samples are NaN"):
        conv6([reading, _bad_waveforms(reading)["960 samples are NaN or infinite"]])
    pcm = (reading * 32767).astype(np.int16)  # integer PCM is scaled, as load_audio does
    assert float(conv6.embed(pcm) @ conv6.embed(reading)) > 0.999


@pytest.mark.slow
def test_garbage_is_refused_never_named(conv6, speakers, reading, tmp_path):
    """Issue 14 on the Python front door: a waveform with 0.06 s of NaN was named a
    enrolled speaker, Gaussian noise (a file or an array) another at 0.72, a [n, 2, 2]
    array was flattened and named, x50 clipped audio was named; now identify, verify,
    enrol and embed_files refuse each with one AudioError naming the clip."""
    from tests.fixtures.bad_audio import REASONS, make_bad_audio

    gallery = keras_spkid.Gallery.empty()
    for speaker, clips in speakers.items():
        conv6.enrol(gallery, speaker, clips[:3])
    query = next(iter(speakers.values()))[3]
    made = make_bad_audio(tmp_path, reading)
    cases = [(made[name], f"^{made[name]}: .*{words}") for name, words in REASONS.items()]
    cases += [
        (array, f"^<waveform( 0)?>: .*{words}") for words, array in _bad_waveforms(reading).items()
    ]
    for clip, message in cases:
        for call in (
            lambda: conv6.identify(gallery, clip),
            lambda: conv6.verify(clip, query),
            lambda: conv6.enrol(gallery, "someone", [clip]),
            lambda: conv6.embed_files([clip]) if isinstance(clip, Path) else conv6.embed(clip),
        ):
            with pytest.raises(AudioError, match=message):
                call()
    assert gallery.speakers == sorted(speakers) and list(gallery.counts) == [3, 3]
