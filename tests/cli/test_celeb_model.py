"""``closest_celeb.py``: a gallery remembers its model; another model is a one-line error."""

from __future__ import annotations

import numpy as np

from keras_spkid.cli.celeb import main as closest_celeb
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.search.gallery import MODEL_KEY, Gallery


def _gallery(tmp_path, dim=64, model="runs/other/best/model.keras", sha="ab" * 32):
    rng = np.random.default_rng(0)
    speakers = np.repeat(["a", "b"], 3)
    info = {"model": model, "model_sha256": sha}
    EmbeddingSet(
        [f"{s}/{i}.wav" for i, s in enumerate(speakers)],
        rng.normal(size=(6, dim)).astype(np.float32),
        speakers,
        None,
        info,
    ).save(tmp_path / "e.npz")
    output = tmp_path / "g.npz"
    assert (
        closest_celeb(["build", "--embeddings", str(tmp_path / "e.npz"), "--output", str(output)])
        == 0
    )
    return output


def test_gallery_records_its_model_and_refuses_another(tmp_path, capsys, shared_data):
    gallery = _gallery(tmp_path)
    meta = Gallery.load(gallery).meta
    assert meta[MODEL_KEY] == "ab" * 32 and meta["model"] == "runs/other/best/model.keras"
    audio = shared_data / "librispeech_1utt" / "5703" / "5703-47198-0000.flac"
    capsys.readouterr()
    query = ["query", "--model", "conv6", "--gallery", str(gallery), "--audio", str(audio)]
    status = closest_celeb(query)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "made with runs/other/best/model.keras (sha256 abababababab)" in err[0]
    assert "not with " in err[0] and "pretrained/conv6/model.keras" in err[0]


def test_gallery_of_another_size_names_both_models(tmp_path, capsys, shared_data):
    gallery = _gallery(tmp_path, dim=40, model="mfcc_stats.keras")
    audio = shared_data / "librispeech_1utt" / "5703" / "5703-47198-0000.flac"
    capsys.readouterr()
    query = ["query", "--model", "conv6", "--gallery", str(gallery), "--audio", str(audio)]
    assert closest_celeb(query) == 2
    err = capsys.readouterr().err.strip()
    assert "made with mfcc_stats.keras (40-dim embeddings), not with" in err and "(64-dim)" in err
