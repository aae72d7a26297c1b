"""Fixtures of the demo tests: two real LibriSpeech readers, their clips as files, the
default model (loaded once) and a fresh :class:`SpeakerService` per test.

Readers 5703 and 5652 (``librispeech_1utt`` test split, unseen in training) are ones the
interim default model separates well: every 2 s window of one reader's last 5 s scores at
least 0.25 higher against their own prototype than against the other's. Enrolment uses
three 3 s segments from 0-9 s of each clip, queries the rest (no overlap).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile

from keras_spkid.audio.io import SAMPLE_RATE, load_audio

READERS = {"alice": "5703/5703-47198-0000.flac", "bob": "5652/5652-19215-0000.flac"}
"""Display name used in the tests -> reader clip under librispeech_1utt/."""
SEGMENT = 3 * SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class Reader:
    """One real speaker: enrolment segments and a later query, as arrays and as WAV files."""

    enrol: list[np.ndarray]
    query: np.ndarray
    enrol_files: list[Path]
    query_file: Path


@pytest.fixture(scope="session")
def readers(shared_data, tmp_path_factory) -> dict[str, Reader]:
    folder = tmp_path_factory.mktemp("readers")
    result = {}
    for name, path in READERS.items():
        x = load_audio(shared_data / "librispeech_1utt" / path)
        enrol = [x[i * SEGMENT : (i + 1) * SEGMENT] for i in range(3)]
        query = x[3 * SEGMENT :]
        files = []
        for i, segment in enumerate(enrol, 1):
            files.append(folder / f"{name}_{i}.wav")
            soundfile.write(files[-1], segment, SAMPLE_RATE, subtype="PCM_16")
        query_file = folder / f"{name}_query.wav"
        soundfile.write(query_file, query, SAMPLE_RATE, subtype="PCM_16")
        result[name] = Reader(enrol, query, files, query_file)
    return result


@pytest.fixture(scope="session")
def silence_file(tmp_path_factory) -> Path:
    """Two seconds of digital silence, 16-bit PCM."""
    path = tmp_path_factory.mktemp("silence") / "silence.wav"
    soundfile.write(path, np.zeros(2 * SAMPLE_RATE, np.int16), SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def model(preset):
    return preset(None)


@pytest.fixture
def service(model, tmp_path):
    from keras_spkid.app.service import SpeakerService

    return SpeakerService(model, tmp_path / "people" / "gallery.npz")
