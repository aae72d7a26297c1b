"""Galleries: prototypes, exact incremental enrolment, unknown decisions, storage."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.errors import DataError
from keras_spkid.scoring.calibration import Calibration
from keras_spkid.search.gallery import UNKNOWN, Gallery
from keras_spkid.vectors import l2_normalize


def _data(seed=0):
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(4, 16)))
    emb = np.repeat(centres, 5, axis=0) + 0.1 * rng.normal(size=(20, 16))
    speakers = np.repeat(["ann", "bob", "cat", "dan"], 5)
    return l2_normalize(emb), speakers, centres


def test_prototype_is_mean_of_normalised_embeddings():
    emb, speakers, _ = _data()
    gallery = Gallery.from_embeddings(emb * 3.0, speakers, names={"ann": "Ann A."})
    assert gallery.speakers == ["ann", "bob", "cat", "dan"]
    assert gallery.names[0] == "Ann A." and gallery.names[1] == "bob"
    np.testing.assert_allclose(gallery.prototypes[1], emb[5:10].mean(axis=0), atol=1e-6)
    assert gallery.counts.tolist() == [5, 5, 5, 5]


def test_incremental_enrolment_equals_building_at_once():
    emb, speakers, _ = _data()
    built = Gallery.from_embeddings(emb, speakers)
    grown = Gallery.empty()
    for lo, hi in ((0, 2), (5, 10), (2, 5), (10, 20)):
        for s in np.unique(speakers[lo:hi]):
            rows = np.arange(lo, hi)[speakers[lo:hi] == s]
            grown.enrol(s, emb[rows])
    order = [grown.speakers.index(s) for s in built.speakers]
    np.testing.assert_allclose(grown.prototypes[order], built.prototypes, atol=1e-6)
    assert grown.counts[order].tolist() == built.counts.tolist()


def test_identify_and_unknown_threshold():
    emb, speakers, centres = _data()
    gallery = Gallery.from_embeddings(emb, speakers)
    results = gallery.identify(centres[[2, 0]], top_k=3)
    assert [r.decision for r in results] == ["cat", "ann"]
    assert (
        len(results[0].matches) == 3 and results[0].matches[0].score > results[0].matches[1].score
    )
    stranger = l2_normalize(np.random.default_rng(9).normal(size=(1, 16)))
    gallery.set_calibration(Calibration(0.9, "eer", 0.1, 0.1, 0.1))
    assert gallery.identify(stranger)[0].decision == UNKNOWN
    assert gallery.identify(centres[[1]])[0].decision == "bob"
    as_json = gallery.identify(centres[[1]], top_k=2)[0].as_dict()
    assert set(as_json) == {"matches", "decision"} and as_json["matches"][0]["name"] == "bob"


def test_edit_save_load_round_trip(tmp_path):
    emb, speakers, centres = _data()
    gallery = Gallery.from_embeddings(emb, speakers, threshold=0.5, meta={"model": "m.keras"})
    gallery.rename("bob", "Robert")
    gallery.remove("cat")
    gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(tmp_path / "g.npz")
    assert loaded.speakers == ["ann", "bob", "dan"] and loaded.names[1] == "Robert"
    assert loaded.threshold == 0.5 and loaded.meta["model"] == "m.keras"
    np.testing.assert_allclose(loaded.prototypes, gallery.prototypes)
    assert loaded.identify(centres[[1]])[0].decision == "Robert"
    assert not list(tmp_path.rglob("*.part*")), "temporary file left behind"


def test_errors(tmp_path):
    with pytest.raises(DataError, match="gallery is empty"):
        Gallery.empty().identify(np.ones((1, 4)))
    with pytest.raises(DataError, match="not found"):
        Gallery.load(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.npz: cannot read the gallery"):
        Gallery.load(tmp_path / "bad.npz")
    gallery = Gallery.from_embeddings(np.eye(4), ["a", "b", "c", "d"])
    with pytest.raises(DataError, match="another model"):
        gallery.enrol("e", np.ones((1, 8)))
    with pytest.raises(DataError, match="no speaker 'zed'"):
        gallery.remove("zed")


def test_empty_gallery_saves_and_loads(tmp_path):
    gallery = Gallery.from_embeddings(np.eye(4), ["a", "b", "c", "d"])
    for speaker in ["a", "b", "c", "d"]:
        gallery.remove(speaker)
    gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(tmp_path / "g.npz")
    assert len(loaded) == 0
    loaded.enrol("e", np.ones((2, 4)))
    assert loaded.speakers == ["e"] and loaded.dim == 4


def _broken_copy(tmp_path, **changes):
    """The built-in gallery (real readers' prototypes) rewritten with some fields changed."""
    import json

    from keras_spkid.app.galleries import DEFAULT_CELEBRITIES

    with np.load(DEFAULT_CELEBRITIES) as data:
        fields = {k: data[k] for k in data.files}
    meta = json.loads(str(fields["meta"]))
    meta.update(changes.pop("meta", {}))
    fields.update(changes, meta=np.asarray(json.dumps(meta)))
    path = tmp_path / "broken.npz"
    np.savez(path, **fields)
    return path


def _with_nan(prototypes):
    prototypes = prototypes.copy()
    prototypes[3, 5] = np.nan
    return prototypes


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: {"names": f["names"][:-2]}, r"\d+ speaker ids but \d+ names"),
        (lambda f: {"prototypes": _with_nan(f["prototypes"])}, "prototype of .* NaN"),
        (lambda f: {"meta": {"threshold": "high"}}, "threshold 'high' is not a finite number"),
        (lambda f: {"meta": {"threshold": float("nan")}}, "threshold nan is not a finite"),
        (lambda f: {"counts": f["counts"] * 0}, "clip counts must be at least 1"),
        (lambda f: {"prototypes": f["prototypes"][:, :, None]}, "prototypes shaped"),
    ],
)
def test_broken_gallery_files_are_one_line_errors(tmp_path, change, message):
    from keras_spkid.app.galleries import DEFAULT_CELEBRITIES

    with np.load(DEFAULT_CELEBRITIES) as data:
        fields = {k: data[k] for k in data.files}
    path = _broken_copy(tmp_path, **change(fields))
    with pytest.raises(DataError, match=f"broken.npz: not a usable gallery: .*{message}"):
        Gallery.load(path)
