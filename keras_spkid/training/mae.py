"""Masked-autoencoder pre-training of the conv encoder (CS330's MAE), whose encoder
then initialises a protonet (``train_protonet.py --init_from``).

Like the CS330 reference this is a convolutional autoencoder with input masking, not
a ViT MAE: masked cells of the filterbank crop are set to 0 (the utterance mean after
mean normalisation), the encoder's six conv blocks see the whole masked crop, and a
mirrored decoder (upsampling + conv, no pooling indices) reconstructs it. The loss is
the mean squared error over the **masked cells only** (the reference averaged over all
cells, which scales the loss with the mask ratio, and ``--mask none`` gave a zero loss).

Masks (``--mask``):

* ``strips``: time strips of 10 frames (100 ms); the last strip takes the remainder;
* ``boxes``: a grid of 16-bin x 30-frame boxes (last row/column take the remainder).

``round(ratio * units)`` strips or boxes are masked per crop, drawn without
replacement, as a pure function of ``(seed, step)`` so resumed runs see the same masks.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from keras_spkid.data.episodes import clip_batch_dataset
from keras_spkid.models import build_encoder
from keras_spkid.training.config import MAEConfig
from keras_spkid.training.data import run_store
from keras_spkid.training.runtime import setup_runtime
from keras_spkid.training.trainer import Trainer, TrainingTask

logger = logging.getLogger(__name__)

STRIP_FRAMES = 10
BOX_BINS, BOX_FRAMES = 16, 30
TRUNK_LAYER = "block6_pool"


def make_mask(frames: int, bins: int, batch: int, kind: str, ratio: float, seed):
    """``[batch, frames, bins]`` float mask, 1 where the crop is hidden.

    Args:
        frames, bins: crop size (static ints).
        kind: ``"strips"`` or ``"boxes"``.
        ratio: fraction of strips/boxes to hide, rounded to a whole number.
        seed: ``[2]`` int stateless seed.
    """
    if kind == "strips":
        units_t, units_f = max(1, frames // STRIP_FRAMES), 1
        size_t, size_f = STRIP_FRAMES, bins
    else:
        units_t, units_f = max(1, frames // BOX_FRAMES), max(1, bins // BOX_BINS)
        size_t, size_f = BOX_FRAMES, BOX_BINS
    units = units_t * units_f
    hidden = max(1, min(units, int(round(ratio * units))))
    keys = tf.random.stateless_uniform([batch, units], seed)
    chosen = tf.math.top_k(keys, k=hidden).indices
    unit_mask = tf.reduce_max(tf.one_hot(chosen, units), axis=1)  # [batch, units]
    # Cell (t, f) belongs to unit (t // size_t, f // size_f), the last ones taking the rest.
    unit_t = tf.minimum(tf.range(frames) // size_t, units_t - 1)
    unit_f = tf.minimum(tf.range(bins) // size_f, units_f - 1)
    cell_unit = unit_t[:, None] * units_f + unit_f[None, :]  # [frames, bins]
    return tf.gather(unit_mask, cell_unit, axis=1)


def build_decoder(trunk_shape, channels=(64, 64, 64, 32, 16), name="decoder") -> keras.Model:
    """Mirror of conv6: ``[B, T/64, F/64, C]`` back to ``[B, T, F]``.

    Six stages of ``UpSampling2D(2) -> Conv2D(3x3) -> BN -> ReLU``, the last stage a
    linear ``Conv2D`` to one channel.
    """
    inputs = keras.Input(trunk_shape[1:], name="trunk_features")
    x = inputs
    for i, width in enumerate(channels, start=1):
        x = keras.layers.UpSampling2D(2, name=f"up{i}")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", name=f"up{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"up{i}_bn")(x)
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)
    x = keras.layers.UpSampling2D(2, name=f"up{len(channels) + 1}")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="reconstruction", dtype="float32")(x)
    outputs = keras.layers.Reshape((-1, x.shape[2]), name="drop_channel", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


class MAETask(TrainingTask):
    """Encoder trunk + decoder; loss = MSE over masked cells."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.trunk = keras.Model(encoder.input, encoder.get_layer(TRUNK_LAYER).output, name="trunk")
        self.decoder = build_decoder(self.trunk.output_shape)

    def reconstruct(self, masked, training=False):
        return self.decoder(self.trunk(masked, training=training), training=training)

    def compute_loss_and_metrics(self, batch, training):
        masked, target, mask = batch["masked"], batch["target"], batch["mask"]
        error = tf.square(tf.cast(self.reconstruct(masked, training), tf.float32) - target)
        loss = tf.reduce_sum(error * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        visible = tf.reduce_sum(error * (1 - mask)) / tf.maximum(tf.reduce_sum(1 - mask), 1.0)
        return loss, {"visible_mse": visible}

    def export_model(self):
        return self.encoder


def masked_batches(store, config: MAEConfig, seed: int, start: int = 0, num_batches=None):
    """Batches of ``{"masked", "target", "mask"}`` ``[B, crop_frames, n_mels]`` crops."""
    crops = clip_batch_dataset(
        store, config.batch_size, config.crop_frames, seed, num_batches, start=start
    )
    bins = store.data.shape[1]

    def add_mask(index, batch):
        features, _ = batch
        mask = make_mask(
            config.crop_frames,
            bins,
            config.batch_size,
            config.mask,
            config.mask_ratio,
            tf.stack([tf.constant(seed, tf.int64) + 7, index]),
        )
        return {"masked": features * (1.0 - mask), "target": features, "mask": mask}

    indices = tf.data.Dataset.range(start, start + (num_batches or 2**62))
    return tf.data.Dataset.zip(indices, crops).map(add_mask, num_parallel_calls=tf.data.AUTOTUNE)


def train_mae(config: MAEConfig, verbose: bool = True) -> dict:
    """Pre-train (or resume) as ``config`` says; the encoder lands in ``log_dir/best``."""
    config.validate()
    runtime = setup_runtime(config.seed, config.mixed_precision, config.strategy)
    train = run_store(config, config.train_corpora, config.train_split, verbose)
    val = run_store(config, config.train_corpora, config.val_split, verbose)
    trainer = Trainer.for_run(
        config,
        runtime,
        lambda: MAETask(build_encoder(config.encoder, n_mels=config.n_mels)),
        best_metric="val_neg_mse",
        verbose=verbose,
    )
    task = trainer.task
    val_batches = list(masked_batches(val, config, config.seed + 1, 0, config.val_batches))

    def validate():
        losses = [float(task.compute_loss_and_metrics(b, training=False)[0]) for b in val_batches]
        mse = sum(losses) / len(losses)
        return {"val_mse": mse, "val_neg_mse": -mse}

    return trainer.fit(
        lambda start: masked_batches(train, config, config.seed, start),
        config.num_train_iterations,
        validate,
    )
