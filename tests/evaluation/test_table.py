"""Pieces of the accuracy table on the real WUW test metadata (no audio embedded)."""

from __future__ import annotations

import numpy as np

from keras_spkid.data.corpora import corpus_split
from keras_spkid.data.voxceleb import read_trials
from keras_spkid.evaluation.table import (
    TRIAL_LISTS,
    paired_fewshot,
    verification_row,
)
from keras_spkid.inference.embedding_set import EmbeddingSet


def _embeddings(catalogue, noise, seed=0):
    """Each clip: its speaker's random code plus noise (a stand-in for a model)."""
    rng = np.random.default_rng(seed)
    speakers = [u.speaker for u in catalogue]
    codes = {s: rng.normal(size=16) for s in set(speakers)}
    vectors = np.stack([codes[s] for s in speakers]) + noise * rng.normal(size=(len(speakers), 16))
    return EmbeddingSet([u.path for u in catalogue], vectors, speakers)


def test_wuw_test_trial_lists(shared_data, tmp_path):
    catalogue = corpus_split("wuw_corpus_ii", "test")
    assert len(catalogue.speakers) == 35 and catalogue.name == "wuw_corpus_ii-test"
    sets = {"model": _embeddings(catalogue, 0.5), "baseline": _embeddings(catalogue, 2.0)}
    rows = {t.name: verification_row(catalogue, t, sets, tmp_path, seed=0) for t in TRIAL_LISTS}
    # every same-speaker pair: 32 speakers x C(10, 2) + 2 x C(20, 2) + C(5, 2)
    assert rows["all"]["targets"] == 32 * 45 + 2 * 190 + 10 and rows["all"]["target_speakers"] == 35
    # two speakers called twice, 10 clips per call: 100 cross-call pairs each
    cross = rows["cross_session"]
    assert cross["targets"] == 200 and cross["target_speakers"] == 2
    assert cross["nontargets"] == 10 * cross["targets"]
    trials = read_trials(tmp_path / cross["file"])
    assert trials.labels.sum() == 200
    for row in rows.values():
        assert row["model"]["eer"] < row["baseline"]["eer"]  # less noise, fewer errors
        assert np.isclose(row["difference"]["eer"], row["model"]["eer"] - row["baseline"]["eer"])


def test_paired_cells(shared_data):
    catalogue = corpus_split("wuw_corpus_ii", "test", max_speakers=6)
    assert len(catalogue.speakers) == 6
    same = _embeddings(catalogue, 1.0)
    cell = paired_fewshot({"model": same, "baseline": same}, 5, 1, 5, 40, seed=0)
    assert cell["model"] == cell["baseline"] and cell["difference"]["mean"] == 0.0
    assert cell["difference"]["ci95"] == 0.0 and cell["speakers"] == 6
    better = paired_fewshot(
        {"model": _embeddings(catalogue, 0.8), "baseline": same}, 5, 1, 5, 200, seed=0
    )
    assert better["difference"]["mean"] > 0 and better["model"]["mean"] < 1
    assert better["difference"]["ci95"] < better["model"]["ci95"] + better["baseline"]["ci95"]
    impossible = paired_fewshot({"model": same, "baseline": same}, 10, 1, 5, 10, seed=0)
    assert "need 10 speakers" in impossible["note"]
