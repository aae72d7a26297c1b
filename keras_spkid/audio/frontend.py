"""Log-mel filterbank front end as a Keras layer, so a saved model takes raw audio.

``LogMel`` runs inside the TensorFlow graph (``tf.signal``), which lets the same layer
serve three places: inside a ``.keras`` model (raw 16 kHz audio in, embedding out), in
``tf.data`` pipelines on the fly, and in the feature cache. Its filterbank follows
librosa's construction (Slaney or HTK mel scale) and is tested against librosa.

``KaldiFbank`` is its sibling for models trained on Kaldi filterbanks (CAM++ and most
pretrained speaker encoders): Kaldi's framing, Povey window, pre-emphasis and mel
banks, tested against ``kaldi-native-fbank``.

``SpecAugment`` masks random time and frequency bands during training only.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def hz_to_mel(hz, htk: bool = False):
    """Frequency in Hz to mels: HTK's ``2595 log10(1 + f/700)`` or Slaney's scale."""
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    linear = hz / f_sp
    return np.where(
        hz >= min_log_hz,
        min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep,
        linear,
    )


def mel_to_hz(mel, htk: bool = False):
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(
        mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters, ``[n_mels, 1 + n_fft // 2]`` float32.

    The same construction as ``librosa.filters.mel``: filters are triangles between
    consecutive points equally spaced in mels; ``norm="slaney"`` scales each to unit
    area so that wide high-frequency filters do not dominate.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    return weights.astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_spkid")
class LogMel(keras.layers.Layer):
    """Raw waveform ``[batch, samples]`` to log-mel filterbanks ``[batch, frames, n_mels]``.

    The power spectrogram uses a ``win_length`` window every ``hop_length`` samples,
    zero-padded to ``n_fft``; with ``center=True`` the signal is padded by
    ``win_length // 2`` on both sides so frame ``t`` is centred on sample
    ``t * hop_length``, exactly as librosa and torchaudio do, giving
    ``1 + samples // hop_length`` frames. The mel energies are ``log(mel + log_offset)``.

    Args:
        sample_rate: rate of the input waveform (16 kHz throughout keras-spkid).
        n_mels: number of mel bands (40, 64 or 80 are usual).
        n_fft: FFT size.
        win_length: window length in samples (400 = 25 ms at 16 kHz).
        hop_length: hop in samples (160 = 10 ms at 16 kHz).
        fmin, fmax: band edges of the filterbank in Hz (``fmax=None``: Nyquist).
        window: ``"hann"`` or ``"hamming"`` (periodic, as librosa/scipy ``fftbins``).
        mel_scale: ``"slaney"`` (librosa default) or ``"htk"`` (torchaudio default).
        mel_norm: ``"slaney"`` (area normalisation) or ``None``.
        log_offset: added before the log, so silence maps to ``log(log_offset)``.
        normalize: per-utterance normalisation over time of each band: ``"mean"``
            (cepstral mean normalisation), ``"mean_var"`` (CMVN) or ``None``.
        center: pad so frames are centred on their hop position.
        pad_mode: ``"constant"`` (zeros, librosa's default) or ``"reflect"``.

    Example:
    >>> layer = LogMel(n_mels=64)
    >>> layer(np.zeros((2, 16000), "float32")).shape
    TensorShape([2, 101, 64])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        fmin: float = 20.0,
        fmax: float | None = 7600.0,
        window: str = "hann",
        mel_scale: str = "slaney",
        mel_norm: str | None = "slaney",
        log_offset: float = 1e-6,
        normalize: str | None = "mean",
        center: bool = True,
        pad_mode: str = "constant",
        **kwargs,
    ):
        # Filterbanks are computed in float32 even under a mixed-precision policy.
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if window not in ("hann", "hamming"):
            raise ValueError(f"window must be 'hann' or 'hamming', got {window!r}")
        if mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}")
        if normalize not in (None, "mean", "mean_var"):
            raise ValueError(f"normalize must be None, 'mean' or 'mean_var', got {normalize!r}")
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.window = window
        self.mel_scale = mel_scale
        self.mel_norm = mel_norm
        self.log_offset = log_offset
        self.normalize = normalize
        self.center = center
        self.pad_mode = pad_mode
        self._filters = np.ascontiguousarray(
            mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, mel_scale == "htk", mel_norm).T
        )  # [1 + n_fft // 2, n_mels], a constant of the graph

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return max(0, 1 + (num_samples - self.win_length) // self.hop_length)

    def call(self, waveform):
        window_fn = tf.signal.hann_window if self.window == "hann" else tf.signal.hamming_window
        spectrum = tf.signal.stft(
            self.padded(waveform),
            frame_length=self.win_length,
            frame_step=self.hop_length,
            fft_length=self.n_fft,
            window_fn=window_fn,
        )
        power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
        return self.log_mel(power)

    def padded(self, waveform):
        """``[B, samples]`` as float32, padded by ``win_length // 2`` on both sides when
        ``center`` (``pad_mode``), ready to be cut into frames."""
        x = tf.convert_to_tensor(waveform, dtype=tf.float32)
        if not self.center:
            return x
        pad = self.win_length // 2
        mode = "CONSTANT" if self.pad_mode == "constant" else "REFLECT"
        return tf.pad(x, [[0, 0], [pad, pad]], mode=mode)

    def log_mel(self, power):
        """Power spectrum ``[B, T, 1 + n_fft // 2]`` -> normalised log-mel ``[B, T, n_mels]``."""
        features = tf.math.log(
            tf.tensordot(power, tf.constant(self._filters), axes=1) + self.log_offset
        )
        return self.normalize_over_time(features)

    def normalize_over_time(self, features):
        """``[B, T, n_mels]`` features less each band's mean over time (and divided by its
        standard deviation for ``"mean_var"``), as ``normalize`` says."""
        if self.normalize is None:
            return features
        features = features - tf.reduce_mean(features, axis=1, keepdims=True)
        if self.normalize == "mean_var":
            std = tf.sqrt(tf.reduce_mean(tf.square(features), axis=1, keepdims=True))
            features = features / (std + 1e-5)
        return features

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.num_frames(samples)
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            n_mels=self.n_mels,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            fmin=self.fmin,
            fmax=self.fmax,
            window=self.window,
            mel_scale=self.mel_scale,
            mel_norm=self.mel_norm,
            log_offset=self.log_offset,
            normalize=self.normalize,
            center=self.center,
            pad_mode=self.pad_mode,
        )
        return config


def kaldi_mel_scale(hz):
    """Kaldi's mel scale, ``1127 ln(1 + f / 700)`` (HTK's, in natural log)."""
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def kaldi_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 20.0, fmax: float = 0.0
) -> np.ndarray:
    """Kaldi's triangular mel banks, ``[n_mels, 1 + n_fft // 2]`` float32.

    As ``kaldi::MelBanks``: ``n_mels + 2`` points equally spaced on
    :func:`kaldi_mel_scale` between ``fmin`` and ``fmax`` (``fmax <= 0`` counts down from
    the Nyquist frequency); each filter is a triangle in the MEL domain over the FFT bins
    strictly inside its outer points, with peak 1 and no area normalisation. The Nyquist
    bin (the last column) is never used, as in Kaldi.
    """
    nyquist = sample_rate / 2
    fmax = nyquist + fmax if fmax <= 0 else fmax
    if not 0 <= fmin < fmax <= nyquist:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")
    low, high = kaldi_mel_scale(fmin), kaldi_mel_scale(fmax)
    delta = (high - low) / (n_mels + 1)
    left = low + delta * np.arange(n_mels)[:, None]
    center, right = left + delta, left + 2 * delta
    mel = kaldi_mel_scale(np.arange(n_fft // 2) * sample_rate / n_fft)[None, :]
    rising, falling = (mel - left) / (center - left), (right - mel) / (right - center)
    weights = np.where((mel > left) & (mel < right), np.where(mel <= center, rising, falling), 0.0)
    return np.pad(weights, [(0, 0), (0, 1)]).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_spkid")
class KaldiFbank(LogMel):
    """Raw waveform ``[batch, samples]`` to Kaldi log-mel filterbanks ``[batch, frames, n_mels]``.

    The same features as Kaldi's ``compute-fbank-feats`` (and ``kaldi-native-fbank``,
    ``torchaudio.compliance.kaldi.fbank``) with ``dither=0``, ``snip_edges=true``,
    ``use_energy=false``: frames of ``win_length`` samples every ``hop_length`` (no
    padding, so ``1 + (samples - win_length) // hop_length`` frames); per frame the DC
    offset is removed, then pre-emphasis ``x[i] -= preemphasis * x[i-1]`` (``x[0]``
    against itself), then the Povey window ``(0.5 - 0.5 cos(2 pi i / (N-1)))^0.85``;
    the power spectrum of the frame zero-padded to ``n_fft`` goes through
    :func:`kaldi_mel_filterbank`; features are ``log(max(energy, float32 eps))``.
    ``normalize="mean"`` then subtracts the utterance mean of each band (what CAM++
    and the 3D-Speaker recipes do). The waveform scale is kept as given (floats in
    [-1, 1] here; Kaldi tools read int16 values, which only shifts every log energy by
    the same constant, removed by mean normalisation, except near the floor).

    Being a :class:`LogMel`, it exposes the same attributes (``sample_rate``,
    ``n_mels``, ``win_length``, ``hop_length``, ``num_frames``) to the code that embeds
    audio; ``center`` is always False.

    Args:
        sample_rate: rate of the input waveform.
        n_mels: mel bands (80 for CAM++).
        n_fft: FFT size (Kaldi rounds the window up to a power of two: 512 for 400).
        win_length, hop_length: frame length and shift in samples (25 ms, 10 ms).
        fmin: low edge of the mel banks in Hz (Kaldi's ``low_freq``, 20).
        fmax: high edge in Hz; ``<= 0`` is relative to Nyquist (Kaldi's ``high_freq``, 0).
        preemphasis: pre-emphasis coefficient (0 disables it).
        remove_dc_offset: subtract each frame's mean before pre-emphasis.
        normalize: ``"mean"``, ``"mean_var"`` or ``None`` (see :class:`LogMel`).

    Example:
    >>> KaldiFbank(n_mels=80)(np.zeros((2, 16000), "float32")).shape
    TensorShape([2, 98, 80])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        fmin: float = 20.0,
        fmax: float = 0.0,
        preemphasis: float = 0.97,
        remove_dc_offset: bool = True,
        normalize: str | None = "mean",
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        keras.layers.Layer.__init__(self, **kwargs)
        if normalize not in (None, "mean", "mean_var"):
            raise ValueError(f"normalize must be None, 'mean' or 'mean_var', got {normalize!r}")
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.preemphasis = preemphasis
        self.remove_dc_offset = remove_dc_offset
        self.normalize = normalize
        self.center = False
        self._filters = np.ascontiguousarray(
            kaldi_mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).T
        )  # [1 + n_fft // 2, n_mels]
        i = np.arange(win_length, dtype=np.float64)
        self._window = ((0.5 - 0.5 * np.cos(2 * np.pi * i / (win_length - 1))) ** 0.85).astype(
            np.float32
        )

    def windowed_frames(self, waveform):
        """``[B, samples]`` -> frames ``[B, T, win_length]``, DC-free, pre-emphasised, windowed."""
        x = tf.convert_to_tensor(waveform, dtype=tf.float32)
        frames = tf.signal.frame(x, self.win_length, self.hop_length)  # [B, T, win]
        if self.remove_dc_offset:
            frames = frames - tf.reduce_mean(frames, axis=-1, keepdims=True)
        if self.preemphasis:
            previous = tf.concat([frames[..., :1], frames[..., :-1]], axis=-1)
            frames = frames - self.preemphasis * previous
        return frames * tf.constant(self._window)

    def power_spectrum(self, frames):
        """``[B, T, win_length]`` -> ``[B, T, n_fft // 2 + 1]``, frames zero-padded to n_fft."""
        spectrum = tf.signal.rfft(frames, fft_length=[self.n_fft])
        return tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))

    def call(self, waveform):
        power = self.power_spectrum(self.windowed_frames(waveform))
        energies = tf.tensordot(power, tf.constant(self._filters), axes=1)
        features = tf.math.log(tf.maximum(energies, float(np.finfo(np.float32).eps)))
        return self.normalize_over_time(features)

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        config.update(
            sample_rate=self.sample_rate,
            n_mels=self.n_mels,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            fmin=self.fmin,
            fmax=self.fmax,
            preemphasis=self.preemphasis,
            remove_dc_offset=self.remove_dc_offset,
            normalize=self.normalize,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking of ``[batch, frames, bands]`` features while training.

    Each example gets ``num_time_masks`` bands of ``[0, time_mask_param]`` consecutive
    frames and ``num_freq_masks`` bands of ``[0, freq_mask_param]`` consecutive mel
    bins set to ``fill_value`` (0 is the utterance mean after mean normalisation).
    At inference (``training=False``) the input passes through unchanged.

    Args:
        freq_mask_param: widest frequency mask, in bins.
        time_mask_param: widest time mask, in frames.
        num_freq_masks, num_time_masks: masks of each kind per example.
        fill_value: value written into masked cells.
        seed: seeds the layer's random stream, for reproducible training.
    """

    def __init__(
        self,
        freq_mask_param: int = 8,
        time_mask_param: int = 20,
        num_freq_masks: int = 2,
        num_time_masks: int = 2,
        fill_value: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min(freq_mask_param, time_mask_param, num_freq_masks, num_time_masks) < 0:
            raise ValueError("SpecAugment mask sizes and counts must be >= 0")
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.num_freq_masks = num_freq_masks
        self.num_time_masks = num_time_masks
        self.fill_value = fill_value
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _band_mask(self, batch, length, max_width, count):
        """``[batch, length]`` bool, True inside any of ``count`` random bands."""
        positions = tf.range(length)[None, None, :]
        widths = keras.random.randint((batch, count, 1), 0, max_width + 1, seed=self.seed_generator)
        widths = tf.minimum(widths, length)
        starts = tf.cast(
            keras.random.uniform((batch, count, 1), seed=self.seed_generator)
            * tf.cast(length - widths + 1, tf.float32),
            tf.int32,
        )
        inside = (positions >= starts) & (positions < starts + widths)
        return tf.reduce_any(inside, axis=1)

    def call(self, features, training=False):
        if not training:
            return features
        shape = tf.shape(features)
        batch, frames, bands = shape[0], shape[1], shape[2]
        masked = tf.zeros((batch, frames, bands), tf.bool)
        if self.num_time_masks and self.time_mask_param:
            masked |= self._band_mask(batch, frames, self.time_mask_param, self.num_time_masks)[
                :, :, None
            ]
        if self.num_freq_masks and self.freq_mask_param:
            masked |= self._band_mask(batch, bands, self.freq_mask_param, self.num_freq_masks)[
                :, None, :
            ]
        fill = tf.cast(self.fill_value, features.dtype)
        return tf.where(masked, fill, features)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            freq_mask_param=self.freq_mask_param,
            time_mask_param=self.time_mask_param,
            num_freq_masks=self.num_freq_masks,
            num_time_masks=self.num_time_masks,
            fill_value=self.fill_value,
            seed=self.seed,
        )
        return config
