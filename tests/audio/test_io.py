"""Audio I/O on real speech and on files made here in every supported format."""

from __future__ import annotations

import shutil
import subprocess

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
