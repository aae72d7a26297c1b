"""The open-set decision: name the closest enrolled speaker, or say "unknown".

Every path that can answer "unknown" (``Gallery.identify``, the demo's Identify, Live
and Verify tabs, ``closest_celeb.py query``) decides here, with :func:`decide`.

The decision made is not a pair decision: a query is compared with every enrolled
prototype (the mean of ``K`` clips) and the best of ``N`` scores is kept. The best of
many impostor scores grows with the gallery size ``N``, and a prototype of more clips
scores higher against everyone, so one pair-calibrated threshold names most strangers
in a gallery of 20. An :class:`OpenSetDecision` therefore holds a table of thresholds
over gallery sizes and enrolment counts, chosen on dev speakers at a target rate of
strangers named (see :mod:`keras_spkid.evaluation.openset_calibration`), and is read
between its grid points by interpolation on ``log N`` and ``log K`` (beyond the largest
gallery it is extrapolated along the last segment, never downwards).

Scores are cosine similarities, or AS-Norm scores (:class:`~keras_spkid.scoring.asnorm.
ASNorm`) against a cohort of training speakers shipped with the model when
``score == "asnorm"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_spkid.errors import DataError
from keras_spkid.scoring.asnorm import ASNorm

UNKNOWN = "unknown"
SCORES = ("cosine", "asnorm")
COHORT_FILE = "cohort.npy"
"""AS-Norm cohort ``[C, d]`` float32 shipped next to a model's ``calibration.json``."""


def load_cohort(folder) -> np.ndarray | None:
    """The AS-Norm cohort shipped in ``folder`` (a model's folder), or ``None``.

    Raises:
        DataError: the file exists but is not a ``[C, d]`` array.
    """
    path = Path(folder) / COHORT_FILE
    if not path.is_file():
        return None
    try:
        cohort = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the AS-Norm cohort ({error})") from None
    if cohort.ndim != 2 or len(cohort) < 2:
        raise DataError(f"{path}: an AS-Norm cohort is [speakers, dim], got {list(cohort.shape)}")
    return cohort.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class OpenSetDecision:
    """Thresholds for naming the best-scoring enrolled speaker.

    Attributes:
        thresholds: ``[len(enrol_counts)][len(gallery_sizes)]``: name the best match
            when its score is at least the threshold for the gallery's size and the
            number of clips that match was enrolled with.
        gallery_sizes: increasing gallery sizes ``N`` of the table's columns.
        enrol_counts: increasing clips per speaker ``K`` of the table's rows.
        score: ``"cosine"``, or ``"asnorm"`` (needs a cohort at decision time).
        cohort_top_k: AS-Norm's top-k (``score == "asnorm"``).
        target_far: the rate of strangers named it was chosen for (``None``: set by hand).
        source: how it was chosen, in words.
        measured: what it measured where it was chosen (free-form, for reports).
    """

    thresholds: tuple[tuple[float, ...], ...]
    gallery_sizes: tuple[int, ...] = (1,)
    enrol_counts: tuple[int, ...] = (1,)
    score: str = "cosine"
    cohort_top_k: int | None = None
    target_far: float | None = None
    source: str = ""
    measured: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self):
        table = np.asarray(self.thresholds, np.float64)
        if table.shape != (len(self.enrol_counts), len(self.gallery_sizes)):
            raise ValueError(
                f"thresholds must be [{len(self.enrol_counts)}][{len(self.gallery_sizes)}] "
                f"(enrol counts x gallery sizes), got {list(table.shape)}"
            )
        for name in ("gallery_sizes", "enrol_counts"):
            values = getattr(self, name)
            if any(v < 1 for v in values) or list(values) != sorted(set(values)):
                raise ValueError(f"{name} must be increasing and >= 1, got {list(values)}")
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {self.score!r}")
        if not np.isfinite(table).all():
            raise ValueError("thresholds must be finite")

    @classmethod
    def fixed(cls, threshold: float, score: str = "cosine", source: str = "") -> OpenSetDecision:
        """One threshold whatever the gallery (e.g. set by hand, or an old gallery file)."""
        return cls(((float(threshold),),), score=score, source=source or "fixed threshold")

    def threshold_for(self, gallery_size: int, enrol_count) -> np.ndarray | float:
        """Threshold(s) for a gallery of ``gallery_size`` people and ``enrol_count`` clips
        (a number or an array of them, one per candidate)."""
        table = np.asarray(self.thresholds, np.float64)
        log_n = np.log(np.asarray(self.gallery_sizes, np.float64))
        x = np.log(max(int(gallery_size), 1))
        if len(log_n) == 1:
            per_k = table[:, 0]
        elif x <= log_n[-1]:
            per_k = np.array([np.interp(x, log_n, row) for row in table])
        else:  # extrapolate along the last segment, never downwards
            slope = np.maximum((table[:, -1] - table[:, -2]) / (log_n[-1] - log_n[-2]), 0.0)
            per_k = table[:, -1] + slope * (x - log_n[-1])
        log_k = np.log(np.asarray(self.enrol_counts, np.float64))
        counts = np.log(np.maximum(np.asarray(enrol_count, np.float64), 1.0))
        if len(log_k) == 1:
            result = np.full(counts.shape, per_k[0])
        else:
            result = np.interp(counts, log_k, per_k)
        return float(result) if np.ndim(result) == 0 else result

    def describe(self, gallery_size: int | None = None, enrol_count: int | None = None) -> str:
        """One line: what the threshold is and how it was chosen."""
        how = self.source or "set by hand"
        if self.target_far is not None:
            how = f"at most {100 * self.target_far:g}% of strangers named; {how}"
        if len(self.gallery_sizes) == 1 and len(self.enrol_counts) == 1:
            return f"threshold {self.thresholds[0][0]:.4f} ({self.score} score; {how})"
        where = ""
        if gallery_size:
            value = self.threshold_for(gallery_size, enrol_count or 1)
            where = (
                f" {value:.4f} for {gallery_size} people enrolled with {enrol_count or 1} "
                "clip(s) each;"
            )
        return f"threshold by gallery size and clips per person ({self.score} score;{where} {how})"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["thresholds"] = [[round(float(t), 6) for t in row] for row in self.thresholds]
        return data

    @classmethod
    def from_dict(cls, data: dict, source="<decision>") -> OpenSetDecision:
        try:
            fields = dict(data)
            fields["thresholds"] = tuple(tuple(float(t) for t in row) for row in data["thresholds"])
            for name in ("gallery_sizes", "enrol_counts"):
                if name in fields:
                    fields[name] = tuple(int(v) for v in fields[name])
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{source}: not an open-set decision ({error})") from None


@dataclasses.dataclass(frozen=True)
class Decisions:
    """The decision for each of ``q`` queries against a gallery of ``S`` people.

    Attributes:
        scores: ``[q, S]`` the scores decided on (cosine or AS-Norm).
        best: ``[q]`` index of the best-scoring speaker.
        threshold: ``[q]`` the threshold that applied to it.
        known: ``[q]`` whether it is named (else "unknown").
    """

    scores: np.ndarray
    best: np.ndarray
    threshold: np.ndarray
    known: np.ndarray


def decision_scores(
    queries, prototypes, decision: OpenSetDecision | None, cohort=None
) -> np.ndarray:
    """``[q, S]`` scores of L2-normalised ``queries [q, d]`` against ``prototypes [S, d]``.

    Cosine, or AS-Norm against ``cohort [C, d]`` when the decision is on AS-Norm scores.

    Raises:
        DataError: AS-Norm is asked for without a cohort.
    """
    queries = _normalise(queries)
    prototypes = _normalise(prototypes)
    cosine = queries @ prototypes.T
    if decision is None or decision.score == "cosine":
        return cosine
    if cohort is None or len(cohort) < 2:
        raise DataError(
            "this decision is on AS-Norm scores but no cohort came with the model or "
            "gallery (recalibrate with 'spkid eval calibrate-openset')"
        )
    norm = ASNorm(cohort, top_k=decision.cohort_top_k or 200)
    mu_e, sd_e = norm.stats(prototypes)
    mu_t, sd_t = norm.stats(queries)
    return norm.normalize(cosine, (mu_e[None, :], sd_e[None, :]), (mu_t[:, None], sd_t[:, None]))


def cosine_thresholds(
    thresholds, queries, prototypes, decision: OpenSetDecision | None, cohort=None
) -> np.ndarray:
    """``[q, S]`` the cosine score each prototype needs to reach each query's threshold.

    For cosine decisions that is the threshold itself; an AS-Norm score is increasing
    in the cosine score, so an AS-Norm threshold ``t`` is the cosine score
    ``(2 t + mu_e / sd_e + mu_t / sd_t) / (1 / sd_e + 1 / sd_t)`` (a chart on a 0-1
    cosine axis can then draw it).

    Args:
        thresholds: ``[q]`` thresholds on the decision's scores.
    """
    thresholds = np.asarray(thresholds, np.float64)[:, None]
    queries, prototypes = _normalise(queries), _normalise(prototypes)
    if decision is None or decision.score == "cosine":
        return np.broadcast_to(thresholds, (len(queries), len(prototypes))).copy()
    norm = ASNorm(cohort, top_k=decision.cohort_top_k or 200)
    mu_e, sd_e = norm.stats(prototypes)
    mu_t, sd_t = norm.stats(queries)
    mu_e, sd_e, mu_t, sd_t = mu_e[None, :], sd_e[None, :], mu_t[:, None], sd_t[:, None]
    return (2 * thresholds + mu_e / sd_e + mu_t / sd_t) / (1 / sd_e + 1 / sd_t)


def decide(scores, counts, decision: OpenSetDecision | None) -> Decisions:
    """Name the best-scoring speaker of each query, or not.

    Args:
        scores: ``[q, S]`` from :func:`decision_scores`.
        counts: ``[S]`` clips each speaker was enrolled with.
        decision: the thresholds (``None``: the best match is always named).
    """
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    counts = np.asarray(counts)
    if scores.shape[1] == 0:
        raise DataError("the gallery is empty: enrol speakers first")
    best = np.argmax(scores, axis=1)
    top = scores[np.arange(len(scores)), best]
    threshold, known = name_best(top, counts[best], scores.shape[1], decision)
    return Decisions(scores, best, threshold, known)


def name_best(
    best_scores, best_counts, gallery_size: int, decision: OpenSetDecision | None
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each query's best match is named: ``(threshold [q], known [q])``.

    Args:
        best_scores: ``[q]`` each query's best score (from :func:`decision_scores`).
        best_counts: ``[q]`` clips the best-scoring speaker was enrolled with.
        gallery_size: how many people are enrolled.
        decision: the thresholds (``None``: the best match is always named).
    """
    best_scores = np.asarray(best_scores, np.float64)
    if decision is None:
        threshold = np.full(best_scores.shape, -np.inf)
    else:
        threshold = np.broadcast_to(
            np.asarray(decision.threshold_for(gallery_size, best_counts), np.float64),
            best_scores.shape,
        )
    return threshold, best_scores >= threshold


def _normalise(x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
