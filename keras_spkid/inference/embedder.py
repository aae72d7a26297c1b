"""Turn waveforms into L2-normalised speaker embeddings, in batches grouped by length.

Two ways to embed an utterance, as in the reference systems:

* **full** (``crops=0``): the whole utterance in one pass. To batch utterances of
  different lengths without padding (padding changes the statistics that pooling and
  mean normalisation compute), each waveform is trimmed to the longest length of a
  geometric grid (ratio :data:`LENGTH_GRID_RATIO`) that fits it. This drops at most 2%
  of a clip's end and depends only on the clip itself, so an utterance's embedding is
  the same whatever else is in the batch.
* **crops** (``crops=N``): the mean of the embeddings of N evenly spaced fixed-length
  crops (voxceleb_trainer's 10 x 3 s test protocol); one crop is taken from the centre.

Long utterances are embedded in windows: a clip over ``max_window_seconds`` is cut into
the fewest equal windows no longer than that, each embedded whole, and their embeddings
averaged, so memory is bounded by the window, not by the file (a 30-minute file in one
pass peaked at 1.91 GB). Clips up to ``max_window_seconds`` are embedded exactly as before.
A long file opened with :func:`keras_spkid.audio.blocks.open_blocks` is never held whole:
each window is read from disk when its batch is embedded, with the same embedding.

Every entry point calls :meth:`Embedder.check` on each whole clip before embedding it:
clips shorter than the front end's window cannot be analysed, and clips without the
minimum speech (:func:`keras_spkid.audio.vad.require_speech`) carry no voice to embed;
both raise. Clips shorter than ``min_seconds`` (what the encoders need, e.g. conv6's 64
frames) are repeated (wrap padding, as voxceleb_trainer does) up to that length.
"""

from __future__ import annotations

import ctypes
import math
import weakref

import numpy as np
import tensorflow as tf

from keras_spkid.audio.blocks import BlockAudio
from keras_spkid.audio.io import SAMPLE_RATE, check_finite
from keras_spkid.audio.vad import MIN_SPEECH_SECONDS, require_speech, require_speech_in_levels
from keras_spkid.errors import AudioError
from keras_spkid.vectors import l2_normalize

LENGTH_GRID_RATIO = 1.02
"""Consecutive allowed full-utterance lengths differ by this factor (<= 2% trimmed)."""

MAX_WINDOW_SECONDS = 120.0
"""Longer utterances are embedded in windows of at most this length. Memory then follows
``max_batch_seconds`` (240 s of audio per model call), not the file: a 30-minute file
peaked at 1.91 GB in one pass and 1.06-1.08 GB in windows (``bench/RESULTS.md``);
all but one of the 153,516 VoxCeleb1 utterances (at most 145 s) stay in one window."""


def wrap_to_length(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` repeated end to end and cut to ``length`` samples."""
    if x.size >= length:
        return x[:length]
    return np.resize(x, length)


def crop_starts(num_samples: int, crop: int, crops: int) -> np.ndarray:
    """Start offsets of ``crops`` evenly spaced crops (one crop: the centre one)."""
    room = max(0, num_samples - crop)
    if crops == 1:
        return np.array([room // 2])
    return np.linspace(0, room, crops).astype(np.int64)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_inference(model, shape_free: bool):
    """``model(x, training=False)`` as a ``tf.function``, one per model and kind, shared.

    Every :class:`Embedder` of a model (a demo service, each command of a session) reuses
    the graph traced first: tracing CAM++ takes about 13 s on 2 cores.

    Args:
        model: ``keras.Model`` ``[B, samples] -> [B, D]``.
        shape_free: one graph for every ``[batch, samples]`` (whole clips of many
            lengths; CAM++ took 13 s and 90 MB per traced shape, then 25 s and 170 MB more
            for the shape-free graph ``reduce_retracing`` falls back to); else graphs
            traced per shape (one crop length runs fastest in a graph made for it).
    """
    functions = _COMPILED.setdefault(model, {})
    if shape_free not in functions:
        held = weakref.ref(model)  # the cache must not keep the model alive

        def call(x):
            return held()(x, training=False)

        if shape_free:
            signature = [tf.TensorSpec([None, None], tf.float32)]
            functions[shape_free] = tf.function(call, input_signature=signature)
        else:
            functions[shape_free] = tf.function(call, reduce_retracing=True)
    return functions[shape_free]


def release_freed_memory() -> None:
    """Hand the C heap's freed pages back to the operating system (glibc's
    ``malloc_trim``; a no-op elsewhere). Optimising a traced graph on its first call
    frees about 70 MB (CAM++) that glibc would otherwise keep resident for good."""
    try:  # the process's own symbols hold libc's (find_library would run ldconfig)
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError, TypeError):
        pass  # not glibc


class Embedder:
    """Batched, length-grouped embedding of waveforms with a raw-audio model.

    Args:
        model: ``keras.Model`` ``[B, samples] -> [B, D]`` (see
            :func:`~keras_spkid.inference.model_io.load_embedding_model`).
        crops: 0 for full utterances, else the number of fixed crops averaged.
        crop_seconds: crop length for ``crops > 0``.
        min_seconds: shorter clips are wrap-padded to this length.
        max_batch_seconds: audio per model call (bounds memory on many utterances).
        min_samples: clips shorter than this (the front end's window) raise.
        max_window_seconds: longer utterances are embedded in windows (``crops=0``),
            never longer than ``max_batch_seconds``.
    """

    def __init__(
        self,
        model,
        crops: int = 0,
        crop_seconds: float = 3.0,
        min_seconds: float = 1.0,
        max_batch_seconds: float = 240.0,
        min_samples: int = 400,
        max_window_seconds: float = MAX_WINDOW_SECONDS,
    ):
        if crops < 0:
            raise ValueError(f"crops must be >= 0, got {crops}")
        self.model = model
        self.crops = int(crops)
        self.crop_samples = int(round(crop_seconds * SAMPLE_RATE))
        self.min_length = int(round(min_seconds * SAMPLE_RATE))
        self.max_batch_samples = int(max_batch_seconds * SAMPLE_RATE)
        self.min_samples = int(min_samples)
        # a window longer than a batch would be one model call over the memory bound
        self.max_window = int(min(max_window_seconds, max_batch_seconds) * SAMPLE_RATE)
        self._call = compiled_inference(model, shape_free=not self.crops)
        self._called = False

    def grid_length(self, num_samples: int) -> int:
        """The length a full utterance of ``num_samples`` is trimmed to (>= min length)."""
        if num_samples <= self.min_length:
            return self.min_length
        steps = math.floor(math.log(num_samples / self.min_length) / math.log(LENGTH_GRID_RATIO))
        length = int(self.min_length * LENGTH_GRID_RATIO**steps)
        # float rounding must never make the grid length exceed the clip
        return min(length, num_samples)

    def _pieces(self, x) -> list:
        """The fixed-length inputs one waveform is embedded from: ``[length]`` views of the
        ``[samples]`` array ``x``, or ``(x, start, stop)`` windows of the
        :class:`~keras_spkid.audio.blocks.BlockAudio` ``x``, read when embedded."""
        if isinstance(x, BlockAudio):
            return [(x, start, stop) for start, stop in self._spans(x.size)]
        x = wrap_to_length(x, max(x.size, self.crop_samples if self.crops else self.min_length))
        return [x[start:stop] for start, stop in self._spans(x.size)]

    def _spans(self, num_samples: int) -> list[tuple[int, int]]:
        """``(start, stop)`` of each input taken from a clip of ``num_samples`` (at least
        the min length or crop): the fewest equal windows up to ``max_window`` trimmed to
        :meth:`grid_length`, or the crops."""
        if self.crops == 0:
            windows = -(-num_samples // self.max_window)
            size = num_samples // windows
            return [(i * size, i * size + self.grid_length(size)) for i in range(windows)]
        starts = crop_starts(num_samples, self.crop_samples, self.crops)
        return [(int(s), int(s) + self.crop_samples) for s in starts]

    def check(
        self, x: np.ndarray | BlockAudio, source="<waveform>", min_speech=MIN_SPEECH_SECONDS
    ) -> None:
        """Raise :class:`AudioError` for a whole clip (a ``[samples]`` array or a
        :class:`~keras_spkid.audio.blocks.BlockAudio`) that cannot be embedded: shorter
        than the front end's window, or with under ``min_speech`` seconds of speech."""
        self._check_window(x, source)
        if isinstance(x, BlockAudio):
            require_speech_in_levels(x.size, x.frame_levels, source, min_seconds=min_speech)
        else:
            require_speech(x, source, min_seconds=min_speech)

    def _check_window(self, x, source) -> None:
        if x.size < self.min_samples:
            raise AudioError(
                source,
                f"too short to embed: {1000 * x.size / SAMPLE_RATE:.1f} ms "
                f"(the front end needs {1000 * self.min_samples / SAMPLE_RATE:.0f} "
                "ms)",
                "use a clip of at least 0.5 s",
            )

    def __call__(self, waveforms, sources=None) -> np.ndarray:
        """Embed 16 kHz waveforms (checked with :meth:`check` by the caller; pieces of a
        checked clip, such as evaluation segments, are only checked for length and for
        NaN or infinite samples here, which would give a NaN-derived embedding).

        Args:
            waveforms: sequence of ``[samples]`` float32 arrays or
                :class:`~keras_spkid.audio.blocks.BlockAudio` files (checked as they were
                opened), each window read from disk when its batch is embedded.
            sources: names for error messages (file paths), same length.

        Returns:
            ``[n, D]`` float32, each row L2-normalised.
        """
        sources = (
            sources if sources is not None else [f"<waveform {i}>" for i in range(len(waveforms))]
        )
        pieces, owner = [], []
        for i, (x, source) in enumerate(zip(waveforms, sources)):
            if not isinstance(x, BlockAudio):
                x = np.asarray(x, dtype=np.float32).reshape(-1)
                check_finite(x, SAMPLE_RATE, source)
            self._check_window(x, source)
            for piece in self._pieces(x):
                pieces.append(piece)
                owner.append(i)
        owner = np.asarray(owner)
        outputs = [None] * len(pieces)
        by_length: dict[int, list[int]] = {}
        for j, piece in enumerate(pieces):
            length = piece[2] - piece[1] if isinstance(piece, tuple) else piece.size
            by_length.setdefault(length, []).append(j)
        for length, members in sorted(by_length.items()):
            per_batch = max(1, self.max_batch_samples // length)
            for start in range(0, len(members), per_batch):
                batch = members[start : start + per_batch]
                inputs = [_read(pieces[j]) for j in batch]  # windows of a long file from disk
                emb = self._call(tf.constant(np.stack(inputs)))
                del inputs
                for j, e in zip(batch, l2_normalize(np.asarray(emb, dtype=np.float32))):
                    outputs[j] = e
                if not self._called:  # the graph was traced and optimised: drop the scraps
                    self._called = True
                    release_freed_memory()
        outputs = (
            np.stack(outputs)
            if outputs
            else np.zeros((0, self.model.outputs[0].shape[-1]), np.float32)
        )
        result = np.zeros((len(waveforms), outputs.shape[1]), np.float32)
        np.add.at(result, owner, outputs)
        return l2_normalize(result)


def _read(piece) -> np.ndarray:
    """A ``[length]`` input of :meth:`Embedder._pieces`: a view, or a window read from disk."""
    if isinstance(piece, tuple):
        audio, start, stop = piece
        return audio.read(start, stop)
    return piece
