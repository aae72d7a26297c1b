"""The Live tab's view of a microphone stream: a rolling window, paced updates, silence
ignored.

The browser sends a chunk about every 0.1 s (whatever ``stream_every`` says), as int16
at 44.1 or 48 kHz, sometimes stereo. :class:`LiveListener` turns each chunk into 16 kHz
mono (one ``soxr`` stream per session, so chunk edges leave no resampling clicks), keeps
the last :data:`WINDOW_SECONDS` and the voice-activity decision of every 20 ms frame, and
says when an update is due: every :data:`UPDATE_SECONDS` of audio, and only when the
window holds at least :data:`MIN_SPEECH_SECONDS` of speech. Only the speech frames are
identified (a window half silent would score like nobody), and in silence no update is
made, so the page keeps its last answer instead of flickering.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import soxr

from keras_spkid.audio.io import SAMPLE_RATE, prepare_waveform
from keras_spkid.audio.vad import FRAME_SECONDS, EnergyVAD

TIMELINE_SECONDS = 30.0
"""How far back the Live tab's timeline of who spoke when reaches."""
WINDOW_SECONDS = 3.0
UPDATE_SECONDS = 0.5
MIN_SPEECH_SECONDS = 2.0
"""Speech the window must hold before it is worth identifying. The open-set thresholds
are calibrated on 2-4 s queries (2 s LibriSpeech segments, WUW utterances); with less
speech a speaker's scores drop under them (measured in the browser test: an enrolled
reader's 1.8 s window scored 1.64 against a threshold of 1.70, AS-Norm), so the page
says "unknown" to people it knows."""


@dataclasses.dataclass(frozen=True)
class LiveStep:
    """What one chunk changed.

    Attributes:
        due: an update of the page is due (every :data:`UPDATE_SECONDS` of audio).
        window: the speech frames of the last :data:`WINDOW_SECONDS` (16 kHz, pauses
            left out) when an update is due and they make at least
            :data:`MIN_SPEECH_SECONDS`; ``None`` otherwise.
        speech_seconds: speech in the window now.
    """

    due: bool
    window: np.ndarray | None
    speech_seconds: float


class LiveListener:
    """One session's microphone stream: resampled, voice-detected, windowed."""

    def __init__(
        self,
        window_seconds: float = WINDOW_SECONDS,
        update_seconds: float = UPDATE_SECONDS,
        min_speech_seconds: float = MIN_SPEECH_SECONDS,
    ):
        self.vad = EnergyVAD(SAMPLE_RATE)
        self.window_frames = round(window_seconds / FRAME_SECONDS)
        self.window_samples = self.window_frames * self.vad.frame
        self.update_samples = round(update_seconds * SAMPLE_RATE)
        self.min_speech_seconds = min_speech_seconds
        self._unframed = np.zeros(0, np.float32)  # samples short of a whole VAD frame
        self._audio = np.zeros(0, np.float32)  # the window, whole frames only
        self._speech = np.zeros(0, bool)
        self._since_update = 0
        self._heard = 0  # 16 kHz samples heard since the stream started
        self._rate: int | None = None
        self._resampler: soxr.ResampleStream | None = None

    def _to_16k(self, rate: int, samples: np.ndarray) -> np.ndarray:
        x = prepare_waveform(np.asarray(samples), rate, target_rate=rate)  # mono float
        if rate == SAMPLE_RATE:
            return x
        if rate != self._rate:  # first chunk, or the browser switched devices
            self._rate = rate
            self._resampler = soxr.ResampleStream(
                rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ"
            )
        return self._resampler.resample_chunk(x)

    @property
    def elapsed(self) -> float:
        """Seconds of audio heard since the stream started."""
        return self._heard / SAMPLE_RATE

    @property
    def speech_seconds(self) -> float:
        return float(self._speech.sum() * FRAME_SECONDS)

    def push(self, rate: int, samples: np.ndarray) -> LiveStep:
        """Add one chunk ``samples`` (``[n]`` or ``[n, channels]``) recorded at ``rate``."""
        x = np.concatenate([self._unframed, self._to_16k(int(rate), samples)])
        whole = len(x) // self.vad.frame * self.vad.frame
        x, self._unframed = x[:whole], x[whole:]
        self._audio = np.concatenate([self._audio, x])[-self.window_samples :]
        self._speech = np.concatenate([self._speech, self.vad.process(x)])[-self.window_frames :]
        self._since_update += x.size
        self._heard += x.size
        if self._since_update < self.update_samples:
            return LiveStep(False, None, self.speech_seconds)
        self._since_update -= self.update_samples
        if self.speech_seconds < self.min_speech_seconds:
            return LiveStep(True, None, self.speech_seconds)
        frames = self._audio.reshape(len(self._speech), self.vad.frame)
        return LiveStep(True, frames[self._speech].reshape(-1), self.speech_seconds)


class SpeakerTimeline:
    """Who spoke when, over the last :data:`TIMELINE_SECONDS` of a live stream.

    Each update says who was heard in the window that ended at ``time``; consecutive
    updates with the same answer make one segment, silence ends a segment.
    """

    def __init__(self, span: float = TIMELINE_SECONDS, step: float = UPDATE_SECONDS):
        self.span = span
        self.step = step
        self._events: deque[tuple[float, str | None]] = deque()

    def add(self, time: float, label: str | None) -> None:
        """The answer at ``time`` (seconds of audio): a name, "unknown", or ``None``
        for silence."""
        self._events.append((float(time), label))
        while self._events and self._events[0][0] < time - self.span - self.step:
            self._events.popleft()

    @property
    def now(self) -> float:
        return self._events[-1][0] if self._events else 0.0

    def segments(self) -> list[tuple[float, float, str]]:
        """``(start, end, label)`` of each stretch of one answer, in the last ``span``."""
        result: list[list] = []
        for time, label in self._events:
            start = time - self.step
            if label is None:
                continue
            if result and result[-1][2] == label and start <= result[-1][1] + 1e-6:
                result[-1][1] = time
            else:
                result.append([start, time, label])
        low = self.now - self.span
        return [(max(a, low), b, c) for a, b, c in result if b > low]
