"""Clips as the page hands them over: browser buffers (int16, 44.1/48 kHz, stereo) and
files, converted to 16 kHz mono; short, silent and broken clips refused in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile
import soxr

from keras_spkid.app.clips import MAX_SECONDS, clip_folder, clip_waveform
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.errors import AudioError


def as_browser(x: np.ndarray, rate: int, channels: int) -> tuple[int, np.ndarray]:
    y = soxr.resample(x, SAMPLE_RATE, rate)
    pcm = np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)
    return rate, (np.stack([pcm] * channels, axis=1) if channels > 1 else pcm)


@pytest.mark.parametrize("rate,channels", [(44100, 1), (48000, 2), (44100, 2)])
def test_browser_int16_becomes_16k_mono(readers, rate, channels):
    x = readers["alice"].query[: 2 * SAMPLE_RATE]
    y = clip_waveform(as_browser(x, rate, channels), "clip 1")
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) <= 2
    n = min(len(x), len(y))
    assert np.max(np.abs(y[:n] - (x[:n] - x.mean()))) < 0.01


def test_file_from_the_page(readers):
    path = readers["bob"].enrol_files[0]
    np.testing.assert_allclose(
        clip_waveform(str(path), "clip 1"), readers["bob"].enrol[0], atol=1e-3
    )


def test_refusals_name_the_clip_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    speechlike = (0.3 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    cases = [
        (None, "clip 2: no audio"),
        ((48000, np.zeros(0, np.int16)), "clip 2: no audio samples"),
        ((SAMPLE_RATE, speechlike[: int(0.4 * SAMPLE_RATE)]), "clip 2: too short: 0.40 s"),
        ((44100, np.zeros((44100, 2), np.int16)), "clip 2: clip is silent"),
        (
            (SAMPLE_RATE, (1e-3 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)),
            "clip 2: no speech found",
        ),
        (str(broken), "clip 2: cannot decode audio"),
    ]
    for clip, start in cases:
        with pytest.raises(AudioError) as caught:
            clip_waveform(clip, "clip 2")
        message = str(caught.value)
        assert message.startswith(start) and "\n" not in message and str(tmp_path) not in message


def test_clip_folder_is_the_demos_own_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    with clip_folder() as folder:
        assert folder.parent == tmp_path and os.environ["GRADIO_TEMP_DIR"] == str(folder)
        (folder / "upload").mkdir()
        (folder / "upload" / "clip.wav").write_bytes(b"RIFF")
    assert not folder.exists() and os.environ["GRADIO_TEMP_DIR"] == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_long_clips_are_refused_before_decoding(tmp_path):
    seconds = int(MAX_SECONDS) + 1
    with pytest.raises(AudioError, match=r"^clip 1: too long: 5.0 min \(at most 5 min\)"):
        clip_waveform((8000, np.zeros(8000 * seconds, np.int16)), "clip 1")
    path = tmp_path / "long.flac"
    soundfile.write(path, np.zeros(8000 * seconds, np.int16), 8000)
    with pytest.raises(AudioError, match=r"^clip 1: too long: 5.0 min or more") as caught:
        clip_waveform(str(path), "clip 1")
    assert str(tmp_path) not in str(caught.value)
