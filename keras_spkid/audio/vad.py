"""Energy voice-activity detection with hysteresis, and the minimum speech of a clip.

The demo's Live tab must ignore silence, or its answer would flip to nonsense every time
the speaker pauses; every entry point (extraction, evaluation, ``closest_celeb.py query``,
the demo and its service API) must refuse a clip without enough voice in it
(:func:`require_speech`), or the model names someone for silence, noise or a click.
Both need to know which 20 ms frames hold speech. A frame's RMS level (dBFS) is compared
with an onset level: at least :data:`SPEECH_DBFS` (quiet speech into a laptop microphone
sits around -35 dBFS, a quiet room under -55) and at least :data:`NOISE_MARGIN_DB` over
the noise floor, the 10th percentile of the last few seconds (so a fan or a hum does not
count as speech forever). Hysteresis keeps the decision steady: speech starts after
:data:`ONSET_SECONDS` above the onset level and ends only after :data:`HANGOVER_SECONDS`
more than :data:`RELEASE_DB` under it, so the gaps between words stay speech.

A whole clip (:func:`speech_frames`) is judged on its own terms: its speech level is
lowered by up to :data:`MAX_GAIN_DB` when its loudest frames are quiet (a clean recording
made far from the microphone is still speech), and speech must rise and fall: frames whose
levels spread less than :data:`MIN_SPREAD_DB` (Gaussian noise, a hum, a tone, room tone
boosted by that gain) are steady noise, not a voice. Measured on every real clip of
``../shared/data`` (``bench/bench_audio_checks.py``; see ``bench/RESULTS.md``).
"""

from __future__ import annotations

import collections

import numpy as np

from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.errors import AudioError

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
REFERENCE_DBFS = -20.0
"""Level of the loudest frames (95th percentile) that :data:`SPEECH_DBFS` assumes."""
MAX_GAIN_DB = 30.0
"""How far a quiet clip's speech level is lowered, at most."""
MIN_SPREAD_DB = 2.0
"""Speech frames of a clip must spread at least this much (90th - 10th percentile level);
Gaussian noise spreads 0.5-0.9 dB, the real clips at least 3.0 dB (an FSDD digit; WUW
8.6, LibriSpeech 14.3)."""
MIN_SPEECH_SECONDS = 0.1
"""Speech a clip needs before any entry point embeds it. Every real clip of
``../shared/data`` must pass: the shortest are FSDD digits (0.143 s, 0.12 s of speech;
164 of the 3,000 are under 0.25 s), so the minimum sits just under them. It refuses
clicks, 0.05 s snippets and anything the VAD hears no voice in."""
MIN_QUERY_SPEECH_SECONDS = 0.3
"""Speech a query needs before it is given a name (identify, verify, closest speaker).
The models are fed at least 1 s, and a shorter clip is repeated to fill it; with too
little voice in it the closest speaker is mostly someone else (LibriSpeech test readers,
closest of 251, conv6: wrong for 87% of 0.25 s queries, 55% at 0.5 s, 28% at 1 s, 7% at
2 s; a 0.25 s mp3 was named as another reader at 0.812). Wake words and digits are short
by nature, so the minimum sits under them: 99% of the WUW wake words hold 0.44 s of speech
or more, and on WUW test speakers 5-way 1-shot identification is 93-96% right. Enrolment
and evaluation keep :data:`MIN_SPEECH_SECONDS`."""


def frame_levels(
    x: np.ndarray, rate: int = SAMPLE_RATE, frame_seconds: float = FRAME_SECONDS
) -> np.ndarray:
    """RMS level in dBFS of each complete ``frame_seconds`` frame of ``x`` (float, [-1, 1])."""
    size = round(frame_seconds * rate)
    count = len(x) // size
    frames = np.asarray(x[: count * size], np.float32).reshape(count, size)
    power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / size  # no [n] temporary
    return 10.0 * np.log10(power + 1e-12)


class EnergyVAD:
    """Stateful speech/non-speech decision per frame over a stream of waveform chunks.

    Args:
        rate: sample rate of the chunks given to :meth:`process`.
        speech_dbfs: frames quieter than this never start speech.
    """

    def __init__(self, rate: int = SAMPLE_RATE, speech_dbfs: float = SPEECH_DBFS):
        self.rate = rate
        self.speech_dbfs = speech_dbfs
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
            return self.speech_dbfs
        floor = float(np.percentile(np.fromiter(self._history, float), 10))
        return max(self.speech_dbfs, floor + NOISE_MARGIN_DB)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Whether speech is on after each complete frame of ``chunk`` (and earlier leftovers).

        Returns:
            ``[frames]`` bool; samples short of a frame wait for the next chunk.
        """
        x = np.asarray(chunk, np.float32).reshape(-1)
        if self._pending.size:  # no copy of a whole clip when nothing is pending
            x = np.concatenate([self._pending, x])
        levels = frame_levels(x, self.rate, FRAME_SECONDS)
        self._pending = x[len(levels) * self.frame :].copy()  # not a view holding all of x
        return self.process_levels(levels)

    def process_levels(self, levels: np.ndarray) -> np.ndarray:
        """:meth:`process` of the next frames, given as their levels (:func:`frame_levels`).

        Args:
            levels: ``[frames]`` dBFS.

        Returns:
            ``[frames]`` bool.
        """
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


def speech_frames(x: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Which 20 ms frames of the whole ``[n]`` clip ``x`` hold speech
    (:func:`speech_frames_in_levels` of its :func:`frame_levels`).

    Returns:
        ``[frames]`` bool.
    """
    return speech_frames_in_levels(frame_levels(x, rate))


def speech_frames_in_levels(levels: np.ndarray) -> np.ndarray:
    """Which 20 ms frames of a whole clip hold speech, from the levels of all its frames.

    The clip's speech level is :data:`SPEECH_DBFS` lowered by as much as its loudest
    frames fall short of :data:`REFERENCE_DBFS` (at most :data:`MAX_GAIN_DB`); the frames
    that confirmed an onset count as speech too, the quiet hangover after each run of
    speech does not. Steady noise (speech frames spread less than :data:`MIN_SPREAD_DB`)
    holds no speech.

    Args:
        levels: ``[frames]`` dBFS (:func:`frame_levels` of the whole clip, or of its
            consecutive blocks of whole frames).

    Returns:
        ``[frames]`` bool.
    """
    if not len(levels):
        return np.zeros(0, bool)
    gain = float(np.clip(REFERENCE_DBFS - np.percentile(levels, 95), 0.0, MAX_GAIN_DB))
    speech = EnergyVAD(speech_dbfs=SPEECH_DBFS - gain).process_levels(levels)
    onset = round(ONSET_SECONDS / FRAME_SECONDS)
    for start in np.flatnonzero(np.diff(speech.astype(np.int8), prepend=0) == 1):
        speech[max(0, start - onset + 1) : start] = True
    quiet = levels < SPEECH_DBFS - gain - RELEASE_DB
    tail = True  # the hangover at the end of each run of speech is not speech
    for i in range(len(speech) - 1, -1, -1):
        if not speech[i]:
            tail = True
        elif tail and quiet[i]:
            speech[i] = False
        else:
            tail = False
    spoken = levels[speech]
    if spoken.size and np.percentile(spoken, 90) - np.percentile(spoken, 10) < MIN_SPREAD_DB:
        speech[:] = False
    return speech


def speech_seconds(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Seconds of speech in the whole clip ``x`` (:func:`speech_frames`)."""
    return float(speech_frames(x, rate).sum() * FRAME_SECONDS)


def require_speech(
    x: np.ndarray,
    source="<waveform>",
    rate: int = SAMPLE_RATE,
    min_seconds: float = MIN_SPEECH_SECONDS,
) -> float:
    """Raise :class:`AudioError` unless the ``[n]`` clip ``x`` holds ``min_seconds`` of
    speech.

    Returns:
        The seconds of speech found.
    """
    return require_speech_in_levels(x.size, frame_levels(x, rate), source, rate, min_seconds)


def require_speech_in_levels(
    size: int,
    levels: np.ndarray,
    source="<waveform>",
    rate: int = SAMPLE_RATE,
    min_seconds: float = MIN_SPEECH_SECONDS,
) -> float:
    """:func:`require_speech` of a clip of ``size`` samples at ``rate`` whose frames have
    the ``[frames]`` ``levels`` (measured as it was read, for a file read in blocks).

    Returns:
        The seconds of speech found.
    """
    seconds = size / rate
    if seconds < min_seconds:
        raise AudioError(
            source,
            f"too short: {seconds:.2f} s (at least {min_seconds:g} s of speech is needed)",
            "use a longer clip",
        )
    found = float(speech_frames_in_levels(levels).sum() * FRAME_SECONDS)
    if found == 0:
        raise AudioError(
            source,
            "no speech found: the clip is silent, too quiet, or steady noise",
            "record speech, close to the microphone",
        )
    if found < min_seconds:
        raise AudioError(
            source,
            f"too little speech: {found:.2f} s (at least {min_seconds:g} s is needed)",
            "use a clip with more speech",
        )
    return found
