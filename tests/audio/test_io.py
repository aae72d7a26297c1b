"""Audio I/O on real speech and on files made here in every supported format."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile

from keras_spkid.audio.io import SAMPLE_RATE, load_audio, prepare_waveform
from keras_spkid.errors import AudioError

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _tone(rate, seconds=1.0, freq=440.0, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _dominant_frequency(x, rate=SAMPLE_RATE):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)]


def test_real_8khz_telephone_flac_is_resampled_to_16k(wuw):
    utt = wuw.utterances[0]
    x = load_audio(wuw.abspath(utt))
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / SAMPLE_RATE - utt.seconds) < 0.01
    assert np.abs(x).max() <= 1.0
    assert abs(float(x.mean())) < 1e-3


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_resampling_keeps_pitch_and_duration(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.wav"
    soundfile.write(path, _tone(rate, 1.0, 440.0), rate, subtype="PCM_16")
    x = load_audio(path)
    assert abs(len(x) - SAMPLE_RATE) <= 2
    assert abs(_dominant_frequency(x) - 440.0) < 2.0


def test_stereo_int16_browser_buffer_is_mixed_and_scaled():
    left = (_tone(48000, 0.5, 300.0) * 32767).astype(np.int16)
    buffer = np.stack([left, np.zeros_like(left)], axis=1)  # [n, 2] int16 at 48 kHz
    x = prepare_waveform(buffer, 48000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 8000) <= 2
    assert 0.2 < np.abs(x).max() < 0.3  # half of a 0.5 tone after the mono mix


def test_dc_offset_is_removed():
    x = prepare_waveform(_tone(16000) + 0.3, 16000)
    assert abs(float(x.mean())) < 1e-4


@pytest.mark.parametrize("channels", [1, 2])
def test_the_callers_buffer_is_changed_only_with_overwrite(channels):
    buffer = _tone(16000, channels=channels) + np.float32(0.3)
    kept = buffer.copy()
    x = prepare_waveform(buffer, 16000)
    np.testing.assert_array_equal(buffer, kept)  # a caller's array is never changed
    y = prepare_waveform(buffer, 16000, overwrite=True)  # load_audio's decoded buffer
    np.testing.assert_array_equal(x, y)
    if channels == 1:  # DC removed in place: no second copy of a long waveform
        assert np.shares_memory(y, buffer)


@needs_ffmpeg
@pytest.mark.parametrize("extension", [".m4a", ".mp3", ".ogg"])
def test_compressed_formats_decode(tmp_path, extension):
    wav = tmp_path / "src.wav"
    soundfile.write(wav, _tone(44100, 1.0, 440.0, channels=2), 44100)
    out = tmp_path / f"clip{extension}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), str(out)], check=True)
    x = load_audio(out)
    assert abs(len(x) / SAMPLE_RATE - 1.0) < 0.1  # encoders add priming samples
    assert abs(_dominant_frequency(x) - 440.0) < 3.0


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load_audio(tmp_path / "nope.wav")


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.flac"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty.flac: file is empty \(0 bytes\)"):
        load_audio(path)


def test_corrupt_flac(tmp_path, wuw):
    data = wuw.abspath(wuw.utterances[0]).read_bytes()
    path = tmp_path / "corrupt.flac"
    path.write_bytes(data[:4] + bytes(len(data) - 4))  # keep the magic, zero the rest
    with pytest.raises(AudioError, match="corrupt.flac: cannot decode audio"):
        load_audio(path)


def test_text_file_with_audio_extension(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioError, match="notes.wav: cannot decode audio"):
        load_audio(path)


def test_too_short_clip(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, _tone(16000, 0.1), 16000)
    assert len(load_audio(path)) == 1600  # accepted without a minimum
    with pytest.raises(AudioError, match=r"short.wav: too short: 0.10 s \(minimum 0.20 s\)"):
        load_audio(path, min_seconds=0.2)


def test_silence(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silence.wav: clip is silent"):
        load_audio(path)
    assert load_audio(path, allow_silence=True).shape == (16000,)


# ----- audio that would give a silent wrong answer (issue 14, items 3, 5, 8, 9) -----


@pytest.fixture(scope="module")
def speech(shared_data):
    """Six seconds of a real LibriSpeech reader, 16 kHz float32."""
    return load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")[
        : 6 * SAMPLE_RATE
    ]


def test_a_long_file_is_decoded_without_copies_of_the_waveform(tmp_path, speech):
    path = tmp_path / "five_minutes.wav"
    soundfile.write(path, np.resize(speech, 300 * SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    tracemalloc.start()
    try:
        x = load_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(x) == 300 * SAMPLE_RATE and abs(float(x.mean())) < 1e-6
    # the decoded buffer is the waveform (DC removed in place, checks in blocks); a copy
    # for the DC removal and one for |x| made it 3x
    assert peak < 1.3 * x.nbytes, f"peak {peak / 2**20:.1f} MiB for {x.nbytes / 2**20:.1f} MiB"


def test_nan_or_inf_samples_are_refused_naming_the_file(tmp_path, speech):
    for bad, name in ((np.nan, "nan.wav"), (np.inf, "inf.wav")):
        x = speech.copy()
        x[3 * SAMPLE_RATE : 3 * SAMPLE_RATE + 960] = bad  # 0.06 s
        path = tmp_path / name
        soundfile.write(path, x, SAMPLE_RATE, subtype="FLOAT")
        with pytest.raises(AudioError) as caught:
            load_audio(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: 960 samples are NaN or infinite (the first at 3.00 s)")
        assert "\n" not in message
    with pytest.raises(AudioError, match="buffer: 1 samples are NaN"):
        prepare_waveform(np.where(np.arange(48000) == 5, np.nan, 0.1), 48000, source="buffer")


def test_heavily_clipped_audio_is_refused(tmp_path, speech):
    path = tmp_path / "loud.wav"
    soundfile.write(path, 50 * speech, SAMPLE_RATE, subtype="FLOAT")  # float audio x50
    with pytest.raises(
        AudioError, match=r"loud.wav: clipped: \d+% of the samples are at full scale"
    ):
        load_audio(path)
    pcm = tmp_path / "loud16.wav"  # the same, clipped on the way into 16-bit PCM
    soundfile.write(pcm, np.clip(50 * speech, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match="loud16.wav: clipped"):
        load_audio(pcm)
    mild = tmp_path / "mild.wav"  # a few peaks at full scale are normal in real recordings
    soundfile.write(mild, 0.999 * speech / np.abs(speech).max(), SAMPLE_RATE, subtype="PCM_16")
    assert len(load_audio(mild)) == len(speech)


def test_opposite_phase_stereo_uses_one_channel(tmp_path, speech, caplog):
    path = tmp_path / "inverted.wav"
    soundfile.write(path, np.stack([speech, -speech], axis=1), SAMPLE_RATE, subtype="PCM_16")
    with caplog.at_level("WARNING"):
        x = load_audio(path)  # the mix is silent: was "clip is silent"
    assert "channels cancel" in caplog.text and "inverted.wav" in caplog.text
    assert np.corrcoef(x, speech)[0, 1] > 0.999
    if shutil.which("ffmpeg"):  # formats ffmpeg decodes: the same, lossy
        m4a = tmp_path / "inverted.m4a"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), str(m4a)], check=True)
        y = load_audio(m4a)
        n = min(len(y), len(speech))
        lags = range(2000)  # the encoder's priming delay; either channel (polarity) will do
        assert (
            max(abs(np.corrcoef(y[k : k + n - 2000], speech[: n - 2000])[0, 1]) for k in lags)
            > 0.99
        )
    normal = tmp_path / "stereo.wav"  # ordinary stereo is still the mean of the channels
    soundfile.write(normal, np.stack([speech, 0.5 * speech], axis=1), SAMPLE_RATE)
    np.testing.assert_allclose(load_audio(normal), 0.75 * (speech - speech.mean()), atol=1e-3)


def test_corrupt_flac_is_refused_not_decoded_to_noise(tmp_path, shared_data):
    data = bytearray((shared_data / "librispeech_1utt" / "1040/1040-133433-0000.flac").read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(2000, len(data), 200):  # 200 damaged bytes in 230 kB
        data[i] = int(rng.integers(0, 256))
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.flac"  # an interrupted download
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    for path in (damaged, truncated):
        with pytest.raises(AudioError, match=f"{path.name}: cannot decode audio"):
            load_audio(path)


@needs_ffmpeg
def test_corrupt_compressed_file_is_refused(tmp_path, speech):
    wav = tmp_path / "src.wav"
    soundfile.write(wav, speech, SAMPLE_RATE)
    m4a = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), str(m4a)], check=True)
    data = bytearray(m4a.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)
    m4a.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="clip.m4a: cannot decode audio"):
        load_audio(m4a)


def test_too_long_file_is_refused_before_decoding(tmp_path, speech):
    path = tmp_path / "long.flac"
    soundfile.write(path, speech, SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"long.flac: too long: 0.1 min or more \(at most"):
        load_audio(path, max_seconds=5.0)
    assert len(load_audio(path, max_seconds=6.0)) == len(speech)
