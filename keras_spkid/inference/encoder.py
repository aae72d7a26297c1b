"""The front door for inference: :class:`SpeakerEncoder`.

One object holds a raw-audio model (:func:`~keras_spkid.inference.model_io.
load_embedding_model`) and the way clips are embedded with it (:class:`~keras_spkid.
inference.embedder.Embedder`)::

    from keras_spkid import Gallery, SpeakerEncoder

    encoder = SpeakerEncoder.from_preset("default")    # a preset name or a .keras file
    encoder.embed(waveform)                             # [D], L2-normalised
    encoder.embed_files(["a.wav", "b.flac"])            # [2, D]
    encoder.verify("a.wav", "b.flac")                   # score, threshold, same speaker?
    gallery = encoder.enrol(Gallery.empty(), "alice", ["alice1.wav", "alice2.wav"])
    encoder.identify(gallery, "query.wav").decision     # "alice" or "unknown"

Every command, the demo and the evaluation embed through it, so a clip gets the same
embedding wherever it is embedded. ``embed``, ``embed_files``, ``verify``, ``enrol`` and
``identify`` check each whole clip as the commands do (a 16 kHz ``[samples]`` array of
numbers, no NaN or infinite samples, not clipped, the front end's window and the minimum
speech): garbage raises :class:`~keras_spkid.errors.AudioError`, never gets a name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_spkid.audio.blocks import BlockAudio, open_blocks
from keras_spkid.audio.io import (
    SAMPLE_RATE,
    check_clipping,
    load_audio,
    prepare_waveform,
    raise_clipped,
)
from keras_spkid.audio.vad import MIN_QUERY_SPEECH_SECONDS, MIN_SPEECH_SECONDS
from keras_spkid.errors import AudioError
from keras_spkid.inference.embedder import Embedder, release_freed_memory
from keras_spkid.inference.model_io import EmbeddingModel, load_embedding_model
from keras_spkid.search.gallery import Gallery, Identification


@dataclasses.dataclass(frozen=True)
class Verification:
    """Cosine score of two clips and the decision under the model's calibrated threshold.

    Attributes:
        score: cosine similarity of the two embeddings, in [-1, 1].
        threshold: the calibrated threshold (``None``: the model has no calibration).
        same: ``score >= threshold``, or ``None`` when there is no threshold.
    """

    score: float
    threshold: float | None
    same: bool | None


class SpeakerEncoder:
    """A raw-audio embedding model and how clips are embedded with it.

    Args:
        model: a loaded :class:`~keras_spkid.inference.model_io.EmbeddingModel`.
        crops: 0 embeds whole clips; N > 0 averages N fixed crops of ``crop_seconds``.
        crop_seconds: crop length when ``crops > 0``.
    """

    def __init__(self, model: EmbeddingModel, crops: int = 0, crop_seconds: float = 3.0):
        self.model = model
        self.embedder = Embedder(
            model.model,
            crops=crops,
            crop_seconds=crop_seconds,
            min_samples=model.min_samples,
            max_batch_seconds=model.max_batch_seconds,
        )

    @classmethod
    def from_preset(
        cls, name_or_path=None, crops: int = 0, crop_seconds: float = 3.0
    ) -> SpeakerEncoder:
        """Load a preset name, a ``.keras`` file or (``None``) the built-in default model.

        Raises:
            ModelError: no such preset or file, or not an embedding model.
        """
        return cls(load_embedding_model(name_or_path), crops=crops, crop_seconds=crop_seconds)

    @property
    def dim(self) -> int:
        """Embedding size ``D``."""
        return self.model.dim

    @property
    def threshold(self) -> float | None:
        """The calibrated same-speaker threshold stored with the model, if any."""
        return None if self.model.calibration is None else self.model.calibration.threshold

    def check(self, waveform: np.ndarray, source="<waveform>") -> None:
        """Raise :class:`~keras_spkid.errors.AudioError` for a clip that cannot be embedded."""
        self.embedder.check(waveform, source)

    def check_query(self, waveform: np.ndarray, source="<waveform>") -> None:
        """:meth:`check` with :data:`~keras_spkid.audio.vad.MIN_QUERY_SPEECH_SECONDS` of
        speech: a query that may be given a name."""
        self.embedder.check(waveform, source, MIN_QUERY_SPEECH_SECONDS)

    def load(self, path) -> np.ndarray | BlockAudio:
        """An audio file as this encoder embeds it, checked as
        :func:`~keras_spkid.audio.io.load_audio` checks it: a WAV or FLAC file (any rate)
        longer than the audio of one model call (``max_batch_seconds``) as a
        :class:`~keras_spkid.audio.blocks.BlockAudio`, whose windows or crops are read
        from disk as they are embedded (the same embedding without the whole waveform in
        memory: 110 MiB for 30 minutes); any other file decoded whole, ``[samples]``
        float32 (it weighs no more than a call's inputs, and is read once instead of
        once per pass, window and crop).

        Raises:
            AudioError: as :func:`~keras_spkid.audio.io.load_audio`.
        """
        blocks = open_blocks(path, longer_than=self.embedder.max_batch_samples)
        if blocks is None:
            return load_audio(path)
        # the check (and resampling) pass freed its blocks; glibc would keep their pages
        # (about 20 MiB for a 44.1 kHz stereo file) under the windows' activations
        release_freed_memory()
        return blocks

    def _clip(self, clip, source, query: bool = False) -> np.ndarray | BlockAudio:
        """A caller's clip (a file path or a 16 kHz ``[samples]`` array) as a checked
        ``[samples]`` float32 waveform, or a file as a checked
        :class:`~keras_spkid.audio.blocks.BlockAudio` (:meth:`load`).

        Raises:
            AudioError: not a 1-D array of numbers, NaN or infinite samples, clipped, too
                short, or without the minimum speech (noise named a person at 0.72).
        """
        if isinstance(clip, (str, Path)):
            x = self.load(clip)
        else:
            x = np.asarray(clip)
            if x.ndim != 1 or x.dtype.kind not in "iuf":
                raise AudioError(
                    source,
                    f"not a waveform: expected a 16 kHz [samples] array of numbers, got "
                    f"shape {list(x.shape)} of {x.dtype}",
                    "give a file path, or keras_spkid.audio.io.load_audio(path)",
                )
            # integer PCM scaled, NaN or infinite samples refused, DC removed
            x = prepare_waveform(x, SAMPLE_RATE, source=source, allow_clipping=True)
        self.embedder.check(x, source, MIN_QUERY_SPEECH_SECONDS if query else MIN_SPEECH_SECONDS)
        if isinstance(x, BlockAudio):
            raise_clipped(x.clipped, x.size, x.peak, source)
        else:
            check_clipping(x, source)
        return x

    def __call__(self, waveforms, sources=None) -> np.ndarray:
        """``[n, D]`` L2-normalised embeddings of ``n`` 16 kHz waveforms (any lengths).

        ``sources`` names each waveform in error messages (e.g. its file path).
        """
        return self.embedder(waveforms, sources)

    def embed(self, waveform: np.ndarray, source="<waveform>") -> np.ndarray:
        """``[D]`` L2-normalised embedding of one ``[samples]`` 16 kHz waveform.

        Raises:
            AudioError: the waveform cannot be embedded (see :meth:`_clip`).
        """
        return self([self._clip(waveform, str(source))], [str(source)])[0]

    def embed_files(self, paths) -> np.ndarray:
        """``[n, D]`` embeddings of audio files (any format :func:`load_audio` reads).

        Raises:
            AudioError: a file is missing, unreadable, corrupt, clipped, too short or
                holds no speech.
        """
        paths = [str(p) for p in paths]
        return self([self._clip(p, p) for p in paths], paths)

    def _embed_clips(self, clips, query: bool = False) -> np.ndarray:
        """Clips given as file paths or waveforms, checked and embedded together
        (``query``: each needs the speech a query needs)."""
        sources = [
            str(clip) if isinstance(clip, (str, Path)) else f"<waveform {i}>"
            for i, clip in enumerate(clips)
        ]
        return self([self._clip(c, s, query) for c, s in zip(clips, sources)], sources)

    def verify(self, a, b) -> Verification:
        """Are clips ``a`` and ``b`` (paths or waveforms) the same speaker?

        Raises:
            AudioError: as :meth:`embed`, or a clip with too little speech to name
                (:data:`~keras_spkid.audio.vad.MIN_QUERY_SPEECH_SECONDS`).
        """
        ea, eb = self._embed_clips([a, b], query=True)
        score = float(np.dot(ea, eb))
        threshold = self.threshold
        return Verification(score, threshold, None if threshold is None else score >= threshold)

    def enrol(self, gallery: Gallery, speaker: str, clips, name: str | None = None) -> Gallery:
        """Add ``clips`` (paths or waveforms) of ``speaker`` to ``gallery``; returns it."""
        gallery.enrol(speaker, self._embed_clips(clips), name)
        return gallery

    def identify(self, gallery: Gallery, clip, top_k: int = 5) -> Identification:
        """The ``top_k`` closest speakers of ``gallery`` to ``clip`` and the decision.

        Raises:
            AudioError: as :meth:`embed`, or a clip with too little speech to name
                (:data:`~keras_spkid.audio.vad.MIN_QUERY_SPEECH_SECONDS`).
        """
        return gallery.identify(self._embed_clips([clip], query=True), top_k)[0]
