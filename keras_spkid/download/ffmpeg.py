"""The one ffmpeg conversion of the download steps: any media file to 16 kHz mono PCM.

Used twice: YouTube audio (webm/opus, m4a/aac) is decoded whole before it is cut into
utterances, and VoxCeleb2's m4a files become wav files. The output is always 16 kHz,
mono, signed 16-bit PCM, what the official VoxCeleb1 wav release holds and what
``voxceleb_trainer`` produces (``-ac 1 -vn -acodec pcm_s16le -ar 16000``).

No ``aresample=async`` start correction is applied: ffmpeg already drops the codec
delay (Opus pre-skip, AAC priming), and padding to the container's first timestamp
shifted Opus audio by 7 ms in tests. Sample 0 is the first sound of the media, the
origin of the VoxCeleb video frame numbers.

ffmpeg runs from an argument list (no shell) with absolute paths, so a file name that
starts with ``-`` (YouTube ids may) cannot be read as an option.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from keras_spkid.atomic import atomic_path
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.errors import AudioError, SpkidError

_PCM_ARGS = ("-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le")


def decode_pcm16(source) -> np.ndarray:
    """Decode a media file to an ``int16`` array of shape ``[samples]`` at 16 kHz.

    Raises:
        AudioError: ffmpeg cannot decode the file (corrupt or not media).
    """
    source = Path(source).resolve()
    output = _run([*_input(source), *_PCM_ARGS, "-f", "s16le", "pipe:1"], source)
    return np.frombuffer(output, dtype="<i2").copy()


def to_wav(source, target) -> None:
    """Convert a media file to a 16 kHz mono 16-bit wav file, atomically.

    Raises:
        AudioError: ffmpeg cannot decode the file; ``target`` is then not created.
    """
    source = Path(source).resolve()
    with atomic_path(Path(target).resolve()) as tmp:
        _run([*_input(source), *_PCM_ARGS, "-f", "wav", "-y", str(tmp)], source)


def ffmpeg_binary() -> str:
    """Path of the ffmpeg executable, or a one-line error saying how to install it."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise SpkidError("ffmpeg not found on PATH (install it: apt-get install ffmpeg)")
    return binary


def _input(source: Path) -> list[str]:
    return [ffmpeg_binary(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(source)]


def _run(command: list[str], source: Path) -> bytes:
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[-1] if detail else f"ffmpeg exit status {result.returncode}"
        raise AudioError(
            source,
            f"ffmpeg cannot decode it ({reason})",
            "the file is corrupt or not media; delete it and run again",
        )
    return result.stdout
