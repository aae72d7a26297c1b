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


def _corpus(folder, sources, names):
    import shutil

    from keras_spkid.data.catalogue import read_manifest

    for name, source in zip(names, sources):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
    rows = "".join(f"{n.split('/')[0]}\t{n}\n" for n in names)
    (folder / "MANIFEST.tsv").write_text("speaker\tpath\n" + rows)
    return read_manifest(folder / "MANIFEST.tsv")


def test_embeddings_are_not_reused_for_another_root_or_a_grown_manifest(
    wuw, mfcc_model, tmp_path, caplog
):
    caplog.set_level(logging.INFO, "keras_spkid")
    from keras_spkid.evaluation.embeddings import list_embeddings

    clips = [wuw.abspath(u) for u in wuw.utterances[:8]]
    names = ["s1/a.flac", "s1/b.flac", "s2/c.flac"]
    first = _corpus(tmp_path / "one" / "data", clips[:3], names)
    second = _corpus(tmp_path / "two" / "data", clips[3:6], names)  # same name "data"
    out = tmp_path / "out"
    a = corpus_embeddings(mfcc_model, first, out, progress=False)
    caplog.clear()
    b = corpus_embeddings(mfcc_model, second, out, progress=False)
    assert "reusing" not in caplog.text  # was reused: the first corpus's
    assert not np.allclose(a.embeddings, b.embeddings)
    assert corpus_embeddings(mfcc_model, second, out, progress=False) is not None
    assert "reusing" in caplog.text
    grown = _corpus(tmp_path / "two" / "data", clips[3:7], [*names, "s2/d.flac"])
    assert len(corpus_embeddings(mfcc_model, grown, out, progress=False)) == 4  # was 3
    # trial lists (spkid eval verify): the same paths under another --root
    trials = out / "embeddings-trials.npz"
    x = list_embeddings(mfcc_model, names, first.root, trials, progress=False)
    caplog.clear()
    y = list_embeddings(mfcc_model, names, second.root, trials, progress=False)
    assert "reusing" not in caplog.text
    assert not np.allclose(x.embeddings, y.embeddings)
    list_embeddings(mfcc_model, names, second.root, trials, progress=False)
    assert "reusing" in caplog.text


def test_segments_skip_audio_without_enough_speech(shared_data, mfcc_model, tmp_path, caplog):
    """Issue 14: evaluation applies the same minimum speech as every entry point."""
    from keras_spkid.audio.io import load_audio
    from keras_spkid.evaluation.embeddings import extract_segment_embeddings
    from tests.fixtures.bad_audio import REASONS, make_bad_audio

    speech = load_audio(shared_data / "librispeech_1utt" / CLIP)
    made = make_bad_audio(tmp_path / "audio", speech)
    names = [*REASONS, "inverted_stereo.wav"]
    result = extract_segment_embeddings(
        mfcc_model, names, tmp_path / "audio", tmp_path / "seg.npz", progress=False
    )
    assert {segment_clip(p) for p in result.paths} == {"inverted_stereo.wav"} <= set(made)
    for name, words in REASONS.items():
        assert any(name in r.message and words in r.message for r in caplog.records), name
