"""Long files read in blocks: the same checks, messages and samples as load_audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from keras_spkid.audio.blocks import open_blocks
from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.audio.vad import frame_levels
from keras_spkid.errors import AudioError


def _stereo(long_speech, kind):
    other = np.roll(long_speech, 7 * SAMPLE_RATE)  # another stretch of speech
    if kind == "two voices":
        return np.stack([0.8 * long_speech, 0.5 * other], axis=1)
    # opposite polarity, plus a little of another voice so that one channel is louder
    return np.stack([0.8 * long_speech, -0.8 * long_speech + 0.01 * other], axis=1)


@pytest.mark.parametrize(
    "channels, subtype, suffix",
    [("mono", "PCM_16", ".wav"), ("two voices", "PCM_24", ".flac"), ("opposite", "FLOAT", ".wav")],
)
def test_blocks_are_the_samples_and_checks_of_the_whole_waveform(
    tmp_path, long_speech, channels, subtype, suffix, caplog
):
    samples = long_speech + 0.003 if channels == "mono" else _stereo(long_speech, channels)
    path = tmp_path / f"long{suffix}"
    soundfile.write(path, samples, SAMPLE_RATE, subtype=subtype)
    x = load_audio(path)
    audio = open_blocks(path, longer_than=SAMPLE_RATE)
    assert audio is not None and audio.size == x.size
    # both paths logged (or not) that the channels cancel and used one channel
    assert caplog.text.count("channels cancel") == (2 if channels == "opposite" else 0)
    edges = [0, 12_345, 400_000, 1_234_567, 2_500_000, x.size]  # not on block edges
    read = np.concatenate([audio.read(a, b) for a, b in zip(edges, edges[1:])])
    np.testing.assert_array_equal(read, x)  # bitwise: same mix, same DC mean
    np.testing.assert_array_equal(audio.frame_levels, frame_levels(x))
    assert audio.peak == np.abs(x).max()
    assert audio.clipped == np.count_nonzero(np.abs(x) >= 0.999)


@pytest.mark.parametrize("rate, channels", [(8000, "mono"), (44100, "two voices")])
def test_files_at_other_rates_are_resampled_block_by_block_to_the_same_samples(
    tmp_path, long_speech, rate, channels
):
    """A streaming resampler over the blocks gives the one-shot resampling of the whole
    waveform, to the bit (samples, VAD levels, peak)."""
    import soxr

    x = soxr.resample(long_speech, SAMPLE_RATE, rate) if rate != 8000 else long_speech[::2]
    samples = x + 0.002 if channels == "mono" else _stereo(x, channels)
    path = tmp_path / f"long{rate}.{'wav' if channels == 'mono' else 'flac'}"
    soundfile.write(path, samples, rate, subtype="PCM_24")
    whole = load_audio(path)
    audio = open_blocks(path, longer_than=SAMPLE_RATE)
    assert audio is not None and audio.size == whole.size
    edges = [0, 12_345, 300_001, 1_234_567, whole.size]  # not on block edges
    read = np.concatenate([audio.read(a, b) for a, b in zip(edges, edges[1:])])
    np.testing.assert_array_equal(read, whole)
    np.testing.assert_array_equal(audio.frame_levels, frame_levels(whole))
    assert audio.peak == np.abs(whole).max()
    # one long file does not fit in a short "longer_than"; as long as it: read whole
    assert open_blocks(path, longer_than=whole.size + 1) is None


def test_short_and_compressed_files_are_read_whole(tmp_path, long_speech):
    wav = tmp_path / "long.wav"
    soundfile.write(wav, long_speech, SAMPLE_RATE)
    assert open_blocks(wav, longer_than=long_speech.size) is None  # not longer than that
    ogg = tmp_path / "long.ogg"
    soundfile.write(ogg, long_speech[: 20 * SAMPLE_RATE], SAMPLE_RATE)
    assert open_blocks(ogg, longer_than=SAMPLE_RATE) is None
    assert open_blocks(tmp_path / "missing.wav", longer_than=0) is None  # load_audio names it


@pytest.mark.parametrize("fault", ["nan", "clipped", "silent"])
def test_bad_long_files_raise_what_load_audio_raises(tmp_path, long_speech, fault):
    x = long_speech.copy()
    if fault == "nan":
        x[2_000_000:2_000_960] = np.nan  # in the eighth block
    elif fault == "clipped":
        x = np.clip(50 * x, -1, 1)
    else:
        x = np.zeros_like(x)
    path = tmp_path / f"{fault}.wav"
    soundfile.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as whole:
        load_audio(path)
    with pytest.raises(AudioError) as blocks:
        open_blocks(path, longer_than=SAMPLE_RATE)
    assert str(blocks.value) == str(whole.value)
    assert {"nan": "NaN", "clipped": "clipped", "silent": "silent"}[fault] in str(whole.value)
