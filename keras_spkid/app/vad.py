"""Energy voice-activity detection with hysteresis, for the demo's microphone input.

The Live tab must ignore silence, or its answer would flip to nonsense every time the
speaker pauses; enrolment and identification must refuse a clip with no voice in it.
Both need to know which 20 ms frames hold speech. A frame's RMS level (dBFS) is compared
with an onset level: at least :data:`SPEECH_DBFS` (quiet speech into a laptop microphone
sits around -35 dBFS, a quiet room under -55) and at least :data:`NOISE_MARGIN_DB` over
the noise floor, the 10th percentile of the last few seconds (so a fan or a hum does not
count as speech forever). Hysteresis keeps the decision steady: speech starts after
:data:`ONSET_SECONDS` above the onset level and ends only after :data:`HANGOVER_SECONDS`
more than :data:`RELEASE_DB` under it, so the gaps between words stay speech.
"""

from __future__ import annotations

import collections

import numpy as np

from keras_spkid.audio.io import SAMPLE_RATE

FRAME_SECONDS = 0.02
SPEECH_DBFS = -45.0
"""Frames quieter than this never start speech."""
NOISE_MARGIN_DB = 12.0
"""Speech must be this much louder than the noise floor."""
RELEASE_DB = 8.0
"""Speech ends on frames this far under the onset level (the hysteresis gap)."""
ONSET_SECONDS = 0.06
HANGOVER_SECONDS = 0.3
FLOOR_SECONDS = 5.0
"""How much recent history the noise floor is measured on."""


def frame_levels(
    x: np.ndarray, rate: int = SAMPLE_RATE, frame_seconds: float = FRAME_SECONDS
) -> np.ndarray:
    """RMS level in dBFS of each complete ``frame_seconds`` frame of ``x`` (float, [-1, 1])."""
    size = round(frame_seconds * rate)
    count = len(x) // size
    frames = np.asarray(x[: count * size], np.float64).reshape(count, size)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


class EnergyVAD:
    """Stateful speech/non-speech decision per frame over a stream of waveform chunks.

    Args:
        rate: sample rate of the chunks given to :meth:`process`.
    """

    def __init__(self, rate: int = SAMPLE_RATE):
        self.rate = rate
        self.frame = round(FRAME_SECONDS * rate)
        self.active = False
        self._run = 0  # consecutive frames arguing for a change of state
        self._pending = np.zeros(0, np.float32)  # samples short of a whole frame
        self._history: collections.deque[float] = collections.deque(
            maxlen=int(FLOOR_SECONDS / FRAME_SECONDS)
        )

    def onset_level(self) -> float:
        """The level (dBFS) a frame needs to count towards the start of speech."""
        if not self._history:
            return SPEECH_DBFS
        floor = float(np.percentile(np.fromiter(self._history, float), 10))
        return max(SPEECH_DBFS, floor + NOISE_MARGIN_DB)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Whether speech is on after each complete frame of ``chunk`` (and earlier leftovers).

        Returns:
            ``[frames]`` bool; samples short of a frame wait for the next chunk.
        """
        x = np.concatenate([self._pending, np.asarray(chunk, np.float32).reshape(-1)])
        levels = frame_levels(x, self.rate, FRAME_SECONDS)
        self._pending = x[len(levels) * self.frame :]
        onset = self.onset_level()
        onset_frames = round(ONSET_SECONDS / FRAME_SECONDS)
        hangover_frames = round(HANGOVER_SECONDS / FRAME_SECONDS)
        speech = np.zeros(len(levels), bool)
        for i, level in enumerate(levels):
            changing = level < onset - RELEASE_DB if self.active else level >= onset
            self._run = self._run + 1 if changing else 0
            if self._run >= (hangover_frames if self.active else onset_frames):
                self.active, self._run = not self.active, 0
            speech[i] = self.active
        self._history.extend(levels.tolist())
        return speech


def speech_seconds(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Seconds of ``x`` that :class:`EnergyVAD` takes for speech."""
    return float(EnergyVAD(rate).process(x).sum() * FRAME_SECONDS)
