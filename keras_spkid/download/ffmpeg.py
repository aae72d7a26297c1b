"""The one ffmpeg conversion of the download steps: any media file to 16 kHz mono PCM.

Used twice: YouTube audio (webm/opus, m4a/aac) is decoded whole before it is cut into
utterances, and VoxCeleb2's m4a files become wav files. The output is always 16 kHz,
mono, signed 16-bit PCM, what the official VoxCeleb1 wav release holds and what
``voxceleb_trainer`` produces (``-ac 1 -vn -acodec pcm_s16le -ar 16000``).

No ``aresample=async`` start correction is applied: ffmpeg already drops the codec
delay (Opus pre-skip, AAC priming), and padding to the container's first timestamp
shifted Opus audio by 7 ms in tests. Sample 0 is the first sound of the media, the
origin of the VoxCeleb video frame numbers.

ffmpeg runs through :func:`keras_spkid.audio.io.run_ffmpeg` (no shell, absolute paths,
so a file name that starts with ``-``, as YouTube ids may, cannot be read as an option).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_spkid.atomic import atomic_path
from keras_spkid.audio.io import SAMPLE_RATE, run_ffmpeg

_PCM_ARGS = ("-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le")


def decode_pcm16(source) -> np.ndarray:
    """Decode a media file to an ``int16`` array of shape ``[samples]`` at 16 kHz.

    Raises:
        AudioError: ffmpeg cannot decode the file (corrupt or not media).
    """
    output = run_ffmpeg(source, [*_PCM_ARGS, "-f", "s16le", "pipe:1"])
    return np.frombuffer(output, dtype="<i2").copy()


def to_wav(source, target) -> None:
    """Convert a media file to a 16 kHz mono 16-bit wav file, atomically.

    Raises:
        AudioError: ffmpeg cannot decode the file; ``target`` is then not created.
    """
    with atomic_path(Path(target).resolve()) as tmp:
        run_ffmpeg(source, [*_PCM_ARGS, "-f", "wav", "-y", str(tmp)])
