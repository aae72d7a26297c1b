"""Closed-set identification and kNN classification on embeddings.

Both need the same speakers on the enrolment (train) and test sides without leaking a
recording across them: a clip from the same YouTube video or phone call as an enrolment
clip is much easier than a new session, and a random clip split overstates accuracy.
:func:`recording_disjoint_split` therefore splits each speaker's *recordings*.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_spkid.data.catalogue import Catalogue, Utterance
from keras_spkid.errors import DataError
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.vectors import l2_normalize


def recording_disjoint_split(
    embeddings: EmbeddingSet, test_fraction: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(enrol, test)`` with no recording on both sides.

    Speakers with a single recording go wholly to the enrolment side (they stay as
    distractors but are never tested).
    """
    speakers = embeddings.require_speakers()
    utts = [
        Utterance(p, s, r) for p, s, r in zip(embeddings.paths, speakers, embeddings.recordings())
    ]
    parts = Catalogue(".", utts).recording_disjoint_split(
        {"enrol": 1 - test_fraction, "test": test_fraction}, seed=seed
    )
    row = {p: i for i, p in enumerate(embeddings.paths)}
    enrol = np.asarray(sorted(row[u.path] for u in parts["enrol"]), np.int64)
    test = np.asarray(sorted(row[u.path] for u in parts["test"]), np.int64)
    if test.size == 0:
        raise DataError(
            "no speaker has two recordings, so no recording-disjoint test clip "
            "exists (give an explicit split, e.g. VoxCeleb's iden_split.txt)"
        )
    return enrol, test


@dataclasses.dataclass(frozen=True)
class IdentificationResult:
    top1: float
    top5: float
    macro: float
    num_test: int
    num_speakers: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _summarise(true, ranked, test_speakers, num_speakers) -> IdentificationResult:
    hit1 = ranked[:, 0] == true
    hit5 = (ranked[:, :5] == true[:, None]).any(axis=1)
    per_speaker = [hit1[test_speakers == s].mean() for s in np.unique(test_speakers)]
    return IdentificationResult(
        float(hit1.mean()),
        float(hit5.mean()),
        float(np.mean(per_speaker)),
        int(true.size),
        int(num_speakers),
    )


def closed_set_identification(enrol: EmbeddingSet, test: EmbeddingSet) -> IdentificationResult:
    """Top-1, top-5 and macro (mean per-speaker top-1) accuracy of nearest prototypes.

    Every test speaker must be enrolled; prototypes are the mean normalised enrolment
    embeddings of each speaker, compared by cosine.
    """
    from keras_spkid.search.gallery import Gallery

    gallery = Gallery.from_embeddings(enrol.embeddings, enrol.require_speakers("enrolment set"))
    test_speakers = test.require_speakers("test set")
    unknown = sorted(set(test_speakers) - set(gallery.speakers))
    if unknown:
        raise DataError(
            f"{len(unknown)} test speakers are not enrolled, e.g. {unknown[0]!r} "
            "(closed-set identification needs every test speaker enrolled)"
        )
    scores = l2_normalize(test.embeddings) @ l2_normalize(gallery.prototypes).T
    ranked = np.argsort(-scores, axis=1, kind="stable")
    true = np.searchsorted(np.asarray(gallery.speakers), test_speakers)
    return _summarise(true, ranked, test_speakers, len(gallery))


def knn_identification(
    enrol: EmbeddingSet,
    test: EmbeddingSet,
    k: int = 5,
    metric: str = "cosine",
    weights: str = "uniform",
) -> IdentificationResult:
    """Accuracy of scikit-learn's ``KNeighborsClassifier`` fitted on the enrolment clips.

    Top-5 ranks the classes by the classifier's ``predict_proba``.

    Raises:
        DataError: ``k`` is under 1 or more than the enrolment clips (it is not cut
            silently: the report names the ``k`` asked for).
    """
    from sklearn.neighbors import KNeighborsClassifier

    speakers = enrol.require_speakers("enrolment set")
    test_speakers = test.require_speakers("test set")
    if not 1 <= k <= len(enrol):
        raise DataError(
            f"--k {k}: kNN needs 1 to {len(enrol)} neighbours (the enrolment clips); "
            "choose a smaller k"
        )
    classifier = KNeighborsClassifier(
        n_neighbors=k, metric=metric, weights=weights, algorithm="brute"
    )
    classifier.fit(l2_normalize(enrol.embeddings), speakers)
    proba = classifier.predict_proba(l2_normalize(test.embeddings))
    ranked = np.argsort(-proba, axis=1, kind="stable")
    classes = classifier.classes_
    known = set(classes)
    true = np.array([np.searchsorted(classes, s) if s in known else -1 for s in test_speakers])
    return _summarise(true, ranked, test_speakers, len(classes))
