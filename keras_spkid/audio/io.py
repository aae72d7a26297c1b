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

import logging
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

FULL_SCALE = 0.999
"""Samples at least this loud (absolute, float scale) are clipped or about to be."""

MAX_CLIPPED_FRACTION = 0.01
"""Clips with more samples than this at :data:`FULL_SCALE` are refused: the most clipped
real clip of ``../shared/data`` has 0.036% (an FSDD digit), a LibriSpeech reader scaled x50
47% (``bench/RESULTS.md``)."""

CANCEL_DB = 20.0
"""A stereo mix this much quieter than its loudest channel means the channels cancel
(one is the other with its polarity inverted); that channel is used instead of the mix."""

BLOCK_SAMPLES = 256_000
"""Rows per block of the checks of a long waveform (16 s at 16 kHz, a whole number of the
VAD's 20 ms frames): no ``[n]`` temporaries, and a waveform in memory and a file read in
blocks (:mod:`keras_spkid.audio.blocks`) are summed over the same blocks, so that both
round alike."""

_FFMPEG_ONLY = {".m4a", ".aac", ".mp4", ".webm", ".opus", ".wma", ".mkv"}

logger = logging.getLogger(__name__)


def prepare_waveform(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int = SAMPLE_RATE,
    source="<waveform>",
    allow_clipping: bool = False,
    overwrite: bool = False,
) -> np.ndarray:
    """Mono, DC-free, resampled float32 waveform from any PCM buffer.

    Stereo is mixed to mono, except when the channels cancel in the mix (opposite
    polarity, :data:`CANCEL_DB`): then the loudest channel is used, with a warning.

    Args:
        samples: ``[n]`` or ``[n, channels]`` array; integer PCM (int16, int32, uint8)
            is scaled to [-1, 1], floats are taken as they are.
        sample_rate: rate of ``samples`` in Hz.
        target_rate: rate of the result (16 kHz by default).
        source: the file or buffer, for messages.
        allow_clipping: accept clipped audio (noise and music for augmentation; a voice
            to identify is refused).
        overwrite: ``samples`` may be changed in place (a buffer the caller decoded and
            drops, as :func:`load_audio` does): no second copy of a long waveform.

    Returns:
        ``[m]`` float32 array at ``target_rate``, clipped to [-1, 1].

    Raises:
        AudioError: NaN or infinite samples, or (unless ``allow_clipping``) more than
            :data:`MAX_CLIPPED_FRACTION` of the samples clipped.
    """
    x = np.asarray(samples)
    owned = overwrite  # whether x may be changed in place
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        if info.min == 0:  # unsigned 8-bit PCM is centred on 128
            x = (x.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
        else:
            x = x.astype(np.float32) / float(-info.min)
        owned = True
    else:
        converted = x.astype(np.float32, copy=False)
        owned = owned or converted is not x
        x = converted
    if x.ndim == 2:
        # Channels last is the soundfile/gradio convention; a [channels, n] buffer
        # with few rows and many columns is transposed.
        if x.shape[0] < x.shape[1] and x.shape[0] <= 8:
            x = x.T
    elif x.ndim != 1:
        raise ValueError(f"expected a [n] or [n, channels] waveform, got shape {x.shape}")
    rows = x if x.ndim == 2 else x[:, None]  # [n, channels], a view
    stats = RawStats(rows.shape[1])
    for start in range(0, len(rows), BLOCK_SAMPLES):
        stats.add(rows[start : start + BLOCK_SAMPLES])
    stats.check(sample_rate, source, allow_clipping)
    channel = stats.mono_channel(source)
    if rows.shape[1] > 1:
        owned = True  # a mix, or a copy of one channel
        x = rows.mean(axis=1) if channel is None else np.ascontiguousarray(rows[:, channel])
    else:
        x = rows[:, 0]
    if not x.size:
        return np.zeros(0, np.float32)
    if owned:
        x -= stats.mean(channel)
    else:
        x = x - stats.mean(channel)  # never the caller's buffer; a new array from here on
    if sample_rate != target_rate:
        x = soxr.resample(x, sample_rate, target_rate, quality="HQ").astype(np.float32)
    return np.clip(x, -1.0, 1.0, out=x)  # in place: no second copy of a long waveform


class RawStats:
    """What :func:`prepare_waveform` decides from a whole raw waveform, summed over its
    consecutive ``[rows, channels]`` float32 blocks (:data:`BLOCK_SAMPLES` rows each, but
    the last): non-finite and clipped samples, each channel's power and sum, and the
    mix's. A waveform in memory and a file read in blocks add the same blocks, so every
    decision, and the DC mean, comes out the same to the bit.

    Args:
        channels: columns of the blocks.
    """

    def __init__(self, channels: int):
        self.channels = channels
        self.rows = 0
        self.nonfinite = 0
        self.first_nonfinite = -1  # row of the first NaN or infinite sample
        self.clipped = 0
        self.peak = 0.0  # largest |sample|, any channel
        self.power = np.zeros(channels)  # [channels] sums of squares (float64)
        self.mix_power = 0.0
        self.sums = np.zeros(channels + 1)  # [channels + 1] sums: each channel, then the mix

    def add(self, block: np.ndarray) -> None:
        """Count in the next ``[rows, channels]`` float32 block."""
        count, first = nonfinite_stats(block)
        if count and self.first_nonfinite < 0:
            self.first_nonfinite = self.rows + first
        self.nonfinite += count
        clipped, peak = clipping_stats(block)
        self.clipped += clipped
        self.peak = max(self.peak, peak)
        for k in range(self.channels):
            column = np.ascontiguousarray(block[:, k])
            self.power[k] += _power(column)
            self.sums[k] += np.sum(column, dtype=np.float64)
        if self.channels > 1:
            mix = block.mean(axis=1)
            self.mix_power += _power(mix)
            self.sums[-1] += np.sum(mix, dtype=np.float64)
        self.rows += len(block)

    def check(self, sample_rate: int, source, allow_clipping: bool = False) -> None:
        """Raise :class:`AudioError` for NaN or infinite samples, then (unless
        ``allow_clipping``) for more than :data:`MAX_CLIPPED_FRACTION` clipped."""
        raise_nonfinite(self.nonfinite, self.first_nonfinite, sample_rate, source)
        if not allow_clipping:
            raise_clipped(self.clipped, self.rows * self.channels, self.peak, source)

    def mono_channel(self, source) -> int | None:
        """The channel the mono waveform is (``None``: the mean of the channels): the only
        one, or the loudest when the channels cancel in the mix (:data:`CANCEL_DB`; logged)."""
        if self.channels == 1:
            return 0
        loudest = int(np.argmax(self.power))
        cancelled = self.mix_power < self.power[loudest] * 10 ** (-CANCEL_DB / 10)
        if cancelled and self.power[loudest] > self.rows * SILENCE_PEAK**2:
            logger.warning(
                "%s: the channels cancel when mixed (opposite polarity); using channel %d only",
                source,
                loudest + 1,
            )
            return loudest
        return None

    def mean(self, channel: int | None) -> np.float32:
        """DC mean of the mono waveform :meth:`mono_channel` chose."""
        total = self.sums[-1 if channel is None else channel]
        return np.float32(total / max(self.rows, 1))


def _power(x: np.ndarray) -> float:
    """Sum of squares of the ``[n]`` float32 array ``x``, in float64."""
    return float(np.einsum("i,i->", x, x, dtype=np.float64))  # cast in small buffers


def nonfinite_stats(x: np.ndarray) -> tuple[int, int]:
    """NaN or infinite samples of ``x`` (``[n]`` or ``[n, channels]``): how many, and the
    row of the first (-1: none)."""
    if np.isfinite(np.sum(x, dtype=np.float64)):
        return 0, -1  # no [n] mask: a float64 sum of finite float32 samples stays finite
    finite = np.isfinite(x).reshape(len(x), -1)
    return int(finite.size - finite.sum()), int(np.argmin(finite.all(axis=1)))


def raise_nonfinite(count: int, first: int, sample_rate: int, source="<waveform>") -> None:
    """Raise :class:`AudioError` if ``count`` samples are NaN or infinite (one would make
    every feature, and so the embedding, NaN), the first at row ``first``."""
    if count:
        raise AudioError(
            source,
            f"{count} samples are NaN or infinite (the first at {first / sample_rate:.2f} s)",
            "the file is corrupt; re-export or delete it",
        )


def check_finite(x: np.ndarray, sample_rate: int, source="<waveform>") -> None:
    """Raise :class:`AudioError` if any sample of ``x`` (``[n]`` or ``[n, channels]``)
    is NaN or infinite."""
    count, first = 0, -1
    for start in range(0, len(x), BLOCK_SAMPLES):
        block_count, block_first = nonfinite_stats(x[start : start + BLOCK_SAMPLES])
        if block_count and first < 0:
            first = start + block_first
        count += block_count
    raise_nonfinite(count, first, sample_rate, source)


def clipping_stats(x: np.ndarray) -> tuple[int, float]:
    """Samples of the finite float array ``x`` (any shape) at :data:`FULL_SCALE`, and its
    peak ``max |x|`` (0 when empty)."""
    if not x.size:
        return 0, 0.0
    clipped = np.count_nonzero(x >= FULL_SCALE) + np.count_nonzero(x <= -FULL_SCALE)
    return int(clipped), max(float(x.max()), -float(x.min()))  # no |x| copy


def raise_clipped(clipped: int, size: int, peak: float, source="<waveform>") -> None:
    """Raise :class:`AudioError` if more than :data:`MAX_CLIPPED_FRACTION` of ``size``
    samples (``clipped`` of them at full scale, the loudest at ``peak``) are clipped."""
    fraction = clipped / size if size else 0.0
    if fraction > MAX_CLIPPED_FRACTION:
        raise AudioError(
            source,
            f"clipped: {100 * fraction:.0f}% of the samples are at full scale "
            f"(peak {peak:.3g}; at most {100 * MAX_CLIPPED_FRACTION:g}% is accepted)",
            "record at a lower level, or scale float audio into [-1, 1]",
        )


def check_clipping(x: np.ndarray, source="<waveform>") -> None:
    """Raise :class:`AudioError` if more than :data:`MAX_CLIPPED_FRACTION` of the samples
    of ``x`` (float, any shape) reach :data:`FULL_SCALE`."""
    flat = x.reshape(-1)
    clipped, peak = 0, 0.0
    for start in range(0, flat.size, BLOCK_SAMPLES):  # no [n] masks for a long waveform
        block_clipped, block_peak = clipping_stats(flat[start : start + BLOCK_SAMPLES])
        clipped, peak = clipped + block_clipped, max(peak, block_peak)
    raise_clipped(clipped, flat.size, peak, source)


def load_audio(
    path,
    sample_rate: int = SAMPLE_RATE,
    min_seconds: float = 0.0,
    allow_silence: bool = False,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Read an audio file as a mono float32 waveform at ``sample_rate``.

    Args:
        path: wav, flac, ogg, mp3 (soundfile) or m4a/aac/webm/opus (ffmpeg).
        sample_rate: rate of the result.
        min_seconds: clips shorter than this raise (a 0.1 s clip carries no voice
            identity worth embedding).
        allow_silence: if False, an all-silent clip raises.
        max_seconds: longer files raise, before they are decoded whole (memory grows
            with the duration, not with the file size: 50 MB of Opus is hours).

    Returns:
        ``[n]`` float32 array in [-1, 1].

    Raises:
        AudioError: missing, empty, undecodable (including any decoding error on the
            way: a corrupt file is refused, not decoded to noise), non-finite, clipped,
            too short or silent file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(
            path, "file not found", "check the path, or the root the list is relative to"
        )
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)", "re-download or delete it")
    if path.suffix.lower() in _FFMPEG_ONLY:
        samples, rate = _decode_ffmpeg(path, sample_rate, max_seconds), sample_rate
    else:
        try:
            with soundfile.SoundFile(path) as handle:
                rate = handle.samplerate
                _check_duration(path, handle.frames / rate, max_seconds)
                samples = handle.read(dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
            libsndfile_error = str(error).splitlines()[0]
            try:
                samples, rate = _decode_ffmpeg(path, sample_rate, max_seconds), sample_rate
            except AudioError:
                raise AudioError(
                    path,
                    f"cannot decode audio ({libsndfile_error})",
                    "the file is corrupt or not audio; re-download or delete it",
                ) from None
    _check_duration(path, len(samples) / rate, max_seconds)
    x = prepare_waveform(samples, rate, sample_rate, source=path, overwrite=True)
    check_waveform(x, sample_rate, path, min_seconds, allow_silence)
    return x


def check_waveform(
    x: np.ndarray,
    sample_rate: int,
    source="<waveform>",
    min_seconds: float = 0.0,
    allow_silence: bool = False,
) -> None:
    """Raise :class:`AudioError` if the ``[n]`` waveform ``x`` is empty, shorter than
    ``min_seconds`` or silent."""
    peak = max(float(x.max()), -float(x.min())) if x.size else 0.0  # no |x| copy
    check_length_and_peak(x.size, peak, sample_rate, source, min_seconds, allow_silence)


def check_length_and_peak(
    size: int,
    peak: float,
    sample_rate: int,
    source="<waveform>",
    min_seconds: float = 0.0,
    allow_silence: bool = False,
) -> None:
    """:func:`check_waveform` of a waveform of ``size`` samples whose largest ``|x|`` is
    ``peak`` (measured as it was read, for a file read in blocks)."""
    seconds = size / sample_rate
    if size == 0:
        raise AudioError(source, "no audio samples", "the file holds a header but no sound")
    if seconds < min_seconds:
        raise AudioError(
            source,
            f"too short: {seconds:.2f} s (minimum {min_seconds:.2f} s)",
            "use a longer clip",
        )
    if not allow_silence and peak < SILENCE_PEAK:
        raise AudioError(source, "clip is silent", "check the microphone or the recording")


def _check_duration(source, seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(
            source,
            f"too long: {seconds / 60:.1f} min or more (at most {max_seconds / 60:g} min)",
            "cut out a shorter clip",
        )


def run_ffmpeg(source, output_args) -> bytes:
    """Run the ffmpeg binary on the media file ``source``; what it writes to stdout.

    The one place keras-spkid calls ffmpeg (decoding here, the download steps' 16-bit PCM
    and wav conversions). It runs from an argument list (no shell) with an absolute
    input path, so a file name that starts with ``-`` cannot be read as an option. Any
    error ffmpeg reports fails the call: ffmpeg skips the frames it cannot decode and
    exits with status 0, so a corrupt file would otherwise come out as shortened,
    garbled audio.

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
    detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
    if result.returncode != 0 or detail:
        reason = detail[0] if detail else f"ffmpeg exit status {result.returncode}"
        if reason.startswith("[") and "] " in reason:  # "[flac @ 0x55...] invalid residual"
            reason = reason.split("] ", 1)[1]
        raise AudioError(
            source,
            f"cannot decode audio (ffmpeg: {reason})",
            "the file is corrupt or not audio; re-download or delete it",
        )
    return result.stdout


def _decode_ffmpeg(path: Path, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode with the ffmpeg binary to ``[n, 2]`` float32 at ``sample_rate`` (no shell;
    two channels, so that :func:`prepare_waveform` sees channels that cancel)."""
    args = ["-vn", "-ac", "2", "-ar", str(sample_rate), "-f", "f32le"]
    if max_seconds is not None:  # a second more than allowed is enough to say it is too long
        args += ["-t", f"{max_seconds + 1:g}"]
    output = run_ffmpeg(path, [*args, "pipe:1"])
    if not output:
        raise AudioError(
            path,
            "cannot decode audio (ffmpeg: no audio stream)",
            "the file is corrupt or not audio; re-download or delete it",
        )
    return np.frombuffer(output, dtype="<f4").astype(np.float32).reshape(-1, 2)
