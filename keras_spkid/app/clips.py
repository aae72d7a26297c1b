"""Clips from the page (an uploaded or recorded file, or a raw microphone buffer) as
checked 16 kHz mono waveforms.

Gradio hands a handler either the path of a file it stored (uploads keep their format;
microphone recordings are 16-bit WAV at the browser's rate, 44.1 or 48 kHz) or, for
streams, ``(rate, int16 samples [n] or [n, channels])``. Both become 16 kHz mono float32
through :mod:`keras_spkid.audio.io`. A clip the model cannot say anything about is
refused with one line naming it ("clip 2: too short: 0.31 s ..."): under
:data:`MIN_SECONDS`, digitally silent, clipped, or without the minimum speech that every
entry point asks for (:func:`keras_spkid.audio.vad.require_speech`: silence, steady noise
and a click are not speech).

The files Gradio stores for uploads and recordings go to a folder of the demo's own
(:func:`clip_folder`), deleted when the demo stops; while it runs, the page deletes
clips older than an hour (:data:`keras_spkid.app.ui.CLIP_CACHE`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from keras_spkid.audio.io import (
    SAMPLE_RATE,
    check_waveform,
    load_audio,
    prepare_waveform,
)
from keras_spkid.audio.vad import require_speech
from keras_spkid.errors import AudioError

Clip = str | os.PathLike | tuple[int, np.ndarray] | None
"""A file path, a ``(sample rate, samples)`` buffer, or ``None`` (nothing given)."""

MIN_SECONDS = 0.5
"""Shorter clips carry too little voice to tell speakers apart."""

MAX_SECONDS = 300.0
"""Longer clips are refused before they are decoded: the page is for clips, and memory
grows with the duration (a 2-hour upload took the demo from 0.73 to 2.08 GB)."""


def clip_waveform(clip: Clip, label: str) -> np.ndarray:
    """The 16 kHz mono float32 waveform of ``clip``, checked for length and speech.

    Args:
        clip: a file path or a ``(rate, samples)`` buffer (integer PCM or float,
            mono or ``[n, channels]``).
        label: how the page names the clip in messages ("clip 2", "query").

    Raises:
        AudioError: nothing given, undecodable, non-finite, clipped, under
            :data:`MIN_SECONDS` or over :data:`MAX_SECONDS`, silent, or without enough
            speech.
    """
    if clip is None:
        raise AudioError(label, "no audio", "record or upload a clip first")
    if isinstance(clip, tuple):
        rate, samples = clip
        samples = np.asarray(samples)
        if int(rate) > 0 and len(samples) / int(rate) > MAX_SECONDS:
            raise AudioError(
                label,
                f"too long: {len(samples) / int(rate) / 60:.1f} min "
                f"(at most {MAX_SECONDS / 60:g} min)",
                "cut out a shorter clip",
            )
        x = prepare_waveform(samples, int(rate), source=label)
    else:
        path = Path(clip)
        try:
            x = load_audio(path, allow_silence=True, max_seconds=MAX_SECONDS)
        except AudioError as error:  # name the clip as the page does, not by a server path
            raise AudioError(
                label, error.reason.replace(str(path), path.name), error.hint
            ) from None
    check_waveform(x, SAMPLE_RATE, label, MIN_SECONDS)
    require_speech(x, label)
    return x


@contextlib.contextmanager
def clip_folder() -> Iterator[Path]:
    """A new folder for the clips pages upload or record, removed with everything in it
    on exit (Ctrl-C and SIGTERM included; see :func:`keras_spkid.app.ui.launch`).

    It is made inside ``$GRADIO_TEMP_DIR`` (else the system temporary folder) and set as
    ``GRADIO_TEMP_DIR`` for the demo built inside the ``with`` block.
    """
    parent = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="keras-spkid-clips-", dir=parent))
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous
