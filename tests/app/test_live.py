"""The Live tab's listener on browser-like chunks: 48 kHz int16 stereo every 0.1 s,
updates every 0.5 s of audio, a 3 s window, nothing to identify in silence."""

from __future__ import annotations

import numpy as np
import soxr

from keras_spkid.app.live import MIN_SPEECH_SECONDS, WINDOW_SECONDS, LiveListener
from keras_spkid.audio.io import SAMPLE_RATE


def browser_chunks(x: np.ndarray, rate: int = 48000, seconds: float = 0.1):
    """``x`` (16 kHz float) as a browser streams it: int16 stereo chunks at ``rate``."""
    y = soxr.resample(x, SAMPLE_RATE, rate)
    pcm = np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm], axis=1)
    size = int(rate * seconds)
    return [stereo[i : i + size] for i in range(0, len(stereo) - size + 1, size)]


def test_updates_are_paced_and_windowed(readers):
    listener = LiveListener()
    steps = [listener.push(48000, chunk) for chunk in browser_chunks(readers["alice"].query)]
    due = [i for i, step in enumerate(steps) if step.due]
    # every 0.5 s of 0.1 s chunks (the first waits for soxr's few ms of filter delay)
    assert np.diff(due).tolist() == [5] * (len(due) - 1) and due[0] in (4, 5)
    given = [steps[i] for i in due if steps[i].window is not None]
    assert len(given) >= len(due) - 5  # only the first two seconds lack enough speech
    for step in given:  # the speech frames of the last 3 s, pauses left out
        assert MIN_SPEECH_SECONDS <= step.speech_seconds <= WINDOW_SECONDS
        assert len(step.window) == round(step.speech_seconds * SAMPLE_RATE)
    assert min(s.speech_seconds for s in given) < WINDOW_SECONDS - 0.1  # the reader pauses


def test_stream_resampling_matches_whole_clip(readers):
    x = readers["alice"].query[: 3 * SAMPLE_RATE]
    listener = LiveListener(window_seconds=10)
    for chunk in browser_chunks(x, 44100):
        listener.push(44100, chunk)
    y = listener._audio
    # soxr keeps a few ms back for its filter: compare the aligned common part
    lag = int(np.argmax(np.correlate(x[:4000], y[:4000], "full"))) - 3999
    assert abs(lag) < 200
    a, b = (x[-lag:], y) if lag < 0 else (x, y[lag:])
    n = min(len(a), len(b)) - 100
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.99


def test_silence_gives_due_updates_without_a_window():
    listener = LiveListener()
    steps = [listener.push(48000, np.zeros((4800, 2), np.int16)) for _ in range(22)]
    assert sum(step.due for step in steps) == 4
    assert all(step.window is None and step.speech_seconds == 0 for step in steps)
