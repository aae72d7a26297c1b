"""Decision thresholds chosen on a development trial list, stored with a model or gallery.

A similarity score only becomes a decision ("same speaker", "unknown") with a threshold,
and the right threshold depends on the model, the score normalisation and the errors a
user can live with. :func:`calibrate` picks it on labelled dev trials either at the
equal-error point or at a target false-accept rate (e.g. 1%: at most one impostor in a
hundred accepted), and records the error rates it implies so a user can see the trade.
The result is a small JSON file: ``calibration.json`` next to a ``model.keras``, or a
field of a gallery ``.npz``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from keras_spkid.atomic import write_text_atomic
from keras_spkid.errors import DataError
from keras_spkid.evaluation.verification import (
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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source="<calibration>") -> Calibration:
        try:
            fields = json.loads(text)
            return cls(**fields)
        except (ValueError, TypeError) as error:
            raise DataError(f"{source}: not a calibration file ({error}); "
                            "make one with 'spkid eval verify --calibrate'") from None

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
        how = ("equal-error point" if self.method == "eer"
               else f"false-accept rate {100 * self.target_far:g}%")
        return (f"threshold {self.threshold:.4f} ({self.score} score, chosen at the {how}: "
                f"{100 * self.false_accept:.2f}% false accepts, "
                f"{100 * self.false_reject:.2f}% false rejects; EER {100 * self.eer:.2f}%)")


def calibrate(scores, labels, method: str = "eer", far: float = 0.01, score: str = "cosine",
              trials: str = "") -> Calibration:
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
        threshold=float(threshold), method=method, false_accept=float(rates.false_alarm[i]),
        false_reject=float(rates.miss[i]), eer=float(eer),
        target_far=float(far) if method == "far" else None, score=score, trials=str(trials),
        num_target=int(labels.sum()), num_nontarget=int(labels.size - labels.sum()),
    )
