"""Channel augmentation on cached, mean-normalised log-mel features.

Training from the feature cache (:mod:`keras_spkid.data.feature_cache`) is what keeps a
2-core machine busy with the model rather than with decoding, but it rules out the
waveform augmentations of :mod:`keras_spkid.augment.augmenter`. Three of them have a
close equivalent on the features, because mel energies of a sum of independent signals
add in the power domain (``mel(s + n) ≈ mel(s) + mel(n)``):

* **telephone band** (8 kHz channel): every mel band above a random cut-off between
  ``band_cutoff_hz`` is set to what an 8 kHz recording resampled to 16 kHz gives after
  mean normalisation, a constant 0. Bands that are already constant (8 kHz corpora) stay so.
* **stationary noise**: a random coloured spectrum (log-normal per band, constant in
  time) added at an SNR drawn from ``noise_snr_db``.
* **babble**: another crop of the same batch (another speaker, usually) added at an
  SNR drawn from ``babble_snr_db``.

SNRs are taken against the mean power of the whole crop (all bands, all frames), as
for waveforms. Each example gets each augmentation independently with its probability;
the result is mean-normalised again, so it matches what the front end would have made
of the augmented audio. Inference (``training=False``) passes features through.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_spkid.audio.frontend import mel_filterbank

_CONSTANT_BAND_STD = 1e-3  # a band with less spread over time carries no signal


@keras.saving.register_keras_serializable(package="keras_spkid")
class ChannelAugment(keras.layers.Layer):
    """Random telephone band, stationary noise and babble on ``[batch, frames, bands]``.

    Args:
        sample_rate, n_fft, fmin, fmax, mel_scale: the front end's filterbank, to find
            the centre frequency of each band (defaults: :class:`LogMel`'s).
        band_probability: chance of the telephone band for each example.
        band_cutoff_hz: range of the random upper band edge, in Hz.
        noise_probability, noise_snr_db: chance and SNR range of stationary noise.
        babble_probability, babble_snr_db: chance and SNR range of babble.
        seed: seeds the layer's random stream, for reproducible training.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        n_mels: int = 64,
        fmin: float = 20.0,
        fmax: float | None = 7600.0,
        mel_scale: str = "slaney",
        band_probability: float = 0.3,
        band_cutoff_hz: tuple[float, float] = (3300.0, 4000.0),
        noise_probability: float = 0.3,
        noise_snr_db: tuple[float, float] = (5.0, 20.0),
        babble_probability: float = 0.2,
        babble_snr_db: tuple[float, float] = (10.0, 20.0),
        seed: int | None = None,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        for name, p in (
            ("band", band_probability),
            ("noise", noise_probability),
            ("babble", babble_probability),
        ):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}_probability must be in [0, 1], got {p}")
        for name, (lo, hi) in (
            ("band_cutoff_hz", band_cutoff_hz),
            ("noise_snr_db", noise_snr_db),
            ("babble_snr_db", babble_snr_db),
        ):
            if lo > hi:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(lo, hi)}")
        self.sample_rate, self.n_fft, self.n_mels = sample_rate, n_fft, n_mels
        self.fmin, self.fmax, self.mel_scale = fmin, fmax, mel_scale
        self.band_probability = band_probability
        self.band_cutoff_hz = tuple(band_cutoff_hz)
        self.noise_probability = noise_probability
        self.noise_snr_db = tuple(noise_snr_db)
        self.babble_probability = babble_probability
        self.babble_snr_db = tuple(babble_snr_db)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        filters = mel_filterbank(
            sample_rate, n_fft, n_mels, fmin, fmax, mel_scale == "htk", "slaney"
        )  # [n_mels, 1 + n_fft // 2]
        fft_hz = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
        self._centres_hz = (filters @ fft_hz / filters.sum(axis=1)).astype(np.float32)

    def _uniform(self, shape, low, high):
        return keras.random.uniform(shape, low, high, seed=self.seed_generator)

    def _chosen(self, batch, probability):
        """``[batch, 1, 1]`` float, 1 for the examples that get an augmentation."""
        draw = keras.random.uniform((batch, 1, 1), seed=self.seed_generator)
        return tf.cast(draw < probability, tf.float32)

    def _snr_gain(self, batch, snr_db):
        """``[batch, 1, 1]`` power ratio of added signal to speech for a random SNR."""
        return tf.pow(10.0, -self._uniform((batch, 1, 1), *snr_db) / 10.0)

    def call(self, features, training=False):
        if not training:
            return features
        x = tf.cast(features, tf.float32)
        shape = tf.shape(x)
        batch, frames = shape[0], shape[1]
        constant = tf.math.reduce_std(x, axis=1, keepdims=True) < _CONSTANT_BAND_STD
        power = tf.exp(x)  # relative to each band's geometric mean, [B, T, F]
        speech_power = tf.reduce_mean(power, axis=[1, 2], keepdims=True)

        # Stationary coloured noise: log-normal band levels (1 neper spread), unit mean.
        colour = tf.exp(keras.random.normal((batch, 1, self.n_mels), seed=self.seed_generator))
        colour /= tf.reduce_mean(colour, axis=2, keepdims=True)
        noise = colour * speech_power * self._snr_gain(batch, self.noise_snr_db)
        mixed = power + self._chosen(batch, self.noise_probability) * noise

        # Babble: the next example of the batch, circularly shifted in time.
        other = tf.roll(tf.roll(power, 1, axis=0), frames // 2, axis=1)
        other_power = tf.reduce_mean(other, axis=[1, 2], keepdims=True)
        babble = other * (speech_power / other_power) * self._snr_gain(batch, self.babble_snr_db)
        mixed += self._chosen(batch, self.babble_probability) * babble

        y = tf.math.log(mixed)
        y -= tf.reduce_mean(y, axis=1, keepdims=True)
        cutoff = self._uniform((batch, 1, 1), *self.band_cutoff_hz)
        above = tf.constant(self._centres_hz)[None, None, :] > cutoff
        telephone = (self._chosen(batch, self.band_probability) > 0) & above
        y = tf.where(constant | telephone, 0.0, y)
        return tf.cast(y, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            mel_scale=self.mel_scale,
            band_probability=self.band_probability,
            band_cutoff_hz=self.band_cutoff_hz,
            noise_probability=self.noise_probability,
            noise_snr_db=self.noise_snr_db,
            babble_probability=self.babble_probability,
            babble_snr_db=self.babble_snr_db,
            seed=self.seed,
        )
        return config
