"""Energy VAD: levels in dBFS, hysteresis (short clicks ignored, pauses bridged), the
noise floor, real speech against silence and noise, and the one minimum speech."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.audio.vad import (
    MIN_SPEECH_SECONDS,
    EnergyVAD,
    frame_levels,
    require_speech,
    speech_seconds,
)
from keras_spkid.data.corpora import load_corpus
from keras_spkid.errors import AudioError


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 500 * t)).astype(np.float32)


def test_frame_levels_are_rms_dbfs():
    levels = frame_levels(tone(0.5, 0.5))
    assert len(levels) == 25  # 20 ms frames
    np.testing.assert_allclose(levels, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.05)
    assert frame_levels(np.zeros(SAMPLE_RATE)).max() < -100


@pytest.fixture(scope="module")
def reading(shared_data):
    """A real LibriSpeech reader (test split), 16 kHz."""
    return load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")


def test_speech_in_real_reading_not_in_silence(reading):
    x = reading
    assert speech_seconds(x) > 0.5 * len(x) / SAMPLE_RATE
    assert speech_seconds(np.zeros(3 * SAMPLE_RATE, np.float32)) == 0
    quiet_noise = np.random.default_rng(0).normal(0, 10 ** (-65 / 20), 3 * SAMPLE_RATE)
    assert speech_seconds(quiet_noise.astype(np.float32)) == 0


def test_hysteresis_ignores_clicks_and_bridges_pauses():
    quiet, loud = tone(0.5, 0.0), tone(0.5, 0.3)
    click = np.concatenate([quiet, tone(0.04, 0.3), quiet])  # 40 ms < 60 ms onset
    assert not EnergyVAD().process(click).any()
    pause = np.concatenate([loud, tone(0.2, 0.0), loud])  # 200 ms < 300 ms hangover
    flags = EnergyVAD().process(pause)
    first_on = int(np.argmax(flags))
    assert flags[first_on:].all()
    long_pause = np.concatenate([loud, tone(0.6, 0.0)])
    assert not EnergyVAD().process(long_pause)[-5:].any()


def test_state_carries_across_chunks_of_any_size():
    x = np.concatenate([tone(0.3, 0.0), tone(0.6, 0.3), tone(0.3, 0.0)])
    whole = EnergyVAD().process(x)
    vad = EnergyVAD()
    pieces = [vad.process(x[i : i + 1234]) for i in range(0, len(x), 1234)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole[: sum(map(len, pieces))])


def test_steady_noise_raises_the_onset_level():
    vad = EnergyVAD()
    hum = tone(6.0, 0.05)  # -29 dBFS, louder than the absolute speech level
    assert vad.process(hum[:SAMPLE_RATE]).any()  # unknown floor: taken for speech at first
    vad.process(hum[SAMPLE_RATE:])
    assert vad.onset_level() > -29 + 10
    assert not vad.process(tone(1.0, 0.05))[-10:].any()  # the same hum is now background


def test_shortest_and_quietest_real_clips_have_the_minimum_speech(shared_data):
    """FSDD digits are the shortest real clips (0.14 s and up) and theo's the quietest
    (peaks at -37 dBFS); every one of the 3,000 passes (bench/bench_audio_checks.py), here
    the 40 shortest and 40 of theo's."""
    fsdd = load_corpus("fsdd", shared_data)
    shortest = sorted(fsdd, key=lambda u: u.seconds)[:40]
    quiet = [u for u in fsdd if u.speaker == "theo"][:40]
    for utterance in shortest + quiet:
        x = load_audio(fsdd.abspath(utterance))
        assert require_speech(x, utterance.path) >= MIN_SPEECH_SECONDS


@pytest.mark.parametrize("level", [1e-3, 0.01, 0.1, 0.5])
def test_steady_noise_hum_and_tone_hold_no_speech(level):
    rng = np.random.default_rng(0)
    noise = (level * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    pink = scipy.signal.lfilter([1.0], [1.0, -0.5], noise)  # tilted towards low frequencies
    pink = (level * pink / pink.std()).astype(np.float32)
    for x in (noise, pink, tone(3.0, level)):
        assert speech_seconds(x) == 0
        with pytest.raises(AudioError, match="noise: no speech found"):
            require_speech(x, "noise")
    padded = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), noise])  # silence, then noise
    assert speech_seconds(padded) == 0


def test_speech_in_noise_is_still_speech(reading):
    x = reading[: 3 * SAMPLE_RATE]
    noisy = x + np.random.default_rng(0).normal(0, 0.3 * x.std(), x.size).astype(np.float32)
    assert speech_seconds(noisy) > 0.5 * speech_seconds(x) > 0.5


def test_too_short_and_too_little_speech_are_refused(reading):
    with pytest.raises(AudioError, match=r"^a.wav: too short: 0.05 s \(at least 0.1 s of speech"):
        require_speech(reading[SAMPLE_RATE : SAMPLE_RATE + 800], "a.wav")
    levels = frame_levels(reading)
    windows = np.lib.stride_tricks.sliding_window_view(levels, 4)
    rising = np.where(windows.min(axis=1) > -40, np.ptp(windows, axis=1), 0)
    start = int(np.argmax(rising))  # 80 ms of loud speech that rises or falls
    burst = reading[start * 320 : (start + 4) * 320]
    silence = np.zeros(SAMPLE_RATE, np.float32)
    with pytest.raises(AudioError, match=r"^b.wav: too little speech: 0.0\d s \(at least 0.1 s"):
        require_speech(np.concatenate([silence, burst, silence]), "b.wav")
