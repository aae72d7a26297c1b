"""The built-in celebrity gallery: shipped small, credited, made with the shipped model,
and what ``recipes/default_gallery.sh`` rebuilds from ../shared/data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from keras_spkid.app.default_gallery import build_default_gallery
from keras_spkid.app.galleries import DEFAULT_CELEBRITIES, MODEL_KEY
from keras_spkid.inference.gallery_fit import model_fingerprint
from keras_spkid.inference.model_io import DEFAULT_MODEL
from keras_spkid.search.gallery import Gallery


def test_shipped_gallery_belongs_to_the_shipped_model(model):
    assert model.path == DEFAULT_MODEL
    gallery = Gallery.load(DEFAULT_CELEBRITIES)
    assert gallery.meta[MODEL_KEY] == model_fingerprint(model), (
        "the default model changed: rebuild the gallery with recipes/default_gallery.sh"
    )
    assert len(gallery) == 251 and gallery.threshold is None
    assert all(name == f"LibriSpeech {s}" for s, name in zip(gallery.speakers, gallery.names))
    assert "LibriSpeech" in gallery.meta["source"] and "CC BY 4.0" in gallery.meta["source"]
    assert DEFAULT_CELEBRITIES.stat().st_size < 1 << 20


@pytest.mark.slow  # embeds 7 segments with the default CAM++ (about 1 min on 2 cores)
def test_rebuild_gives_the_shipped_prototypes(model, shared_data, tmp_path):
    corpus = tmp_path / "librispeech_1utt"
    corpus.mkdir()
    lines = (shared_data / "librispeech_1utt" / "MANIFEST.tsv").read_text().splitlines()
    chosen = [lines[0]] + [
        line for line in lines[1:] if line.split("\t")[0] in ("5703", "7190", "1034")
    ]  # 14.7 s, 2.7 s (one segment), 7.9 s
    (corpus / "MANIFEST.tsv").write_text("\n".join(chosen) + "\n")
    for line in chosen[1:]:
        speaker = line.split("\t")[0]
        shutil.copytree(
            shared_data / "librispeech_1utt" / speaker, corpus / speaker, dirs_exist_ok=True
        )
    rebuilt = build_default_gallery(model, tmp_path)
    shipped = Gallery.load(DEFAULT_CELEBRITIES)
    assert sorted(rebuilt.speakers) == ["1034", "5703", "7190"]
    assert dict(zip(rebuilt.speakers, rebuilt.counts.tolist())) == {"1034": 2, "5703": 4, "7190": 1}
    for i, speaker in enumerate(rebuilt.speakers):
        j = shipped.speakers.index(speaker)
        np.testing.assert_allclose(rebuilt.prototypes[i], shipped.prototypes[j], atol=1e-4)
