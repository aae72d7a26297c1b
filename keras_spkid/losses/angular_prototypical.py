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
    LossHead,
    MinValue,
    as_float32,
    check_clips_per_speaker,
    cross_entropy,
    group_by_speaker,
    l2_normalize,
    top1_accuracy,
)

MIN_W = 1e-6


def add_scale_and_bias(layer: keras.layers.Layer, init_w: float, init_b: float):
    """Create the learnable ``w`` (kept >= 1e-6) and ``b`` scalars of a cosine head."""
    w = layer.add_weight(
        shape=(),
        initializer=keras.initializers.Constant(float(init_w)),
        constraint=MinValue(MIN_W),
        name="w",
    )
    b = layer.add_weight(
        shape=(), initializer=keras.initializers.Constant(float(init_b)), name="b"
    )
    return w, b


@keras.saving.register_keras_serializable(package="keras_spkid")
class AngularPrototypicalHead(LossHead):
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

    min_clips_per_speaker = 2

    def __init__(
        self, clips_per_speaker: int, init_w: float = 10.0, init_b: float = -5.0, **kwargs
    ):
        self.clips_per_speaker = check_clips_per_speaker(clips_per_speaker, type(self).__name__)
        self.init_w = float(init_w)
        self.init_b = float(init_b)
        if not self.init_w > 0:
            raise ValueError(f"{type(self).__name__} needs init_w > 0, got {init_w}")
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.w, self.b = add_scale_and_bias(self, self.init_w, self.init_b)

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

    def get_config(self):
        config = super().get_config()
        config.update(
            clips_per_speaker=self.clips_per_speaker, init_w=self.init_w, init_b=self.init_b
        )
        return config
