"""Everything the demo page does, without the page: :class:`SpeakerService`.

One model (loaded once, kept warm), one embedder and two galleries (see
:mod:`keras_spkid.app.galleries`). Each method takes what a Gradio handler receives
(names, clips as file paths or ``(rate, samples)`` buffers) and returns plain data, or
raises :class:`~keras_spkid.errors.SpkidError` with the one line the page shows.

Enrolled names are untrusted text: :func:`clean_name` keeps letters, digits, spaces and
a little punctuation, and names are only ever display labels (gallery ids are random),
never file names. Every change of the enrolment gallery is made under a lock of the file
(:func:`~keras_spkid.app.galleries.gallery_lock`, shared with other demo processes) on
the gallery as it is on disk, written atomically (:meth:`Gallery.save`) and only then
served, so the file and what the page shows never disagree, a restart finds what was
enrolled, and two processes never drop each other's enrolments. A gallery changed by
another process is reloaded before it is used.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from keras_spkid.app.clips import Clip, clip_waveform
from keras_spkid.app.galleries import (
    DEFAULT_CELEBRITIES,
    default_enrolment_path,
    file_stamp,
    gallery_lock,
    new_gallery,
    open_enrolment_gallery,
)
from keras_spkid.app.live import LiveListener
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.audio.vad import speech_seconds
from keras_spkid.errors import DataError, SpkidError
from keras_spkid.inference.encoder import SpeakerEncoder
from keras_spkid.inference.gallery_fit import check_fits, model_fingerprint
from keras_spkid.inference.model_io import EmbeddingModel, load_embedding_model
from keras_spkid.scoring.decision import OpenSetDecision, decision_scores, name_best
from keras_spkid.search.gallery import UNKNOWN, Gallery, Identification

T = TypeVar("T")

MAX_CLIPS = 5
"""Enrolment takes 1 to this many clips at a time."""

MIN_CLIP_SPEECH = 1.0
"""Seconds of speech under which an enrolment clip gets a warning."""
MIN_ENROL_SPEECH = 4.0
"""Seconds of speech (all clips of one person) under which enrolment gets a warning."""

MAX_NAME_LENGTH = 40
NAME_PUNCTUATION = " -'._()"

MIN_RATE, MAX_RATE = 1_000, 384_000
"""Sample rates a ``(rate, samples)`` buffer may have (Hz)."""


def check_clip(clip, label: str) -> None:
    """Refuse, with one line naming ``label``, what the API cannot take as a clip.

    A clip is ``None``, a file path (``str`` or path-like) or a ``(rate, samples)``
    buffer: ``rate`` an integer from :data:`MIN_RATE` to :data:`MAX_RATE` Hz, ``samples``
    numbers shaped ``[n]`` or ``[n, channels]``.

    Raises:
        SpkidError: anything else (a 3-D array, a rate of 0, strings as samples...).
    """
    if clip is None or isinstance(clip, (str, os.PathLike)):
        return
    if not isinstance(clip, tuple) or len(clip) != 2:
        raise SpkidError(
            f"{label}: expected a file path or a (sample rate, samples) pair, "
            f"got {type(clip).__name__}"
        )
    rate, samples = clip
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, np.integer)):
        if not (isinstance(rate, (float, np.floating)) and float(rate).is_integer()):
            raise SpkidError(f"{label}: the sample rate must be a whole number of Hz, got {rate!r}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise SpkidError(
            f"{label}: sample rate {rate:g} Hz is out of range ({MIN_RATE} to {MAX_RATE} Hz)"
        )
    try:
        array = np.asarray(samples)
    except (TypeError, ValueError):  # ragged lists
        raise SpkidError(f"{label}: samples must be an array of numbers") from None
    if array.dtype.kind not in "iuf":
        raise SpkidError(f"{label}: samples must be numbers, got {array.dtype} values")
    if array.ndim not in (1, 2):
        raise SpkidError(
            f"{label}: samples must be shaped [n] or [n, channels], got {list(array.shape)}"
        )


def clean_name(text: str | None) -> str:
    """A display name from untrusted text.

    Keeps letters and digits (any script), spaces and ``- ' . _ ( )``; collapses
    whitespace.

    Raises:
        SpkidError: nothing usable is left, it is longer than :data:`MAX_NAME_LENGTH`
            characters (cutting it could merge two people), or it is the reserved
            "unknown".
    """
    kept = "".join(
        c for c in unicodedata.normalize("NFC", text or "") if c.isalnum() or c in NAME_PUNCTUATION
    )
    name = " ".join(kept.split())
    if len(name) > MAX_NAME_LENGTH:
        raise SpkidError(
            f"name: at most {MAX_NAME_LENGTH} characters, {len(name)} given; shorten it"
        )
    if not name:
        raise SpkidError("name: type the person's name (letters, digits, spaces and - ' . _ ( ))")
    if name.casefold() == UNKNOWN:
        raise SpkidError(
            f"name: '{UNKNOWN}' is what the page says of voices it does not "
            "know; choose another name"
        )
    return name


def _waveform(clip: Clip, label: str) -> np.ndarray:
    """:func:`check_clip`, then :func:`~keras_spkid.app.clips.clip_waveform`."""
    check_clip(clip, label)
    return clip_waveform(clip, label)


@dataclasses.dataclass(frozen=True)
class Enrolled:
    """The outcome of an enrolment.

    Attributes:
        name: who.
        added, clips: clips added now, and in all.
        new: a new person.
        speech_seconds: speech heard in the clips added now.
        warnings: what may make this enrolment unreliable (one line each): a clip that
            does not sound like the others (wrong person, noise, silence), too little
            speech.
    """

    name: str
    added: int
    clips: int
    new: bool
    speech_seconds: float = 0.0
    warnings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Verification:
    """Score of two clips and the decision at the threshold (``None``: no threshold).

    The decision is the open-set one for a gallery of one person enrolled with one clip
    (clip A), so it agrees with Identify.
    """

    score: float
    threshold: float | None
    same: bool | None
    kind: str = "cosine"


@dataclasses.dataclass(frozen=True)
class LiveUpdate:
    """A due update of the Live tab.

    Attributes:
        identification: the answer for the current window, or ``None`` in silence (the
            page keeps its previous answer).
        speech_seconds: speech heard in the window.
    """

    identification: Identification | None
    speech_seconds: float


class SpeakerService:
    """Enrol, identify, verify, listen live and find the closest celebrity.

    Args:
        model: the embedding model (see :func:`load_embedding_model`).
        gallery_path: the enrolment gallery file (created on the first enrolment).
        celebrities_path: a gallery built by ``closest_celeb.py build``.
    """

    def __init__(self, model: EmbeddingModel, gallery_path, celebrities_path=DEFAULT_CELEBRITIES):
        self.model = model
        self.encoder = SpeakerEncoder(model)
        self.fingerprint = model_fingerprint(model)
        self.gallery_path = Path(gallery_path)
        self._lock = threading.Lock()
        self._stamp = file_stamp(self.gallery_path)
        self._gallery = open_enrolment_gallery(self.gallery_path, model, self.fingerprint)
        self.celebrities_path = Path(celebrities_path)
        self._celebrities: Gallery | None = None

    @classmethod
    def open(cls, model=None, gallery=None, celebrities=None) -> SpeakerService:
        """Load ``model`` (default: the built-in one) and the galleries at the given paths
        (default: :func:`default_enrolment_path`, :data:`DEFAULT_CELEBRITIES`)."""
        return cls(
            load_embedding_model(model),
            gallery or default_enrolment_path(),
            celebrities or DEFAULT_CELEBRITIES,
        )

    def warm_up(self) -> None:
        """Prepare the model's graph now (one call on 1 s of silence): tracing CAM++ takes
        about 13 s on 2 cores, which the first visitor would otherwise wait for."""
        self.encoder([np.zeros(SAMPLE_RATE, np.float32)], ["warm-up"])

    @property
    def gallery(self) -> Gallery:
        """The enrolment gallery as on disk (reloaded when another process changed it)."""
        with self._lock:
            if file_stamp(self.gallery_path) != self._stamp:
                with gallery_lock(self.gallery_path):
                    self._reload()
            return self._gallery

    def _reload(self) -> None:
        """Read the gallery file (call holding both locks)."""
        self._stamp = file_stamp(self.gallery_path)
        self._gallery = open_enrolment_gallery(self.gallery_path, self.model, self.fingerprint)

    # ----- decisions -----
    @property
    def threshold(self) -> float | None:
        """Score under which the best match of the enrolment gallery, as it is now, is
        "unknown" (see :meth:`Gallery.threshold`)."""
        return self.gallery.threshold

    @property
    def decision(self) -> OpenSetDecision | None:
        """The enrolment gallery's decision (the model's calibration, unless set by hand)."""
        return self.gallery.decision

    @property
    def verify_decision(self) -> OpenSetDecision | None:
        """The decision for two clips: the model's (else the gallery's) for one person
        enrolled with one clip."""
        if self.model.calibration is not None:
            return self.model.calibration.decision()
        return self.gallery.decision

    @property
    def verify_threshold(self) -> float | None:
        """Score from which two clips are the same speaker."""
        decision = self.verify_decision
        return None if decision is None else float(decision.threshold_for(1, 1))

    def describe_decision(self, verify: bool = False) -> str:
        """Where the decision of Identify (or Verify) comes from, in one line."""
        decision = self.verify_decision if verify else self.decision
        if decision is None:
            return "no calibrated threshold: no decision is made, the closest is named"
        if verify:
            return decision.describe(1, 1)
        counts = self.gallery.counts
        return decision.describe(
            max(len(self.gallery), 1), int(np.median(counts)) if len(counts) else 1
        )

    # ----- embedding -----
    def embed(self, waveforms: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
        """``[n, D]`` L2-normalised embeddings of 16 kHz waveforms."""
        return self.encoder(list(waveforms), list(labels))

    # ----- the enrolment gallery -----
    def speakers(self) -> list[tuple[str, int]]:
        """``(name, clips)`` of every enrolled person, in enrolment order."""
        gallery = self.gallery
        return [(name, int(count)) for name, count in zip(gallery.names, gallery.counts)]

    def _check_fits(self, gallery: Gallery) -> None:
        """Refuse an enrolment gallery made with another model (:func:`check_fits`)."""
        check_fits(
            gallery,
            self.model,
            self.fingerprint,
            self.gallery_path,
            "delete its people and enrol them again",
        )

    def _find(self, gallery: Gallery, name: str) -> str | None:
        wanted = name.casefold()
        for speaker, shown in zip(gallery.speakers, gallery.names):
            if shown.casefold() == wanted:
                return speaker
        return None

    def _require(self, gallery: Gallery, name: str | None) -> str:
        speaker = self._find(gallery, name or "")
        if speaker is None:
            raise DataError(
                f"nobody called {name!r} is enrolled" if name else "choose an enrolled person first"
            )
        return speaker

    def _change(self, edit: Callable[[Gallery], T]) -> T:
        """Apply ``edit`` to the gallery as on disk, save it atomically, then serve it.

        The file is locked against other processes from reading to saving, so their
        changes are kept.
        """
        with self._lock, gallery_lock(self.gallery_path):
            self._reload()
            gallery = copy.deepcopy(self._gallery)
            result = edit(gallery)
            try:
                if len(gallery):
                    gallery.save(self.gallery_path)
                else:  # nobody left: no file, and a fresh gallery of the served model
                    self.gallery_path.unlink(missing_ok=True)
                    gallery = new_gallery(self.model, self.fingerprint)
            except OSError as error:
                raise SpkidError(
                    f"{self.gallery_path}: cannot save the gallery ({error.strerror or error})"
                ) from None
            self._gallery, self._stamp = gallery, file_stamp(self.gallery_path)
            return result

    def enrol(self, name: str | None, clips: Sequence[Clip]) -> Enrolled:
        """Enrol ``name`` from 1 to :data:`MAX_CLIPS` clips (``None`` entries are empty
        slots of the page). An already enrolled name gets the clips added."""
        name = clean_name(name)
        given = [(f"clip {i}", clip) for i, clip in enumerate(clips, 1) if clip is not None]
        if not given:
            raise SpkidError(f"{name}: record or upload at least one clip (up to {MAX_CLIPS})")
        if len(given) > MAX_CLIPS:
            raise SpkidError(
                f"{name}: {len(given)} clips given; enrol at most {MAX_CLIPS} at a time"
            )
        waveforms = [_waveform(clip, label) for label, clip in given]
        embeddings = self.embed(waveforms, [label for label, _ in given])
        speech = [speech_seconds(x) for x in waveforms]

        def add(gallery: Gallery) -> Enrolled:
            self._check_fits(gallery)
            speaker = self._find(gallery, name)
            new = speaker is None
            speaker = speaker or f"p-{uuid.uuid4().hex[:12]}"
            before = None if new else gallery.prototypes[gallery.speakers.index(speaker)]
            before_count = 0 if new else int(gallery.counts[gallery.speakers.index(speaker)])
            warnings = self._enrolment_warnings(
                gallery, [label for label, _ in given], embeddings, speech, before, before_count
            )
            gallery.enrol(speaker, embeddings, name if new else None)
            i = gallery.speakers.index(speaker)
            return Enrolled(
                gallery.names[i],
                len(given),
                int(gallery.counts[i]),
                new,
                float(sum(speech)),
                tuple(warnings),
            )

        return self._change(add)

    def _enrolment_warnings(
        self, gallery: Gallery, labels, embeddings, speech, before, before_count
    ) -> list[str]:
        """Clips that disagree with the rest of the person's clips, and too little speech.

        A clip disagrees when the shared decision would not name the person from it in
        a gallery of one: its score against the mean of the other clips (this
        enrolment's and any enrolled before) is under the threshold for that many clips.
        """
        warnings = [
            f"{label}: only {seconds:.1f} s of speech (aim for {MIN_CLIP_SPEECH:g} s or more)"
            for label, seconds in zip(labels, speech)
            if seconds < MIN_CLIP_SPEECH
        ]
        total = sum(speech)
        if total < MIN_ENROL_SPEECH:
            warnings.append(
                f"{total:.1f} s of speech in all: enrol more speech "
                f"({MIN_ENROL_SPEECH:g} s or more) for reliable answers"
            )
        decision = gallery.decision  # the gallery being changed: its lock is held
        vectors = np.asarray(embeddings, np.float64)
        if decision is None:
            return warnings
        for i, label in enumerate(labels):
            others = np.delete(vectors, i, axis=0)
            count = len(others) + before_count
            if count == 0:
                continue
            total_vec = others.sum(axis=0) if len(others) else 0.0
            if before is not None:
                total_vec = total_vec + before * before_count
            score = decision_scores(
                vectors[i : i + 1], total_vec[None, :], decision, gallery.cohort
            )
            threshold, agrees = name_best(score[:, 0], [count], 1, decision)
            if not agrees[0]:
                warnings.append(
                    f"{label} does not sound like the person's other clips (score "
                    f"{score[0, 0]:.2f} < {threshold[0]:.2f}): another person, noise or silence?"
                )
        return warnings

    def rename(self, name: str | None, new_name: str | None) -> str:
        """Give an enrolled person a new display name; returns it (cleaned)."""
        new_name = clean_name(new_name)

        def rename(gallery: Gallery) -> str:
            speaker = self._require(gallery, name)
            other = self._find(gallery, new_name)
            if other is not None and other != speaker:
                raise DataError(f"{new_name!r} is already enrolled; delete or rename them first")
            gallery.rename(speaker, new_name)
            return new_name

        return self._change(rename)

    def delete(self, name: str | None) -> None:
        """Remove an enrolled person."""
        self._change(lambda gallery: gallery.remove(self._require(gallery, name)))

    # ----- questions -----
    def identify_waveform(self, x: np.ndarray, top_k: int = 5) -> Identification:
        """Who of the enrolled people is speaking in the 16 kHz waveform ``x``.

        Raises:
            AudioError: ``x`` has less than the minimum speech, or only steady noise.
        """
        gallery = self.gallery
        if not len(gallery):
            raise DataError("nobody is enrolled yet: enrol people on the Enrol tab first")
        self._check_fits(gallery)
        self.encoder.check_query(x, "query")  # live windows too: a query's speech, no noise
        return gallery.identify(self.embed([x], ["query"]), top_k)[0]

    def identify(self, clip: Clip, top_k: int = 5) -> Identification:
        """Top ``top_k`` enrolled people for ``clip``, and "unknown" under the threshold."""
        return self.identify_waveform(_waveform(clip, "query"), top_k)

    def verify(self, clip_a: Clip, clip_b: Clip) -> Verification:
        """Whether two clips are the same speaker (cosine score vs the threshold)."""
        a, b = _waveform(clip_a, "clip A"), _waveform(clip_b, "clip B")
        self.encoder.check_query(a, "clip A")
        self.encoder.check_query(b, "clip B")
        embeddings = self.embed([a, b], ["clip A", "clip B"])
        decision = self.verify_decision
        score = decision_scores(embeddings[1:], embeddings[:1], decision, self.model.cohort)
        threshold, same = name_best(score[:, 0], [1], 1, decision)
        if decision is None:
            return Verification(float(score[0, 0]), None, None)
        return Verification(float(score[0, 0]), float(threshold[0]), bool(same[0]), decision.score)

    def celebrities(self) -> Gallery:
        """The celebrity gallery (loaded on first use).

        Raises:
            DataError: missing, unreadable, or embedded with another model.
        """
        if self._celebrities is None:
            gallery = Gallery.load(self.celebrities_path)
            fix = (
                "rebuild it: bash recipes/default_gallery.sh"
                if self.celebrities_path == DEFAULT_CELEBRITIES
                else "give the --model it was built with, or rebuild it"
            )
            check_fits(gallery, self.model, self.fingerprint, self.celebrities_path, fix)
            if not len(gallery):
                raise DataError(f"{self.celebrities_path}: the celebrity gallery is empty")
            self._celebrities = gallery
        return self._celebrities

    def closest_celebrity(self, clip: Clip, top_k: int = 5) -> Identification:
        """The ``top_k`` closest voices of the celebrity gallery, best first."""
        gallery = self.celebrities()
        x = _waveform(clip, "clip")
        self.encoder.check_query(x, "clip")
        return gallery.identify(self.embed([x], ["clip"]), top_k)[0]

    def live(
        self, listener: LiveListener, rate: int, samples: np.ndarray, top_k: int = 3
    ) -> LiveUpdate | None:
        """Feed one microphone chunk; an update when one is due, else ``None``."""
        check_clip((rate, samples), "microphone")
        step = listener.push(rate, samples)
        if not step.due:
            return None
        if step.window is None:
            return LiveUpdate(None, step.speech_seconds)
        return LiveUpdate(self.identify_waveform(step.window, top_k), step.speech_seconds)
