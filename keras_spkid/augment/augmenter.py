"""Training-time augmentation as a ``tf.data`` map: MUSAN noise, babble, music, reverb.

The recipe of voxceleb_trainer's ``AugmentWAV``: each utterance independently gets
one of five treatments with equal probability,

============  =========================================================  ==========
kind          what is added                                              SNR (dB)
============  =========================================================  ==========
``none``      nothing
``reverb``    convolution with a random simulated RIR (L2-normalised)
``music``     one MUSAN music chunk                                      5 to 15
``speech``    3 to 7 MUSAN speech chunks (babble), each at its own SNR   13 to 20
``noise``     one MUSAN noise chunk                                      0 to 15
============  =========================================================  ==========

Each added chunk is a random window of a random file of its category, repeated when
shorter than the utterance, scaled so that the utterance is the drawn SNR above it.
Babble files are drawn with replacement (two may coincide, at different offsets).

Everything runs in the TensorFlow graph (files are read with ``tf.io.read_file``),
so :meth:`Augmenter.apply` parallelises with ``num_parallel_calls``; randomness is
stateless and seeded per example from ``(seed, example index)``, so a run is
reproducible whatever the parallelism.
"""

from __future__ import annotations

import logging

import soundfile as sf
import tensorflow as tf

from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.augment.mixing import fit_length, read_wav, reverberate, scale_to_snr
from keras_spkid.augment.sets import musan_files, rir_files
from keras_spkid.errors import DataError

logger = logging.getLogger(__name__)

KINDS = ("none", "reverb", "music", "speech", "noise")
"""Augmentation kinds, in the order of their index (voxceleb_trainer's ``augtype``)."""

DEFAULT_SNR_DB = {"music": (5.0, 15.0), "speech": (13.0, 20.0), "noise": (0.0, 15.0)}
DEFAULT_SOURCES = {"music": (1, 1), "speech": (3, 7), "noise": (1, 1)}
"""How many chunks of each category are added at once (inclusive range)."""


class Augmenter:
    """Random additive noise or reverberation of 16 kHz waveforms.

    Args:
        musan_split: a ``musan_split`` folder (:func:`~keras_spkid.augment.sets.split_musan`),
            or ``None`` for no additive noise.
        rir_root: a ``simulated_rirs`` folder, or ``None`` for no reverberation.
        seed: base seed of :meth:`apply`.
        weights: relative probability of each kind in :data:`KINDS` (default: all
            equal, 20 % each). Kinds without files get weight 0.
        snr_db: ``{category: (low, high)}`` overrides of :data:`DEFAULT_SNR_DB`.
        sources: ``{category: (low, high)}`` overrides of :data:`DEFAULT_SOURCES`.

    Example:
    >>> augmenter = Augmenter("data/musan_split", "data/RIRS_NOISES/simulated_rirs")
    >>> dataset = augmenter.apply(waveforms)     # elements [samples] or (waveform, label)
    """

    def __init__(
        self,
        musan_split=None,
        rir_root=None,
        seed: int = 0,
        weights: dict[str, float] | None = None,
        snr_db: dict[str, tuple[float, float]] | None = None,
        sources: dict[str, tuple[int, int]] | None = None,
    ):
        noise = musan_files(musan_split) if musan_split is not None else {}
        files = {category: noise.get(category, []) for category in DEFAULT_SNR_DB}
        files["reverb"] = rir_files(rir_root) if rir_root is not None else []
        weights = {kind: 1.0 for kind in KINDS} | dict(weights or {})
        if set(weights) - set(KINDS):
            raise ValueError(f"unknown augmentation kinds {sorted(set(weights) - set(KINDS))}")
        for kind, paths in files.items():
            if weights[kind] > 0 and not paths:
                logger.warning("no files for '%s' augmentation; it is switched off", kind)
                weights[kind] = 0.0
            if paths:
                _check_wav(paths[0])
        if not any(weights[kind] > 0 for kind in KINDS[1:]):
            raise DataError(
                f"nothing to augment with: no MUSAN chunks under {musan_split} "
                f"and no RIRs under {rir_root} (run 'spkid download musan' / "
                "'spkid download rirs')"
            )
        self.seed = seed
        self.weights = weights
        self.snr_db = DEFAULT_SNR_DB | dict(snr_db or {})
        self.sources = DEFAULT_SOURCES | dict(sources or {})
        self.files = {kind: tf.constant(paths or [""]) for kind, paths in files.items()}
        self.counts = {kind: len(paths) for kind, paths in files.items()}
        self._logits = tf.math.log(tf.constant([[weights[kind] for kind in KINDS]]))

    def __call__(self, waveform: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Augment ``[samples]`` or ``[batch, samples]`` float32 waveforms.

        Args:
            waveform: one utterance or a batch (each example gets its own kind).
            seed: int ``[2]``; the same seed gives the same output.

        Returns:
            Waveforms of the input's shape.
        """
        waveform = tf.convert_to_tensor(waveform, tf.float32)
        seed = tf.convert_to_tensor(seed)
        if waveform.shape.rank == 1:
            return self.augment_one(waveform, seed)
        if waveform.shape.rank != 2:
            raise ValueError(f"expected [samples] or [batch, samples], got {waveform.shape}")
        seeds = tf.random.experimental.stateless_split(seed, tf.shape(waveform)[0])
        return tf.map_fn(
            lambda args: self.augment_one(*args),
            (waveform, seeds),
            fn_output_signature=tf.TensorSpec([None], tf.float32),
        )

    def apply(
        self, dataset: tf.data.Dataset, num_parallel_calls=tf.data.AUTOTUNE
    ) -> tf.data.Dataset:
        """``dataset`` with its waveforms augmented, example ``i`` seeded by ``(seed, i)``.

        Elements are waveforms (``[samples]`` or ``[batch, samples]``) or tuples whose
        first item is the waveform (the rest, e.g. labels, pass through).
        """

        def augment(index, element):
            seed = tf.stack([tf.constant(self.seed, tf.int64), index])
            if isinstance(element, tuple):
                return (self(element[0], seed), *element[1:])
            return self(element, seed)

        return dataset.enumerate().map(
            augment, num_parallel_calls=num_parallel_calls, deterministic=True
        )

    def augment_one(self, waveform: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """One ``[samples]`` waveform: draw a kind, then apply it."""
        kind_seed, seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        kind = tf.random.stateless_categorical(self._logits, 1, kind_seed, dtype=tf.int32)[0, 0]
        branches = [
            lambda: waveform,
            lambda: self.reverberate(waveform, seed),
            *[
                lambda category=category: self.add_noise(waveform, category, seed)
                for category in KINDS[2:]
            ],
        ]
        return tf.switch_case(kind, branches)

    def reverberate(self, waveform: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """``[samples]`` convolved with a random RIR; same length."""
        index = tf.random.stateless_uniform([], seed, 0, max(self.counts["reverb"], 1), tf.int32)
        return reverberate(waveform, read_wav(self.files["reverb"][index]))

    def add_noise(self, waveform: tf.Tensor, category: str, seed: tf.Tensor) -> tf.Tensor:
        """``[samples]`` plus ``sources[category]`` random chunks of ``category``, each
        scaled to an SNR drawn from ``snr_db[category]``."""
        low, high = self.sources[category]
        snr_low, snr_high = self.snr_db[category]
        seeds = tf.random.experimental.stateless_split(seed, 4)
        count = tf.random.stateless_uniform([], seeds[0], low, high + 1, tf.int32)
        files = tf.random.stateless_uniform(
            [high], seeds[1], 0, max(self.counts[category], 1), tf.int32
        )[:count]
        snrs = tf.random.stateless_uniform([high], seeds[2], snr_low, snr_high)[:count]
        crop_seeds = tf.random.experimental.stateless_split(seeds[3], high)[:count]
        length = tf.size(waveform)

        def one_source(args):
            index, snr, crop_seed = args
            noise = fit_length(read_wav(self.files[category][index]), length, crop_seed)
            return scale_to_snr(waveform, noise, snr)

        noises = tf.map_fn(
            one_source,
            (files, snrs, crop_seeds),
            fn_output_signature=tf.TensorSpec([None], tf.float32),
        )
        return waveform + tf.reduce_sum(noises, axis=0)


def _check_wav(path: str) -> None:
    """Fail early, with a clear message, on files ``tf.audio.decode_wav`` cannot use."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise DataError(
            f"{path}: cannot read it ({error}); prepare the augmentation sets again"
        ) from None
    if info.subtype != "PCM_16" or info.samplerate != SAMPLE_RATE:
        raise DataError(
            f"{path}: {info.samplerate} Hz {info.subtype} audio; augmentation "
            "files must be 16 kHz 16-bit PCM wav (prepare them with "
            "'spkid download musan' / 'spkid download rirs')"
        )
