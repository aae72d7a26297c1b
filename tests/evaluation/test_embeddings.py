"""Evaluation embeddings: segments of single-clip speakers, and reuse of what was extracted."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from keras_spkid.baselines import build_mfcc_stats
from keras_spkid.data.corpora import load_corpus
from keras_spkid.data.store import segment_starts
from keras_spkid.evaluation.embeddings import (
    corpus_embeddings,
    embedding_tag,
    segment_clip,
    segment_id,
)
from keras_spkid.inference.model_io import load_embedding_model

CLIP = "103/103-1240-0000.flac"  # librispeech_1utt: 14.085 s at 16 kHz = 225,360 samples


def test_segment_starts():
    np.testing.assert_array_equal(segment_starts(225_360, 32_000), np.arange(7) * 32_000)
    assert len(segment_starts(225_360, 48_000)) == 4  # 3 s segments, 1.085 s dropped
    assert len(segment_starts(64_000, 32_000)) == 2  # exact multiple: nothing dropped
    np.testing.assert_array_equal(segment_starts(20_000, 32_000), [0])  # short clip: itself
    assert segment_clip(segment_id(CLIP, 3)) == CLIP and segment_id(CLIP, 3) == CLIP + "#3"
    assert embedding_tag() == "full" and embedding_tag(1, 1.0) == "crop1s"
    assert embedding_tag(10) == "10crops" and embedding_tag(1, 1.0, 2.0) == "seg2s-crop1s"


@pytest.fixture(scope="module")
def mfcc_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "mfcc.keras"
    build_mfcc_stats().save(path)
    return load_embedding_model(path)


def test_a_known_clip_gives_its_segments_and_they_are_reused(
    shared_data, mfcc_model, tmp_path, caplog
):
    corpus = load_corpus("librispeech_1utt", shared_data)
    catalogue = corpus.filter(speakers=["103"])
    assert [u.path for u in catalogue] == [CLIP]
    two = corpus_embeddings(mfcc_model, catalogue, tmp_path, segment_seconds=2.0, progress=False)
    assert list(two.paths) == [f"{CLIP}#{k}" for k in range(7)]
    assert set(two.speakers) == {"103"} and np.allclose(two.seconds, 2.0)
    assert two.info["segment_seconds"] == 2.0 and two.embeddings.shape == (7, 40)
    assert (tmp_path / "embeddings-librispeech_1utt-seg2s-full.npz").is_file()
    three = corpus_embeddings(mfcc_model, catalogue, tmp_path, segment_seconds=3.0, progress=False)
    assert len(three) == 4
    caplog.set_level(logging.INFO, "keras_spkid")
    caplog.clear()
    again = corpus_embeddings(mfcc_model, catalogue, tmp_path, segment_seconds=2.0, progress=False)
    assert "reusing" in caplog.text
    np.testing.assert_array_equal(again.embeddings, two.embeddings)
    # a 1 s centre crop of each segment: a different protocol, a different file
    crops = corpus_embeddings(
        mfcc_model,
        catalogue,
        tmp_path,
        crops=1,
        crop_seconds=1.0,
        segment_seconds=2.0,
        progress=False,
    )
    assert list(crops.paths) == list(two.paths)
    assert not np.allclose(crops.embeddings, two.embeddings)
