"""Angular prototypical loss (voxceleb_trainer ``angleproto``, Chung et al. 2020).

Per speaker ``j`` of a speaker-major batch ``[B*M, D]``: the query is its first clip
``x[j, 0]`` and the prototype is the mean of its other clips ``x[j, 1:]``. The logits
are ``w * cos(query_i, prototype_j) + b`` (``[B, B]``), and the loss is cross-entropy
with targets ``0..B-1`` (each query must pick its own speaker's prototype).

``w`` and ``b`` are learnable (initial 10 and -5). Unlike voxceleb_trainer, where
``torch.clamp(self.w, 1e-6)`` discards its result, ``w`` really stays positive: the
variable carries a ``MinValue(1e-6)`` constraint (applied by Keras optimizers after
each update) and the forward pass uses ``max(w, 1e-6)``.
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
class AngularPrototypicalHead(ScaledCosineHead):
    """Angular prototypical loss over a speaker-major batch.

    Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` (unused beyond the layout) ->
    ``(loss [], accuracy [])``; ``logits(embeddings) -> [B, B]`` with row ``i`` the
    query of speaker ``i`` and column ``j`` the prototype of speaker ``j`` (targets:
    the diagonal). Accuracy is the fraction of queries whose best prototype is their
    own speaker's.

    Args:
        clips_per_speaker: ``M >= 2`` consecutive clips per speaker.
        init_w: initial cosine scale ``w`` (> 0).
        init_b: initial bias ``b``.
    """

    def logits(self, embeddings, labels=None, training=False):
        """``[B, B]`` scaled cosines between queries (rows) and prototypes (columns)."""
        x = as_float32(embeddings)
        self._ensure_built(x)
        x = group_by_speaker(x, self.clips_per_speaker, type(self).__name__)
        query = l2_normalize(x[:, 0])
        prototype = l2_normalize(tf.reduce_mean(x[:, 1:], axis=1))
        cosine = tf.matmul(query, prototype, transpose_b=True)
        return tf.maximum(self.w, MIN_W) * cosine + self.b

    def call(self, embeddings, labels=None, training=False):
        logits = self.logits(embeddings)
        targets = tf.range(tf.shape(logits)[0], dtype=tf.int32)
        return cross_entropy(logits, targets), top1_accuracy(logits, targets)
