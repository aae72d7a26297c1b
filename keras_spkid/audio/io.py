"""Audio in: any common file or microphone buffer to 16 kHz mono float32 in [-1, 1].

Speaker-recognition inputs arrive as 8 kHz telephone FLAC, 16 kHz VoxCeleb WAV, m4a from
VoxCeleb2 or YouTube, and 44.1/48 kHz int16 stereo from browser microphones. Everything
goes through :func:`prepare_waveform` (mono mix, DC removal, resampling) so that the
front end only ever sees one kind of signal.

Decoding uses soundfile (libsndfile: wav, flac, ogg, mp3, ...) and falls back to the
``ffmpeg`` binary for what libsndfile cannot read (m4a/aac, webm/opus). ``tensorflow-io``
is deliberately not used: its last release fails at import with TF >= 2.18.

Bad input raises :class:`~keras_spkid.errors.AudioError` with one line naming the file,
what is wrong and what to do.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile
import soxr

from keras_spkid.errors import AudioError

SAMPLE_RATE = 16000
"""The sample rate of every waveform inside keras-spkid."""

SILENCE_PEAK = 1e-4
"""Peak absolute amplitude under which a clip counts as silent (about -80 dBFS)."""

_FFMPEG_ONLY = {".m4a", ".aac", ".mp4", ".webm", ".opus", ".wma", ".mkv"}


def prepare_waveform(
    samples: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Mono, DC-free, resampled float32 waveform from any PCM buffer.

    Args:
        samples: ``[n]`` or ``[n, channels]`` array; integer PCM (int16, int32, uint8)
            is scaled to [-1, 1], floats are taken as they are.
        sample_rate: rate of ``samples`` in Hz.
        target_rate: rate of the result (16 kHz by default).

    Returns:
        ``[m]`` float32 array at ``target_rate``, clipped to [-1, 1].
    """
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        if info.min == 0:  # unsigned 8-bit PCM is centred on 128
            x = (x.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
        else:
            x = x.astype(np.float32) / float(-info.min)
    else:
        x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        # Channels last is the soundfile/gradio convention; a [channels, n] buffer
        # with few rows and many columns is transposed.
        if x.shape[0] < x.shape[1] and x.shape[0] <= 8:
            x = x.T
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise ValueError(f"expected a [n] or [n, channels] waveform, got shape {x.shape}")
    if x.size:
        x = x - x.mean(dtype=np.float64).astype(np.float32)
    if sample_rate != target_rate and x.size:
        x = soxr.resample(x, sample_rate, target_rate, quality="HQ").astype(np.float32)
    return np.clip(x, -1.0, 1.0)


def load_audio(
    path,
    sample_rate: int = SAMPLE_RATE,
    min_seconds: float = 0.0,
    allow_silence: bool = False,
) -> np.ndarray:
    """Read an audio file as a mono float32 waveform at ``sample_rate``.

    Args:
        path: wav, flac, ogg, mp3 (soundfile) or m4a/aac/webm/opus (ffmpeg).
        sample_rate: rate of the result.
        min_seconds: clips shorter than this raise (a 0.1 s clip carries no voice
            identity worth embedding).
        allow_silence: if False, an all-silent clip raises.

    Returns:
        ``[n]`` float32 array in [-1, 1].

    Raises:
        AudioError: missing, empty, undecodable, too short or silent file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(
            path, "file not found", "check the path, or the root the list is relative to"
        )
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)", "re-download or delete it")
    if path.suffix.lower() in _FFMPEG_ONLY:
        x = _decode_ffmpeg(path, sample_rate)
    else:
        try:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
            x = prepare_waveform(samples, rate, sample_rate)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
            libsndfile_error = str(error).splitlines()[0]
            try:
                x = _decode_ffmpeg(path, sample_rate)
            except AudioError:
                raise AudioError(
                    path,
                    f"cannot decode audio ({libsndfile_error})",
                    "the file is corrupt or not audio; re-download or delete it",
                ) from None
    check_waveform(x, sample_rate, path, min_seconds, allow_silence)
    return x


def check_waveform(
    x: np.ndarray,
    sample_rate: int,
    source="<waveform>",
    min_seconds: float = 0.0,
    allow_silence: bool = False,
) -> None:
    """Raise :class:`AudioError` if ``x`` is empty, shorter than ``min_seconds`` or silent."""
    seconds = x.size / sample_rate
    if x.size == 0:
        raise AudioError(source, "no audio samples", "the file holds a header but no sound")
    if seconds < min_seconds:
        raise AudioError(
            source,
            f"too short: {seconds:.2f} s (minimum {min_seconds:.2f} s)",
            "use a longer clip",
        )
    if not allow_silence and float(np.max(np.abs(x))) < SILENCE_PEAK:
        raise AudioError(source, "clip is silent", "check the microphone or the recording")


def run_ffmpeg(source, output_args) -> bytes:
    """Run the ffmpeg binary on the media file ``source``; what it writes to stdout.

    The one place keras-spkid calls ffmpeg (decoding here, the download steps' 16-bit PCM
    and wav conversions). It runs from an argument list (no shell) with an absolute
    input path, so a file name that starts with ``-`` cannot be read as an option.

    Args:
        source: the media file.
        output_args: everything after ``-i <source>`` (codec, rate, format, output).

    Raises:
        AudioError: ffmpeg is not installed, or cannot decode ``source``.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            source,
            f"'{Path(source).suffix}' needs ffmpeg, which is not installed",
            "install it: apt-get install ffmpeg",
        )
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", str(Path(source).resolve()),
        *output_args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[-1] if detail else f"ffmpeg exit status {result.returncode}"
        raise AudioError(
            source,
            f"cannot decode audio ({reason})",
            "the file is corrupt or not audio; re-download or delete it",
        )
    return result.stdout


def _decode_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    """Decode with the ffmpeg binary to mono float32 at ``sample_rate``."""
    output = run_ffmpeg(path, ["-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"])
    if not output:
        raise AudioError(
            path,
            "cannot decode audio (ffmpeg found no samples)",
            "the file is corrupt or not audio; re-download or delete it",
        )
    x = np.frombuffer(output, dtype="<f4").astype(np.float32)
    if x.size:
        x = x - x.mean(dtype=np.float64).astype(np.float32)
    return np.clip(x, -1.0, 1.0)
