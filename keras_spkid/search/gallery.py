"""A gallery of enrolled speakers: one prototype per speaker, searchable, stored on disk.

A speaker's prototype is the mean of their L2-normalised utterance embeddings; search
compares queries with its direction (cosine), so scores are comparable across speakers
with different numbers of enrolment clips, and keeping the mean (with the clip count)
lets clips be added later exactly. Whether the best match is named or the query is
"unknown" is decided by the gallery's :class:`~keras_spkid.scoring.decision.
OpenSetDecision` (a threshold by gallery size and clips per speaker, on cosine or AS-Norm
scores, calibrated with the model; or one threshold set by hand), with the same code
as every other path that says "unknown" (:mod:`keras_spkid.scoring.decision`).

The ``.npz`` file holds ``speakers`` (ids), ``names`` (display names), ``prototypes``
``[S, d]`` float32, ``counts`` (clips per speaker), ``meta`` (JSON: decision,
calibration, the model's name and SHA-256) and, for AS-Norm decisions, ``cohort``
``[C, d]``. It is written atomically, so an interrupted save never leaves a broken
gallery; the Gradio demo edits it in place (enrol, rename, delete). A gallery only
answers for the model that made it: :meth:`Gallery.check_model`.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from keras_spkid.atomic import atomic_path
from keras_spkid.errors import DataError
from keras_spkid.scoring.calibration import Calibration
from keras_spkid.scoring.decision import (
    UNKNOWN,
    OpenSetDecision,
    cosine_thresholds,
    decision_scores,
    name_best,
)
from keras_spkid.search.index import SearchIndex, make_index
from keras_spkid.vectors import l2_normalize

__all__ = ["UNKNOWN", "Gallery", "Identification", "Match"]

MODEL_KEY = "model_sha256"
"""``meta`` key of the SHA-256 of the model a gallery was embedded with."""


@dataclasses.dataclass(frozen=True)
class Match:
    """One gallery speaker and its score against a query (cosine, or AS-Norm), and the
    cosine score (the same as ``score`` for cosine decisions)."""

    speaker: str
    name: str
    score: float
    cosine: float | None = None


@dataclasses.dataclass(frozen=True)
class Identification:
    """Top matches of one query, best first, and the decision.

    Attributes:
        matches: best first.
        decision: the best match's name, or "unknown".
        threshold: the threshold the best match was held to (``None``: no decision).
        score: what the scores are: ``"cosine"`` or ``"asnorm"``.
        cosine_threshold: the cosine score the best match needed (``threshold`` itself
            for cosine decisions): where a chart on a 0-1 cosine axis draws the line.
    """

    matches: list[Match]
    decision: str
    threshold: float | None
    score: str = "cosine"
    cosine_threshold: float | None = None

    def as_dict(self) -> dict:
        return {
            "matches": [
                {"name": m.name, "speaker": m.speaker, "score": round(m.score, 6)}
                for m in self.matches
            ],
            "decision": self.decision,
        }


class Gallery:
    """Enrolled speakers and their prototypes.

    Args:
        speakers: ``[S]`` unique speaker ids.
        prototypes: ``[S, d]`` mean of each speaker's L2-normalised embeddings (searched
            after normalisation, so cosine scores do not depend on the clip count).
        names: display names (default: the ids).
        counts: clips each prototype averages (default 1).
        threshold: one cosine threshold set by hand (``None``: see ``decision``).
        meta: free-form provenance (model path, calibration) kept in the file.
        decision: when a query is "unknown" (``None`` and no threshold: never).
        cohort: ``[C, d]`` AS-Norm cohort, for decisions on AS-Norm scores.
    """

    def __init__(
        self,
        speakers,
        prototypes,
        names=None,
        counts=None,
        threshold: float | None = None,
        meta: dict | None = None,
        decision: OpenSetDecision | None = None,
        cohort=None,
    ):
        self.speakers = [str(s) for s in speakers]
        if len(set(self.speakers)) != len(self.speakers):
            raise ValueError("speaker ids of a gallery must be unique")
        prototypes = np.asarray(prototypes, np.float32)
        width = prototypes.shape[-1] if prototypes.ndim == 2 else 0
        self.prototypes = (
            prototypes.reshape(len(self.speakers), -1)
            if len(self.speakers)
            else np.zeros((0, width), np.float32)
        )
        self.names = [str(n) for n in (names if names is not None else self.speakers)]
        self.counts = np.asarray(
            counts if counts is not None else np.ones(len(self.speakers)), np.int64
        )
        self.decision = decision
        if decision is None and threshold is not None:
            self.threshold = threshold
        self.cohort = None if cohort is None else np.asarray(cohort, np.float32)
        self.meta = dict(meta or {})
        self._index: dict[str, SearchIndex] = {}

    def __len__(self) -> int:
        return len(self.speakers)

    @classmethod
    def empty(cls, threshold: float | None = None, meta: dict | None = None) -> "Gallery":
        """A gallery with nobody enrolled yet (its dimension is set by the first enrolment)."""
        return cls([], np.zeros((0, 0), np.float32), threshold=threshold, meta=meta)

    @property
    def dim(self) -> int | None:
        return int(self.prototypes.shape[1]) if len(self) else None

    # ----- building and editing -----
    @classmethod
    def from_embeddings(cls, embeddings, speakers, names: dict | None = None, **kwargs) -> Gallery:
        """One prototype per speaker: the normalised mean of their normalised embeddings."""
        embeddings = l2_normalize(embeddings)
        speakers = np.asarray(speakers, dtype=str)
        ids, inverse, counts = np.unique(speakers, return_inverse=True, return_counts=True)
        sums = np.zeros((len(ids), embeddings.shape[1]), np.float64)
        np.add.at(sums, inverse, embeddings)
        names = names or {}
        return cls(ids, sums / counts[:, None], [names.get(s, s) for s in ids], counts, **kwargs)

    @property
    def threshold(self) -> float | None:
        """The threshold a best match with the typical clip count is held to, for this
        gallery's size (``None``: no decision)."""
        if self.decision is None:
            return None
        typical = int(np.median(self.counts)) if len(self) else 1
        return float(self.decision.threshold_for(max(len(self), 1), typical))

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        """Set one cosine threshold by hand (``None``: always name the closest)."""
        self.decision = None if value is None else OpenSetDecision.fixed(value)

    def set_calibration(self, calibration: Calibration, cohort=None) -> None:
        """Decide as ``calibration`` says (with the model's AS-Norm ``cohort`` if its
        decision is on AS-Norm scores)."""
        self.decision = calibration.decision()
        self.cohort = (
            None
            if self.decision.score != "asnorm" or cohort is None
            else np.asarray(cohort, np.float32)
        )
        self.meta["calibration"] = dataclasses.asdict(calibration)

    def check_model(self, model_name: str, fingerprints, path, fix: str) -> None:
        """Raise :class:`DataError` unless this gallery was made with the model whose
        SHA-256 is one of ``fingerprints`` (galleries that recorded none pass).

        Args:
            model_name: the model being used, for the message.
            fingerprints: its SHA-256 (file, or weights).
            path: the gallery file, for the message.
            fix: what the user should do about a mismatch.
        """
        recorded = self.meta.get(MODEL_KEY)
        if len(self) and recorded and recorded not in set(fingerprints):
            made_with = self.meta.get("model") or "another model"
            if made_with == str(model_name):
                made_with = f"another version of {model_name}"
            raise DataError(
                f"{path}: made with {made_with} (sha256 {recorded[:12]}), "
                f"not with {model_name} ({fix})"
            )

    def _changed(self) -> None:
        self._index.clear()

    def enrol(self, speaker: str, embeddings, name: str | None = None) -> None:
        """Add a speaker, or add clips to an enrolled one (their mean is updated exactly)."""
        embeddings = l2_normalize(np.atleast_2d(embeddings))
        if self.dim is not None and embeddings.shape[1] != self.dim:
            raise DataError(
                f"embeddings of {embeddings.shape[1]} dims cannot join a gallery "
                f"of {self.dim} (was it built with another model?)"
            )
        if speaker in self.speakers:
            i = self.speakers.index(speaker)
            total = self.prototypes[i] * self.counts[i] + embeddings.sum(axis=0)
            self.counts[i] += len(embeddings)
            self.prototypes[i] = total / self.counts[i]
            if name:
                self.names[i] = name
        else:
            self.speakers.append(speaker)
            self.names.append(name or speaker)
            self.counts = np.append(self.counts, len(embeddings))
            mean = embeddings.mean(axis=0, keepdims=True)
            self.prototypes = (
                mean if len(self.speakers) == 1 else np.vstack([self.prototypes, mean])
            )
        self._changed()

    def remove(self, speaker: str) -> None:
        i = self._position(speaker)
        del self.speakers[i], self.names[i]
        self.counts = np.delete(self.counts, i)
        self.prototypes = np.delete(self.prototypes, i, axis=0)
        self._changed()

    def rename(self, speaker: str, name: str) -> None:
        self.names[self._position(speaker)] = str(name)

    def _position(self, speaker: str) -> int:
        try:
            return self.speakers.index(speaker)
        except ValueError:
            raise DataError(f"no speaker {speaker!r} in the gallery") from None

    # ----- search -----
    def index(self, backend: str = "auto") -> SearchIndex:
        if backend not in self._index:
            self._index[backend] = make_index(l2_normalize(self.prototypes), backend)
        return self._index[backend]

    def identify(self, embeddings, top_k: int = 5, backend: str = "auto") -> list[Identification]:
        """Top-``k`` speakers of each query embedding ``[q, d]`` and the decision
        (:func:`~keras_spkid.scoring.decision.name_best`)."""
        if len(self) == 0:
            raise DataError("the gallery is empty: enrol speakers first")
        queries = l2_normalize(np.atleast_2d(embeddings))
        kind = self.decision.score if self.decision is not None else "cosine"
        if kind == "asnorm":  # scores depend on each prototype's cohort statistics
            all_scores = decision_scores(queries, self.prototypes, self.decision, self.cohort)
            indices = np.argsort(-all_scores, axis=1, kind="stable")[:, : min(top_k, len(self))]
            scores = np.take_along_axis(all_scores, indices, axis=1)
            cosines = np.take_along_axis(queries @ l2_normalize(self.prototypes).T, indices, axis=1)
        else:
            scores, indices = self.index(backend).search(queries, top_k)
            cosines = scores
        thresholds, known = name_best(
            scores[:, 0], self.counts[indices[:, 0]], len(self), self.decision
        )
        results = []
        for q, (row_s, row_c, row_i) in enumerate(zip(scores, cosines, indices)):
            matches = [
                Match(self.speakers[i], self.names[i], float(s), float(c))
                for s, c, i in zip(row_s, row_c, row_i)
            ]
            threshold = cosine_threshold = None
            if self.decision is not None:
                threshold = float(thresholds[q])
                cosine_threshold = float(
                    cosine_thresholds(
                        [threshold],
                        queries[q : q + 1],
                        self.prototypes[row_i[:1]],
                        self.decision,
                        self.cohort,
                    )[0, 0]
                )
            results.append(
                Identification(
                    matches,
                    matches[0].name if known[q] else UNKNOWN,
                    threshold,
                    kind,
                    cosine_threshold,
                )
            )
        return results

    # ----- storage -----
    def save(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(
            self.meta,
            threshold=self.threshold,
            decision=None if self.decision is None else self.decision.to_dict(),
        )
        extra = {} if self.cohort is None else {"cohort": self.cohort}
        with atomic_path(path, ".npz") as tmp:
            np.savez(
                tmp,
                speakers=np.asarray(self.speakers, dtype=str),
                names=np.asarray(self.names, dtype=str),
                prototypes=self.prototypes.reshape(len(self), self.prototypes.shape[-1]),
                counts=self.counts,
                meta=np.asarray(json.dumps(meta, sort_keys=True)),
                **extra,
            )

    @classmethod
    def load(cls, path) -> Gallery:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: gallery not found (build one with 'closest_celeb.py build')")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = {"speakers", "names", "prototypes", "counts", "meta"} - set(data.files)
                if missing:
                    raise DataError(
                        f"{path}: not a gallery file (missing {sorted(missing)}; "
                        "build one with 'closest_celeb.py build')"
                    )
                meta = json.loads(str(data["meta"]))
                fields = {k: data[k] for k in ("speakers", "names", "prototypes", "counts")}
                cohort = data["cohort"] if "cohort" in data.files else None
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DataError(f"{path}: cannot read the gallery ({error})") from None
        problem = _check_fields(meta, **fields)
        if problem:
            raise DataError(
                f"{path}: not a usable gallery: {problem} "
                "(rebuild it with 'closest_celeb.py build', or enrol the people again)"
            )
        threshold = meta.pop("threshold", None)  # files made before open-set decisions
        decision = meta.pop("decision", None)
        decision = None if decision is None else OpenSetDecision.from_dict(decision, path)
        try:
            return cls(
                fields["speakers"],
                fields["prototypes"],
                fields["names"],
                fields["counts"],
                None if threshold is None else float(threshold),
                meta,
                decision,
                cohort,
            )
        except ValueError as error:
            raise DataError(f"{path}: not a usable gallery: {error}") from None


def _check_fields(meta, speakers, names, prototypes, counts) -> str | None:
    """What is wrong with the arrays of a gallery file, or ``None``."""
    if not isinstance(meta, dict):
        return "its meta is not a JSON object"
    threshold = meta.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not np.isfinite(threshold)
    ):
        return f"the threshold {threshold!r} is not a finite number"
    if speakers.ndim != 1 or names.ndim != 1 or counts.ndim != 1:
        return "speakers, names and counts must be lists"
    if len(names) != len(speakers) or len(counts) != len(speakers):
        return f"{len(speakers)} speaker ids but {len(names)} names and {len(counts)} clip counts"
    if len(speakers) and (prototypes.ndim != 2 or len(prototypes) != len(speakers)):
        return f"{len(speakers)} speaker ids but prototypes shaped {list(prototypes.shape)}"
    if prototypes.dtype.kind not in "iuf" or counts.dtype.kind not in "iu":
        return "prototypes and counts must be numbers"
    if len(speakers) and not np.all(np.isfinite(prototypes)):
        bad = str(speakers[np.flatnonzero(~np.isfinite(prototypes).all(axis=1))[0]])
        return f"the prototype of {bad!r} holds NaN or infinite values"
    if len(speakers) and np.any(np.linalg.norm(prototypes, axis=1) == 0):
        return "a prototype is all zeros"
    if np.any(counts < 1):
        return "clip counts must be at least 1"
    return None
