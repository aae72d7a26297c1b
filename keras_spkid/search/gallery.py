"""A gallery of enrolled speakers: one prototype per speaker, searchable, stored on disk.

A speaker's prototype is the mean of their L2-normalised utterance embeddings; search
compares queries with its direction (cosine), so scores are comparable across speakers
with different numbers of enrolment clips, and keeping the mean (with the clip count)
lets clips be added later exactly. A query is "unknown" when its best score is
under the gallery's threshold (from a :class:`~keras_spkid.scoring.calibration.Calibration`
made on dev trials, or set by hand).

The ``.npz`` file holds ``speakers`` (ids), ``names`` (display names), ``prototypes``
``[S, d]`` float32, ``counts`` (clips per speaker) and ``meta`` (JSON: threshold,
calibration, model). It is written atomically, so an interrupted save never leaves a
broken gallery; the Gradio demo edits it in place (enrol, rename, delete).
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
from keras_spkid.search.index import SearchIndex, make_index
from keras_spkid.vectors import l2_normalize

UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class Match:
    """One gallery speaker and its cosine score against a query."""

    speaker: str
    name: str
    score: float


@dataclasses.dataclass(frozen=True)
class Identification:
    """Top matches of one query, best first, and the decision under the threshold."""

    matches: list[Match]
    decision: str
    threshold: float | None

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
        threshold: cosine score under which a query is "unknown" (``None``: never).
        meta: free-form provenance (model path, calibration) kept in the file.
    """

    def __init__(
        self,
        speakers,
        prototypes,
        names=None,
        counts=None,
        threshold: float | None = None,
        meta: dict | None = None,
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
        self.threshold = threshold
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

    def set_calibration(self, calibration: Calibration) -> None:
        self.threshold = calibration.threshold
        self.meta["calibration"] = dataclasses.asdict(calibration)

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
        """Top-``k`` speakers of each query embedding ``[q, d]`` and the decision."""
        if len(self) == 0:
            raise DataError("the gallery is empty: enrol speakers first")
        scores, indices = self.index(backend).search(l2_normalize(np.atleast_2d(embeddings)), top_k)
        results = []
        for row_s, row_i in zip(scores, indices):
            matches = [
                Match(self.speakers[i], self.names[i], float(s)) for s, i in zip(row_s, row_i)
            ]
            known = self.threshold is None or matches[0].score >= self.threshold
            results.append(
                Identification(matches, matches[0].name if known else UNKNOWN, self.threshold)
            )
        return results

    # ----- storage -----
    def save(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta, threshold=self.threshold)
        with atomic_path(path, ".npz") as tmp:
            np.savez(
                tmp,
                speakers=np.asarray(self.speakers, dtype=str),
                names=np.asarray(self.names, dtype=str),
                prototypes=self.prototypes.reshape(len(self), self.prototypes.shape[-1]),
                counts=self.counts,
                meta=np.asarray(json.dumps(meta, sort_keys=True)),
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
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DataError(f"{path}: cannot read the gallery ({error})") from None
        problem = _check_fields(meta, **fields)
        if problem:
            raise DataError(
                f"{path}: not a usable gallery: {problem} "
                "(rebuild it with 'closest_celeb.py build', or enrol the people again)"
            )
        threshold = meta.pop("threshold", None)
        try:
            return cls(
                fields["speakers"],
                fields["prototypes"],
                fields["names"],
                fields["counts"],
                None if threshold is None else float(threshold),
                meta,
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
