"""Generalised end-to-end (GE2E) softmax loss (Wan et al. 2018; voxceleb_trainer ``ge2e``).

For a speaker-major batch ``x [B, M, D]`` every clip ``x[j, i]`` is compared with the
centroid of every speaker: ``c_k = mean_i x[k, i]`` for the other speakers, and the
*leave-self-out* centroid ``c_j^(-i) = (sum_m x[j, m] - x[j, i]) / (M - 1)`` for its
own speaker, so a clip never votes for itself. Logits are ``w * cos + b``
(``[B*M, B]``), and the loss is cross-entropy of each row against its speaker.

Differences from voxceleb_trainer: cosines are *not* clamped at 1e-6 (which erased
every negative similarity there), and ``w`` really stays positive (see
:mod:`keras_spkid.losses.angular_prototypical`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_spkid.losses.base import (
    MIN_W,
    ScaledCosineHead,
    as_float32,
    cross_entropy,
    group_by_speaker,
    l2_normalize,
    top1_accuracy,
)


@keras.saving.register_keras_serializable(package="keras_spkid")
class GE2EHead(ScaledCosineHead):
    """GE2E softmax loss with leave-self-out centroids.

    Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` (unused beyond the layout) ->
    ``(loss [], accuracy [])``; ``logits(embeddings) -> [B*M, B]``: row ``j*M + i``
    is clip ``i`` of speaker ``j`` against the ``B`` centroids (target column ``j``).

    Args:
        clips_per_speaker: ``M >= 2`` consecutive clips per speaker.
        init_w: initial cosine scale ``w`` (> 0).
        init_b: initial bias ``b``.
    """

    def cosine(self, embeddings):
        """``[B, M, B]`` cosines of each clip to each centroid (leave-self-out on the
        own speaker's entry)."""
        m = self.clips_per_speaker
        x = as_float32(embeddings)
        self._ensure_built(x)
        x = group_by_speaker(x, m, type(self).__name__)
        total = tf.reduce_sum(x, axis=1)  # [B, D]
        clips = l2_normalize(x)
        centroids = l2_normalize(total / m)
        to_all = tf.einsum("jmd,kd->jmk", clips, centroids)  # [B, M, B]
        leave_out = l2_normalize((total[:, None, :] - x) / (m - 1))  # [B, M, D]
        to_own = tf.reduce_sum(clips * leave_out, axis=-1)  # [B, M]
        speakers = tf.shape(x)[0]
        own = tf.eye(speakers, dtype=tf.bool)[:, None, :]  # [B, 1, B]
        return tf.where(own, to_own[:, :, None], to_all)

    def logits(self, embeddings, labels=None, training=False):
        """``[B*M, B]`` logits ``w * cos + b``."""
        cosine = self.cosine(embeddings)
        speakers = tf.shape(cosine)[0]
        return tf.reshape(tf.maximum(self.w, MIN_W) * cosine + self.b, [-1, speakers])

    def call(self, embeddings, labels=None, training=False):
        logits = self.logits(embeddings)
        speakers = tf.shape(logits)[1]
        targets = tf.repeat(tf.range(speakers, dtype=tf.int32), self.clips_per_speaker)
        return cross_entropy(logits, targets), top1_accuracy(logits, targets)
