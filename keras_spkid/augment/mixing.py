"""The signal operations of data augmentation, as TensorFlow graph ops.

All functions take and return float32 waveforms at 16 kHz and run inside
``tf.data`` maps (graph mode). Randomness comes from stateless ops with an explicit
``seed`` (an int ``[2]`` tensor), so the same seed always gives the same output,
whatever the number of parallel calls.
"""

from __future__ import annotations

import tensorflow as tf

_EPSILON = 1e-10
"""Power floor (-100 dB). voxceleb_trainer adds 1e-4 (-40 dB) before the log, which
biases the achieved SNR by several dB for quiet speech; this floor only avoids log(0)."""


def mean_power(waveform: tf.Tensor) -> tf.Tensor:
    """Mean square of a ``[samples]`` waveform, a scalar."""
    return tf.reduce_mean(tf.square(waveform))


def scale_to_snr(clean: tf.Tensor, noise: tf.Tensor, snr_db: tf.Tensor) -> tf.Tensor:
    """``noise`` scaled so that ``clean`` is ``snr_db`` dB above it.

    Args:
        clean: ``[samples]`` speech.
        noise: ``[samples]`` noise of the same length.
        snr_db: scalar, the wanted ``10 log10(P_clean / P_noise)``.

    Returns:
        ``[samples]``, the scaled noise (zeros when ``noise`` is silent).
    """
    target = (mean_power(clean) + _EPSILON) / tf.pow(10.0, snr_db / 10.0)
    return noise * tf.sqrt(tf.math.divide_no_nan(target, mean_power(noise)))


def fit_length(noise: tf.Tensor, length: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A random ``[length]`` window of ``noise``, repeated first if it is shorter.

    Args:
        noise: ``[n]`` waveform (an empty one counts as one zero sample).
        length: scalar int, the output length.
        seed: int ``[2]``, picks the window start.
    """
    noise = tf.pad(noise, [[0, tf.maximum(1 - tf.size(noise), 0)]])
    size = tf.size(noise)
    repeats = (length + size - 1) // size + 1
    tiled = tf.tile(noise, [repeats])
    start = tf.random.stateless_uniform(
        [], seed, minval=0, maxval=tf.size(tiled) - length + 1, dtype=tf.int32
    )
    return tiled[start : start + length]


def reverberate(waveform: tf.Tensor, rir: tf.Tensor) -> tf.Tensor:
    """Convolve ``[samples]`` with an L2-normalised room impulse response ``[taps]``.

    Computed with FFTs of the next power of two of ``samples + taps - 1`` (the full
    linear convolution, as ``scipy.signal.convolve(mode='full')``), then truncated to
    the input length like voxceleb_trainer.

    Returns:
        ``[samples]``, the same length as ``waveform``.
    """
    rir = rir / tf.sqrt(tf.reduce_sum(tf.square(rir)) + _EPSILON)
    length = tf.size(waveform)
    full = length + tf.size(rir) - 1
    n_fft = tf.cast(
        2 ** tf.math.ceil(tf.math.log(tf.cast(full, tf.float32)) / tf.math.log(2.0)), tf.int32
    )
    spectrum = tf.signal.rfft(waveform, [n_fft]) * tf.signal.rfft(rir, [n_fft])
    return tf.signal.irfft(spectrum, [n_fft])[:length]


def read_wav(path: tf.Tensor) -> tf.Tensor:
    """Read a 16-bit PCM wav file in the graph; returns ``[samples]`` float32 (channel 0)."""
    audio, _ = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)
    return audio[:, 0]
