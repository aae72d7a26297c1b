"""Small MUSAN and RIR folders in the official layouts, built from real speech.

These are inputs, not stand-ins for the code under test: the speech category holds
real LibriSpeech speech from ``../shared/data``; noise is generated (coloured noise, one
file shorter than a chunk), music is a 44.1 kHz stereo chord (so the split has to
resample and mix down), and the room impulse responses are a direct path followed by
exponentially decaying noise, as simulated RIRs look.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from keras_spkid.data.catalogue import read_manifest

SPEECH_CLIPS = [
    "103/103-1240-0000.flac",
    "1040/1040-133433-0000.flac",
    "1069/1069-133699-0000.flac",
    "1098/1098-133695-0000.flac",
]
ROOMS = ("smallroom", "mediumroom", "largeroom")


@pytest.fixture(scope="session")
def musan_raw(shared_data, tmp_path_factory):
    """``<root>/musan/{speech,noise,music}/<subset>/<file>.wav`` plus MUSAN's extra files."""
    root = tmp_path_factory.mktemp("musan_raw")
    musan = root / "musan"
    corpus = read_manifest(shared_data / "librispeech_1utt" / "MANIFEST.tsv")
    rng = np.random.default_rng(0)
    for index, clip in enumerate(SPEECH_CLIPS):
        audio, rate = sf.read(corpus.root / clip, dtype="int16")
        _write(musan / "speech" / "librivox" / f"speech-librivox-{index:04d}.wav", audio, rate)
    for index, seconds in enumerate((12.0, 2.0)):
        white = rng.standard_normal(int(seconds * 16000))
        brown = np.cumsum(white)
        brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # remove the drift
        noise = 0.3 * brown / np.max(np.abs(brown))
        _write(
            musan / "noise" / "free-sound" / f"noise-free-sound-{index:04d}.wav",
            np.round(noise * 32767).astype(np.int16),
            16000,
        )
    t = np.arange(int(10.0 * 44100)) / 44100
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 4
    stereo = np.stack([chord, np.roll(chord, 100)], axis=1)
    _write(
        musan / "music" / "fma" / "music-fma-0000.wav",
        np.round(stereo * 32767).astype(np.int16),
        44100,
    )
    (musan / "README").write_text("MUSAN\n")
    (musan / "noise" / "free-sound" / "ANNOTATIONS").write_text("noise annotations\n")
    return root


@pytest.fixture(scope="session")
def rirs_raw(tmp_path_factory):
    """``<root>/RIRS_NOISES/simulated_rirs/<room>/Room00N/Room00N-0000M.wav`` and a
    ``pointsource_noises`` folder (not wanted by the preparation)."""
    root = tmp_path_factory.mktemp("rirs_raw")
    rng = np.random.default_rng(1)
    for room_index, room in enumerate(ROOMS):
        for number in (1, 2):
            name = f"Room{number:03d}"
            decay = 0.05 * (room_index + 1)
            taps = int(4 * decay * 16000)
            rir = synthetic_rir(taps, decay, rng)
            _write(
                root / "RIRS_NOISES" / "simulated_rirs" / room / name / f"{name}-00001.wav",
                np.round(rir * 32767).astype(np.int16),
                16000,
            )
    _write(
        root / "RIRS_NOISES" / "pointsource_noises" / "noise-1.wav", np.zeros(1600, np.int16), 16000
    )
    return root


def synthetic_rir(taps: int, decay_seconds: float, rng) -> np.ndarray:
    """A direct path after 2 ms, then exponentially decaying reflections; peak 0.9."""
    t = np.arange(taps) / 16000
    rir = 0.3 * rng.standard_normal(taps) * np.exp(-t / decay_seconds)
    rir[:32] = 0.0
    rir[32] = 1.0
    return 0.9 * rir / np.max(np.abs(rir))


def _write(path, samples, rate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype="PCM_16")
