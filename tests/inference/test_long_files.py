"""A long file is embedded from windows read from disk: the embedding and the errors of
the whole waveform, without holding the waveform."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile

import keras_spkid
from keras_spkid.audio.blocks import BlockAudio
from keras_spkid.audio.io import SAMPLE_RATE, check_clipping, load_audio
from keras_spkid.errors import AudioError
from keras_spkid.inference.embedder import Embedder


@pytest.fixture(scope="module")
def encoder(preset):
    """conv6 in windows of 4 s, two per model call: a 3-minute file is 45 windows."""
    encoder = keras_spkid.SpeakerEncoder(preset("conv6"))
    encoder.embedder = Embedder(
        encoder.model.model,
        min_samples=encoder.model.min_samples,
        max_batch_seconds=8.0,
        max_window_seconds=4.0,
    )
    return encoder


def _whole(encoder, paths):
    """What embed_files did before: each file decoded whole, checked, embedded."""
    waves = []
    for path in paths:
        x = load_audio(path)
        encoder.embedder.check(x, path)
        check_clipping(x, path)
        waves.append(x)
    return encoder.embedder(waves, paths)


@pytest.mark.parametrize("channels", ["mono", "stereo", "8 kHz"])
def test_a_long_file_gets_the_embedding_of_its_whole_waveform(
    tmp_path, encoder, long_speech, channels
):
    rate = 8000 if channels == "8 kHz" else SAMPLE_RATE
    if channels == "stereo":
        samples = np.stack([0.8 * long_speech, 0.5 * np.roll(long_speech, 7 * SAMPLE_RATE)], 1)
        path = tmp_path / "long.flac"
    else:  # the 8 kHz file is resampled to 16 kHz, block by block
        samples, path = long_speech[:: SAMPLE_RATE // rate] + 0.002, tmp_path / "long.wav"
    soundfile.write(path, samples, rate, subtype="PCM_16")
    short = tmp_path / "short.wav"
    soundfile.write(short, long_speech[: 3 * SAMPLE_RATE], SAMPLE_RATE, subtype="PCM_16")
    paths = [str(path), str(short)]
    assert isinstance(encoder._clip(str(path), str(path)), BlockAudio)  # read in blocks
    np.testing.assert_array_equal(encoder.embed_files(paths), _whole(encoder, paths))


@pytest.mark.parametrize("fault", ["noise", "nan"])
def test_a_bad_long_file_raises_what_the_whole_waveform_raises(
    tmp_path, encoder, long_speech, fault
):
    if fault == "noise":  # steady noise at a speech level: no speech
        x = 0.05 * np.random.default_rng(0).standard_normal(long_speech.size)
    else:
        x = long_speech.copy()
        x[-1000:] = np.nan
    path = str(tmp_path / f"{fault}.wav")
    soundfile.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as whole:
        _whole(encoder, [path])
    with pytest.raises(AudioError) as blocks:
        encoder.embed_files([path])
    assert str(blocks.value) == str(whole.value)
    assert ("no speech found" if fault == "noise" else "NaN") in str(whole.value)


def test_a_long_file_is_embedded_without_its_whole_waveform(tmp_path, encoder, long_speech):
    path = tmp_path / "long.wav"
    soundfile.write(path, long_speech, SAMPLE_RATE, subtype="PCM_16")
    encoder.embed(long_speech[: 4 * SAMPLE_RATE])  # the graph is traced before measuring
    peaks = {}
    for name, embed in (("blocks", encoder.embed_files), ("whole", lambda p: _whole(encoder, p))):
        tracemalloc.start()
        try:
            embed([str(path)])
            peaks[name] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    waveform = long_speech.size * 4  # 11 MiB as float32
    assert peaks["whole"] > waveform  # what the test would see without the blocks
    # blocks of 16 s (1 MiB) and windows of 4 s: measured 1.6 MiB
    assert peaks["blocks"] < waveform / 4, f"{peaks['blocks'] / 2**20:.1f} MiB"


def test_extract_embeds_a_long_file_as_its_whole_waveform(tmp_path, preset, long_speech):
    """extract_embeds.py reads a long file in blocks too (over conv6's 240 s per model
    call; default 120 s windows)."""
    from keras_spkid.inference.embedding_set import EmbeddingSet
    from keras_spkid.inference.extract import extract_embeddings

    six_minutes = np.concatenate([long_speech, long_speech])
    soundfile.write(tmp_path / "long.flac", six_minutes, SAMPLE_RATE, subtype="PCM_16")
    soundfile.write(tmp_path / "short.wav", long_speech[:48000], SAMPLE_RATE, subtype="PCM_16")
    names = ["long.flac", "short.wav"]
    encoder = keras_spkid.SpeakerEncoder(preset("conv6"))
    assert isinstance(encoder.load(tmp_path / "long.flac"), BlockAudio)
    output = tmp_path / "embeds.npz"
    extract_embeddings(encoder.model, names, tmp_path, output, progress=False, workers=2)
    whole = encoder([load_audio(tmp_path / name) for name in names])
    np.testing.assert_array_equal(EmbeddingSet.load(output).embeddings, whole)
