"""Clips from the page (an uploaded or recorded file, or a raw microphone buffer) as
checked 16 kHz mono waveforms.

Gradio hands a handler either the path of a file it stored (uploads keep their format;
microphone recordings are 16-bit WAV at the browser's rate, 44.1 or 48 kHz) or, for
streams, ``(rate, int16 samples [n] or [n, channels])``. Both become 16 kHz mono float32
through :mod:`keras_spkid.audio.io`. A clip the model cannot say anything about is
refused with one line naming it ("clip 2: too short: 0.31 s ..."): under
:data:`MIN_SECONDS`, digitally silent, or without :data:`MIN_SPEECH_SECONDS` of frames
loud enough for speech (:mod:`keras_spkid.app.vad`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from keras_spkid.app.vad import speech_seconds
from keras_spkid.audio.io import (
    SAMPLE_RATE,
    check_waveform,
    load_audio,
    prepare_waveform,
)
from keras_spkid.errors import AudioError

Clip = str | os.PathLike | tuple[int, np.ndarray] | None
"""A file path, a ``(sample rate, samples)`` buffer, or ``None`` (nothing given)."""

MIN_SECONDS = 0.5
"""Shorter clips carry too little voice to tell speakers apart."""

MIN_SPEECH_SECONDS = 0.1
"""A clip needs at least this much speech-level audio."""


def clip_waveform(clip: Clip, label: str) -> np.ndarray:
    """The 16 kHz mono float32 waveform of ``clip``, checked for length and speech.

    Args:
        clip: a file path or a ``(rate, samples)`` buffer (integer PCM or float,
            mono or ``[n, channels]``).
        label: how the page names the clip in messages ("clip 2", "query").

    Raises:
        AudioError: nothing given, undecodable, under :data:`MIN_SECONDS`, or silent.
    """
    if clip is None:
        raise AudioError(label, "no audio", "record or upload a clip first")
    if isinstance(clip, tuple):
        rate, samples = clip
        x = prepare_waveform(np.asarray(samples), int(rate))
    else:
        path = Path(clip)
        try:
            x = load_audio(path, allow_silence=True)
        except AudioError as error:  # name the clip as the page does, not by a server path
            raise AudioError(
                label, error.reason.replace(str(path), path.name), error.hint
            ) from None
    check_waveform(x, SAMPLE_RATE, label, MIN_SECONDS)
    if speech_seconds(x) < MIN_SPEECH_SECONDS:
        raise AudioError(
            label,
            "no speech found: the clip is silent or too quiet",
            "speak closer to the microphone, or check that it is not muted",
        )
    return x
