"""Energy VAD: levels in dBFS, hysteresis (short clicks ignored, pauses bridged), the
noise floor, and real speech against silence."""

from __future__ import annotations

import numpy as np

from keras_spkid.app.vad import EnergyVAD, frame_levels, speech_seconds
from keras_spkid.audio.io import SAMPLE_RATE


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 500 * t)).astype(np.float32)


def test_frame_levels_are_rms_dbfs():
    levels = frame_levels(tone(0.5, 0.5))
    assert len(levels) == 25  # 20 ms frames
    np.testing.assert_allclose(levels, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.05)
    assert frame_levels(np.zeros(SAMPLE_RATE)).max() < -100


def test_speech_in_real_reading_not_in_silence(readers):
    x = readers["alice"].query
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
