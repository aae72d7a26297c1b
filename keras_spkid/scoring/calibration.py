"""Decision thresholds chosen on a development trial list, stored with a model or gallery.

A similarity score only becomes a decision ("same speaker", "unknown") with a threshold,
and the right threshold depends on the model, the score normalisation and the errors a
user can live with. :func:`calibrate` picks it on labelled dev trials either at the
equal-error point or at a target false-accept rate (e.g. 1%: at most one impostor in a
hundred accepted), and records the error rates it implies so a user can see the trade.
The result is a small JSON file: ``calibration.json`` next to a ``model.keras``, or a
field of a gallery ``.npz``.

That pair threshold is the equal-error point of single clip pairs. The decision users
meet is open-set identification (the best of ``N`` prototypes, or "unknown"), so the file
also holds ``open_set``: the :class:`~keras_spkid.scoring.decision.OpenSetDecision`
chosen by ``spkid eval calibrate-openset``, which :meth:`Calibration.decision` returns
(and the pair threshold only for files made before it).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from keras_spkid.atomic import write_text_atomic
from keras_spkid.errors import DataError
from keras_spkid.scoring.decision import OpenSetDecision
from keras_spkid.scoring.verification import (
    equal_error_rate,
    error_rates,
    threshold_at_far,
)

METHODS = ("eer", "far")
CALIBRATION_FILE = "calibration.json"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A threshold on cosine (or AS-Norm) scores and what it costs on the dev trials.

    Attributes:
        threshold: accept "same speaker" when ``score >= threshold``.
        method: ``"eer"`` (equal-error point) or ``"far"`` (target false-accept rate).
        target_far: the false-accept rate asked for (``method="far"``), else ``None``.
        false_accept: false-accept rate of ``threshold`` on the dev trials.
        false_reject: false-reject (miss) rate of ``threshold`` on the dev trials.
        eer: equal error rate of the dev trials.
        score: ``"cosine"`` or ``"asnorm"``: which scores the threshold applies to.
        trials: where the dev trials came from (a file name or a description).
        num_target, num_nontarget: how many trials of each kind it was chosen on.
        open_set: the open-set decision (:meth:`OpenSetDecision.to_dict`), if calibrated.
    """

    threshold: float
    method: str
    false_accept: float
    false_reject: float
    eer: float
    target_far: float | None = None
    score: str = "cosine"
    trials: str = ""
    num_target: int = 0
    num_nontarget: int = 0
    open_set: dict | None = None

    def decision(self) -> OpenSetDecision:
        """The open-set decision: the calibrated one, else this pair threshold for any
        gallery (files made before open-set calibration)."""
        if self.open_set is not None:
            return OpenSetDecision.from_dict(self.open_set, "calibration open_set")
        return OpenSetDecision.fixed(
            self.threshold,
            self.score,
            "pair threshold (equal-error point of single clip pairs), not calibrated "
            "on open-set galleries",
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source="<calibration>") -> Calibration:
        try:
            fields = json.loads(text)
            return cls(**fields)
        except (ValueError, TypeError) as error:
            raise DataError(
                f"{source}: not a calibration file ({error}); "
                "make one with 'spkid eval verify --calibrate'"
            ) from None

    def save(self, path) -> None:
        """Write atomically (temp file, then rename)."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> Calibration:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: calibration file not found")
        return cls.from_json(path.read_text(), path)

    def describe(self) -> str:
        how = (
            "equal-error point"
            if self.method == "eer"
            else f"false-accept rate {100 * self.target_far:g}%"
        )
        return (
            f"threshold {self.threshold:.4f} ({self.score} score, chosen at the {how}: "
            f"{100 * self.false_accept:.2f}% false accepts, "
            f"{100 * self.false_reject:.2f}% false rejects; EER {100 * self.eer:.2f}%)"
        )


def calibrate(
    scores, labels, method: str = "eer", far: float = 0.01, score: str = "cosine", trials: str = ""
) -> Calibration:
    """Choose a threshold on dev trial ``scores`` with 0/1 ``labels``.

    Args:
        scores: ``[n]`` similarity scores (higher means more likely the same speaker).
        labels: ``[n]`` 1 for same-speaker trials, 0 otherwise.
        method: ``"eer"`` or ``"far"``.
        far: target false-accept rate for ``method="far"``.
        score, trials: recorded in the result (which scores, which trial list).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    labels = np.asarray(labels)
    eer, eer_threshold = equal_error_rate(scores, labels)
    threshold = eer_threshold if method == "eer" else threshold_at_far(scores, labels, far)
    rates = error_rates(scores, labels)
    i = int(np.searchsorted(rates.thresholds, threshold))
    return Calibration(
        threshold=float(threshold),
        method=method,
        false_accept=float(rates.false_alarm[i]),
        false_reject=float(rates.miss[i]),
        eer=float(eer),
        target_far=float(far) if method == "far" else None,
        score=score,
        trials=str(trials),
        num_target=int(labels.sum()),
        num_nontarget=int(labels.size - labels.sum()),
    )


def all_pair_trials(embeddings, speakers) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores and 0/1 labels of every pair of different items of one set.

    Args:
        embeddings: ``[n, d]`` L2-normalised embeddings.
        speakers: ``[n]`` speaker labels.

    Returns:
        ``scores`` and ``labels``, each ``[n * (n - 1) / 2]``.
    """
    embeddings = np.asarray(embeddings, np.float32)
    speakers = np.asarray(speakers)
    upper = np.triu_indices(len(embeddings), 1)
    scores = (embeddings @ embeddings.T)[upper]
    return scores, (speakers[:, None] == speakers[None, :])[upper].astype(np.int8)


def calibrate_balanced(
    groups: dict[str, tuple[np.ndarray, np.ndarray]],
    method: str = "eer",
    far: float = 0.01,
    seed: int = 0,
) -> tuple[Calibration, dict]:
    """One threshold for several kinds of speech (corpora, channels), none dominating.

    Each group (e.g. the dev speakers of one corpus, scored only against each other: a
    telephone voice against a studio voice is too easy a non-target to teach anything)
    contributes the same number of target and of non-target trials, drawn at random
    without replacement down to the smallest group's counts. :func:`calibrate` then
    picks the threshold on the union.

    Args:
        groups: ``{name: (scores, labels)}``, each with both kinds of trial.
        method, far: as for :func:`calibrate`.
        seed: seeds the subsampling.

    Returns:
        The calibration, and per group ``{"targets", "nontargets", "eer",
        "false_accept", "false_reject"}`` (rates at the chosen threshold, on all the
        group's trials).
    """
    rng = np.random.default_rng(seed)
    if not groups:
        raise DataError("no trial groups to calibrate on")
    for name, (_, labels) in groups.items():
        if not 0 < int(np.sum(labels)) < len(labels):
            raise DataError(f"{name}: needs both same-speaker and different-speaker trials")
    n_target = min(int(np.sum(labels)) for _, labels in groups.values())
    n_nontarget = min(int(np.sum(labels == 0)) for _, labels in groups.values())
    scores, labels = [], []
    for group_scores, group_labels in groups.values():
        for value, count in ((1, n_target), (0, n_nontarget)):
            chosen = rng.choice(np.flatnonzero(group_labels == value), count, replace=False)
            scores.append(group_scores[chosen])
            labels.append(np.full(count, value, np.int8))
    calibration = calibrate(
        np.concatenate(scores),
        np.concatenate(labels),
        method,
        far,
        trials=" + ".join(groups) + f" (balanced, {n_target} targets and "
        f"{n_nontarget} non-targets each)",
    )
    per_group = {}
    for name, (group_scores, group_labels) in groups.items():
        accepted = group_scores >= calibration.threshold
        per_group[name] = {
            "targets": int(np.sum(group_labels)),
            "nontargets": int(np.sum(group_labels == 0)),
            "eer": float(equal_error_rate(group_scores, group_labels)[0]),
            "false_accept": float(np.mean(accepted[group_labels == 0])),
            "false_reject": float(np.mean(~accepted[group_labels == 1])),
        }
    return calibration, per_group
