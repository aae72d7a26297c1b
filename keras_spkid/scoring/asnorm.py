"""Adaptive symmetric score normalisation (AS-Norm) against a cohort of impostors.

A raw cosine score means different things for different speakers: some voices are
close to many others. AS-Norm measures, for the enrolment side ``e`` and the test side
``t``, the mean and standard deviation of their ``top_k`` highest cosine scores against
a cohort of other speakers, and normalises::

    s' = ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2

(Matejka et al., 2017; "adaptive" = only the top-k cohort scores). The cohort should be
speakers never used as enrolment or test speakers, e.g. the training speakers'
prototypes or utterances.
"""

from __future__ import annotations

import numpy as np

from keras_spkid.vectors import l2_normalize


class ASNorm:
    """AS-Norm with a fixed cohort.

    Args:
        cohort: ``[C, d]`` cohort embeddings (normalised on the way in).
        top_k: how many of the highest cohort scores make each side's statistics.
        chunk: rows scored against the cohort at a time (bounds memory).
    """

    def __init__(self, cohort, top_k: int = 200, chunk: int = 4096):
        self.cohort = l2_normalize(cohort)
        if len(self.cohort) < 2:
            raise ValueError("an AS-Norm cohort needs at least 2 embeddings")
        self.top_k = int(min(top_k, len(self.cohort)))
        if self.top_k < 2:
            raise ValueError(f"top_k must be >= 2, got {top_k}")
        self.chunk = chunk

    def stats(self, embeddings) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` ``[n]`` of each embedding's top-k cohort cosine scores."""
        embeddings = l2_normalize(np.atleast_2d(embeddings))
        means, stds = [], []
        for start in range(0, len(embeddings), self.chunk):
            scores = embeddings[start : start + self.chunk] @ self.cohort.T
            top = -np.partition(-scores, self.top_k - 1, axis=1)[:, : self.top_k]
            means.append(top.mean(axis=1))
            stds.append(top.std(axis=1))
        return np.concatenate(means), np.maximum(np.concatenate(stds), 1e-6)

    def normalize(self, scores, enrol_stats, test_stats) -> np.ndarray:
        """Normalise raw scores; ``scores`` broadcasts against the stats' shapes.

        For trial lists pass ``[n]`` scores with ``[n]`` stats of each side; for a
        query-against-gallery matrix pass ``[q, S]`` scores, gallery stats shaped
        ``[1, S]`` and query stats shaped ``[q, 1]``.
        """
        mu_e, sd_e = enrol_stats
        mu_t, sd_t = test_stats
        scores = np.asarray(scores, dtype=np.float64)
        return 0.5 * ((scores - mu_e) / sd_e + (scores - mu_t) / sd_t)
