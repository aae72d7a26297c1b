"""Shared pytest fixtures: the real-speech data root and small derived catalogues."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The library takes its data root from SPKID_DATA or an argument only; the tests know
# where the shared data sits next to this checkout.
os.environ.setdefault("SPKID_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

import keras
import numpy as np
import pytest

from keras_spkid.data.corpora import data_root, load_corpus


@pytest.fixture(scope="session")
def preset():
    """``preset(name)``: a shipped model by name (``None``: the default), loaded once per
    test session (loading CAM++ takes about 9 s, and its first call traces for 18 s)."""
    from keras_spkid.inference.model_io import load_embedding_model, resolve_model_path

    loaded = {}

    def load(name=None):
        path = resolve_model_path(name)
        if path not in loaded:
            loaded[path] = load_embedding_model(name)
        return loaded[path]

    return load


@pytest.fixture(scope="session")
def shared_data():
    """Path of ``../shared/data`` (or ``$SPKID_DATA``); skips when it is absent."""
    root = data_root()
    if not (root / "wuw_corpus_ii" / "MANIFEST.tsv").is_file():
        pytest.skip(f"real speech data not found at {root} (set SPKID_DATA to ../shared/data)")
    return root


@pytest.fixture(scope="session")
def voxceleb_meta(shared_data):
    """Folder of the real VoxCeleb metadata files."""
    meta = shared_data / "voxceleb_meta"
    if not (meta / "veri_test.txt").is_file():
        pytest.skip(f"VoxCeleb metadata not found at {meta}")
    return meta


@pytest.fixture(scope="session")
def wuw(shared_data):
    """Catalogue of WUW Corpus II (8 kHz telephone speech, 215 speakers)."""
    return load_corpus("wuw_corpus_ii", shared_data)


@pytest.fixture
def mixed_precision():
    """Run a test under the ``mixed_float16`` Keras policy, restoring the previous one."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.fixture(scope="session")
def long_speech(shared_data):
    """``[samples]`` float32: LibriSpeech test readers one after another, 16 kHz, three
    minutes (a long file made of real speech)."""
    import soundfile

    from keras_spkid.data.corpora import corpus_split

    catalogue = corpus_split("librispeech_1utt", "test", shared_data)
    clips, total = [], 0
    for utterance in catalogue:
        x, rate = soundfile.read(catalogue.abspath(utterance), dtype="float32")
        assert rate == 16000
        clips.append(x)
        total += len(x)
        if total >= 180 * 16000:
            break
    return np.concatenate(clips)[: 180 * 16000]
