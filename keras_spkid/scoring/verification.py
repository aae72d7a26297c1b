"""Speaker-verification metrics: EER, minDCF and operating thresholds from trial scores.

Scores are similarities (higher = more likely the same speaker); labels are 1 for
target (same-speaker) trials and 0 for non-target trials. Every threshold ``t``
accepts trials with ``score >= t``; its miss rate is the fraction of targets below
``t`` and its false-alarm rate the fraction of non-targets at or above ``t``.

* :func:`equal_error_rate` interpolates linearly between the two ROC points where
  the miss and false-alarm rates cross, so it does not depend on how finely the
  scores happen to be spread (voxceleb_trainer takes ``max(fpr, fnr)`` at the closest
  point, meta-SR the false-alarm rate there; both are within one step of this value).
* :func:`min_dcf` is the normalised minimum detection cost
  ``min_t (c_miss p P_miss(t) + c_fa (1-p) P_fa(t)) / min(c_miss p, c_fa (1-p))``.
* :func:`verification_metrics` gathers EER and minDCF (p 0.01, 0.05) for a report.
* :func:`threshold_at_far` picks the threshold for a target false-accept rate, the
  usual way to choose an "unknown speaker" threshold on a development trial list.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ErrorRates:
    """Miss and false-alarm rates at every distinct threshold, thresholds ascending.

    ``miss[i]`` and ``false_alarm[i]`` are the rates when accepting ``score >=
    thresholds[i]``; a last point with threshold ``+inf`` (accept nothing) is added.
    """

    thresholds: np.ndarray
    miss: np.ndarray
    false_alarm: np.ndarray


def error_rates(scores, labels) -> ErrorRates:
    """Miss / false-alarm rates over all thresholds (``O(n log n)``).

    Raises:
        ValueError: shapes differ, labels are not 0/1, or one class is missing.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (different speakers) or 1 (same speaker)")
    targets = int(labels.sum())
    nontargets = labels.size - targets
    if targets == 0 or nontargets == 0:
        raise ValueError("need both target (1) and non-target (0) trials")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Rejecting everything below index i: misses = targets among the first i trials.
    misses = np.concatenate([[0], np.cumsum(sorted_labels)])
    rejected_nontargets = np.concatenate([[0], np.cumsum(1 - sorted_labels)])
    # Keep one point per distinct score (the first trial with that score).
    first = np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]])
    starts = np.flatnonzero(first)
    idx = np.concatenate([starts, [labels.size]])
    thresholds = np.concatenate([sorted_scores[starts], [np.inf]])
    return ErrorRates(
        thresholds=thresholds,
        miss=misses[idx] / targets,
        false_alarm=(nontargets - rejected_nontargets[idx]) / nontargets,
    )


def equal_error_rate(scores, labels) -> tuple[float, float]:
    """``(EER, threshold)``: where miss and false-alarm rates are equal.

    The EER is interpolated on the segment between the last ROC point with
    ``miss <= false_alarm`` and the next one; the threshold is that of the first point
    with ``miss >= false_alarm`` (accepting ``score >= threshold``).
    """
    rates = error_rates(scores, labels)
    diff = rates.miss - rates.false_alarm  # rises from -1 to +1
    i = int(np.flatnonzero(diff >= 0)[0])
    if i == 0 or diff[i] == 0:
        return float(rates.miss[i]), float(rates.thresholds[i])
    # Linear interpolation between points i-1 (diff < 0) and i (diff >= 0).
    w = -diff[i - 1] / (diff[i] - diff[i - 1])
    eer = (1 - w) * rates.miss[i - 1] + w * rates.miss[i]
    return float(eer), float(rates.thresholds[i])


def min_dcf(
    scores, labels, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> tuple[float, float]:
    """``(normalised minDCF, threshold)`` for a target prior ``p_target``."""
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    rates = error_rates(scores, labels)
    cost = c_miss * p_target * rates.miss + c_fa * (1 - p_target) * rates.false_alarm
    best = int(np.argmin(cost))
    default = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(cost[best] / default), float(rates.thresholds[best])


def threshold_at_far(scores, labels, far: float) -> float:
    """Lowest threshold whose false-accept rate is at most ``far`` (0 <= far <= 1)."""
    if not 0 <= far <= 1:
        raise ValueError(f"far must be in [0, 1], got {far}")
    rates = error_rates(scores, labels)
    return float(rates.thresholds[int(np.flatnonzero(rates.false_alarm <= far)[0])])


def verification_metrics(scores, labels) -> dict[str, float]:
    """The usual report row: EER (and its threshold), minDCF at p_target 0.01 and 0.05."""
    eer, threshold = equal_error_rate(scores, labels)
    return {
        "eer": eer,
        "eer_threshold": threshold,
        "min_dcf_0.01": min_dcf(scores, labels, 0.01)[0],
        "min_dcf_0.05": min_dcf(scores, labels, 0.05)[0],
    }
