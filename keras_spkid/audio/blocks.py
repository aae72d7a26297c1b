"""Long WAV and FLAC files read in blocks, never held whole.

A 30-minute file is 110 MiB as a float32 waveform, more than any one model call on it
needs (windows of 20 s for CAM++). :func:`open_blocks` reads such a file block by block
twice and keeps only what the whole-waveform path (:func:`~keras_spkid.audio.io.
load_audio`, then the embedder's checks) decides from the whole waveform:

1. the raw ``[rows, channels]`` blocks: NaN or infinite samples, the clipped share,
   each channel's power (do the channels cancel in the mix?) and the DC mean
   (:class:`~keras_spkid.audio.io.RawStats`, the same sums over the same blocks as a
   waveform in memory, so every decision comes out the same to the bit);
2. the prepared blocks (mono, DC removed, clipped to [-1, 1]): the peak (silence), the
   clipped share of the result, and each 20 ms frame's level for the VAD
   (:func:`~keras_spkid.audio.vad.require_speech_in_levels`).

Then :meth:`BlockAudio.read` reads any window again from disk (seek, read) and prepares
it sample for sample as the whole waveform would have been. A file at another rate is
resampled in the second pass by a streaming soxr resampler (its output is the one-shot
``soxr.resample`` of :func:`~keras_spkid.audio.io.prepare_waveform` to the bit), into an
unnamed temporary file of 16 kHz float32 samples (110 MiB of disk for 30 minutes, gone
when the :class:`BlockAudio` is), which the windows are read from. Formats soundfile does
not read (ffmpeg's) take :func:`~keras_spkid.audio.io.load_audio`.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path

import numpy as np
import soundfile
import soxr

from keras_spkid.audio.io import (
    BLOCK_SAMPLES,
    SAMPLE_RATE,
    RawStats,
    check_length_and_peak,
    clipping_stats,
)
from keras_spkid.audio.vad import frame_levels

SEEKABLE_FORMATS = {"WAV", "WAVEX", "RF64", "FLAC"}
"""soundfile formats whose samples are read the same by a seek and a read as by one read
of the whole file (uncompressed PCM, and lossless FLAC)."""


class BlockAudio:
    """A long file, checked as :func:`~keras_spkid.audio.io.load_audio` checks it, whose
    prepared 16 kHz samples are read from disk a window at a time (:func:`open_blocks`).

    Attributes:
        path: the file.
        size: samples of the mono 16 kHz waveform.
        frame_levels: ``[size // 320]`` float64 dBFS of each 20 ms frame of the prepared
            waveform (:func:`~keras_spkid.audio.vad.frame_levels`).
        peak: largest ``|x|`` of the prepared waveform.
        clipped: prepared samples at :data:`~keras_spkid.audio.io.FULL_SCALE`.
    """

    def __init__(self, path: Path, stats: RawStats, rate: int = SAMPLE_RATE):
        self.path = path
        self._channel = stats.mono_channel(path)  # None: the mix of the channels
        self._mean = stats.mean(self._channel)
        self._resampled = None  # the prepared 16 kHz samples of a file at another rate
        if rate == SAMPLE_RATE:
            self.size = stats.rows
            blocks = (self.read(s, s + BLOCK_SAMPLES) for s in range(0, self.size, BLOCK_SAMPLES))
        else:
            blocks = self._resample(rate)
        levels, self.peak, self.clipped = [], 0.0, 0
        for block in blocks:
            levels.append(frame_levels(block))  # blocks of whole frames: the frames of x
            clipped, peak = clipping_stats(block)
            self.clipped, self.peak = self.clipped + clipped, max(self.peak, peak)
            del block  # not held while the next one is read
        self.frame_levels = np.concatenate(levels)

    def _resample(self, rate: int):
        """Resample the file block by block into an unnamed temporary file; yields the
        prepared 16 kHz waveform in ``[BLOCK_SAMPLES]`` blocks (the last one shorter) and
        sets :attr:`size`."""
        self._resampled = tempfile.TemporaryFile(prefix="spkid-", suffix=".f32")
        weakref.finalize(self, self._resampled.close)
        stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        pending, self.size = np.zeros(0, np.float32), 0
        with soundfile.SoundFile(self.path) as handle:
            frames = handle.frames
            for start in range(0, frames, BLOCK_SAMPLES):
                raw = handle.read(min(BLOCK_SAMPLES, frames - start), "float32", always_2d=True)
                last = start + BLOCK_SAMPLES >= frames
                x = stream.resample_chunk(self._prepare(raw), last=last)
                pending = np.concatenate([pending, np.clip(x, -1.0, 1.0, out=x)])
                while pending.size >= BLOCK_SAMPLES or (last and pending.size):
                    block, pending = pending[:BLOCK_SAMPLES], pending[BLOCK_SAMPLES:]
                    self._resampled.write(block.tobytes())
                    self.size += block.size
                    yield block
        self._resampled.flush()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of the prepared waveform: ``[stop - start]`` float32
        (fewer at the end of the file), equal to the same slice of ``load_audio(path)``."""
        stop = min(stop, self.size)
        if self._resampled is not None:
            data = os.pread(self._resampled.fileno(), 4 * max(0, stop - start), 4 * start)
            return np.frombuffer(data, np.float32).copy()
        with soundfile.SoundFile(self.path) as handle:
            handle.seek(start)
            raw = handle.read(max(0, stop - start), "float32", always_2d=True)
        x = self._prepare(raw)
        return np.clip(x, -1.0, 1.0, out=x)

    def _prepare(self, raw: np.ndarray) -> np.ndarray:
        """``[rows, channels]`` raw samples -> ``[rows]`` mono with the DC offset removed,
        at the file's rate (not yet clipped: a file at another rate is resampled first)."""
        if raw.shape[1] == 1:
            x = raw[:, 0]
        elif self._channel is None:
            x = raw.mean(axis=1)
        else:
            x = np.ascontiguousarray(raw[:, self._channel])
        x -= self._mean
        return x


def open_blocks(path, longer_than: int) -> BlockAudio | None:
    """A WAV or FLAC file of more than ``longer_than`` samples at 16 kHz, checked in blocks.

    Args:
        path: the audio file (any sample rate; another one is resampled to 16 kHz).
        longer_than: shorter files (and any other file) return ``None``.

    Returns:
        The :class:`BlockAudio`, or ``None`` when the file is missing, not
        :data:`SEEKABLE_FORMATS`, not longer than ``longer_than``, or soundfile fails on it
        (:func:`~keras_spkid.audio.io.load_audio` then reads it whole, or names the error).

    Raises:
        AudioError: as :func:`~keras_spkid.audio.io.load_audio` (same checks, same
            messages): NaN or infinite samples, clipped, silent.
    """
    path = Path(path)
    stats, rate = _raw_stats(path, longer_than) if path.is_file() else (None, None)
    if stats is None:
        return None
    stats.check(rate, path)
    audio = BlockAudio(path, stats, rate)
    check_length_and_peak(audio.size, audio.peak, SAMPLE_RATE, path)
    return audio


def _raw_stats(path: Path, longer_than: int) -> tuple[RawStats | None, int | None]:
    """:class:`RawStats` of the file's raw blocks and its sample rate, or ``(None, None)``
    (see :func:`open_blocks`)."""
    try:
        with soundfile.SoundFile(path) as handle:
            if (
                handle.format not in SEEKABLE_FORMATS
                or handle.frames * SAMPLE_RATE <= longer_than * handle.samplerate
            ):
                return None, None
            stats = RawStats(handle.channels)
            buffer = np.empty((BLOCK_SAMPLES, handle.channels), np.float32)  # read into, reused
            for block in handle.blocks(out=buffer):
                stats.add(block)
    except (soundfile.LibsndfileError, RuntimeError, ValueError):
        return None, None
    # a truncated file holds fewer frames than its header says: load_audio decodes it whole
    return (stats, handle.samplerate) if stats.rows == handle.frames else (None, None)
