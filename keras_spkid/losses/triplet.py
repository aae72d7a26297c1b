"""Triplet loss with in-batch negative mining (voxceleb_trainer ``triplet``).

Embeddings are L2-normalised and compared by squared Euclidean distance. For each
speaker ``j`` of a speaker-major batch the anchor is its clip 0 and the positive its
clip 1; the negative is mined among all clips of the *other* speakers in the batch
(other label), and the loss is ``mean(relu(d(a, p) - d(a, n) + margin))``.

Mining modes:

* ``"hard"``: the closest negative to the anchor;
* ``"semihard"``: the closest negative that is farther than the positive
  (``d(a, n) > d(a, p)``), or the closest negative when there is none;
* ``"random"``: a uniformly random negative (seeded, from a ``SeedGenerator``).

"hard" and "semihard" are deterministic functions of the inputs (ties go to the
lowest row index). Accuracy is the fraction of triplets with ``d(a, p) < d(a, n)``
(voxceleb_trainer reports a batch EER instead).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_spkid.losses.base import (
    LossHead,
    as_float32,
    as_labels,
    check_clips_per_speaker,
    group_by_speaker,
    l2_normalize,
)

MINING_MODES = ("hard", "semihard", "random")


@keras.saving.register_keras_serializable(package="keras_spkid")
class TripletHead(LossHead):
    """Triplet loss on L2-normalised embeddings with hard/semi-hard/random mining.

    Shapes: ``embeddings [B*M, D]`` and ``labels [B*M]`` (speaker-major, ``M >= 2``,
    ``B >= 2``) -> ``(loss [], accuracy [])``. Only clips 0 and 1 of a speaker serve
    as anchor and positive; every clip of another speaker is a negative candidate.

    Args:
        clips_per_speaker: ``M >= 2`` consecutive clips per speaker.
        margin: triplet margin on squared distances (unit vectors: 0..4).
        mining: ``"hard"``, ``"semihard"`` or ``"random"``.
        seed: seed of the random mining (``None``: unseeded).
    """

    min_clips_per_speaker = 2

    def __init__(
        self,
        clips_per_speaker: int = 2,
        margin: float = 0.3,
        mining: str = "hard",
        seed: int | None = None,
        **kwargs,
    ):
        head = type(self).__name__
        self.clips_per_speaker = check_clips_per_speaker(clips_per_speaker, head)
        self.margin = float(margin)
        if self.margin < 0:
            raise ValueError(f"{head} needs margin >= 0, got {self.margin}")
        if mining not in MINING_MODES:
            raise ValueError(f"{head}: mining must be one of {MINING_MODES}, got {mining!r}")
        self.mining = mining
        self.seed = seed
        super().__init__(**kwargs)
        self.seed_generator = (
            keras.random.SeedGenerator(seed, name="mining_seed") if mining == "random" else None
        )

    def distances(self, embeddings, labels):
        """Anchor-to-candidate squared distances and the negative mask.

        Returns ``(d [B, B*M], d_ap [B], is_negative [B, B*M] bool)`` where row ``j`` is
        speaker ``j``'s anchor (clip 0) against every clip in the batch, and ``d_ap`` the
        anchor-positive distances (clip 0 to clip 1).
        """
        m = self.clips_per_speaker
        x = l2_normalize(as_float32(embeddings))
        grouped = group_by_speaker(x, m, type(self).__name__)
        if grouped.shape[0] is not None and grouped.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 speakers per batch to mine "
                f"negatives, got {x.shape[0]} embeddings with clips_per_speaker={m}"
            )
        labels = as_labels(labels)
        anchors = grouped[:, 0]  # [B, D]
        sq_anchor = tf.reduce_sum(tf.square(anchors), axis=-1)
        sq_all = tf.reduce_sum(tf.square(x), axis=-1)
        d = sq_anchor[:, None] + sq_all[None, :] - 2.0 * tf.matmul(anchors, x, transpose_b=True)
        d = tf.maximum(d, 0.0)
        speakers = tf.shape(grouped)[0]
        positive_rows = tf.range(speakers) * m + 1
        d_ap = tf.gather(d, positive_rows[:, None], batch_dims=1)[:, 0]
        anchor_labels = tf.reshape(labels, [-1, m])[:, 0]
        is_negative = tf.not_equal(anchor_labels[:, None], labels[None, :])
        return d, d_ap, is_negative

    def select_negatives(self, embeddings, labels):
        """``[B]`` int32 row index (into the ``B*M`` batch) of each anchor's negative."""
        d, d_ap, is_negative = self.distances(embeddings, labels)
        return self._select(d, d_ap, is_negative)

    def _select(self, d, d_ap, is_negative):
        far = tf.constant(float("inf"), tf.float32)
        hardest = tf.argmin(tf.where(is_negative, d, far), axis=1, output_type=tf.int32)
        if self.mining == "hard":
            return hardest
        if self.mining == "semihard":
            beyond = tf.logical_and(is_negative, d > d_ap[:, None])
            semihard = tf.argmin(tf.where(beyond, d, far), axis=1, output_type=tf.int32)
            return tf.where(tf.reduce_any(beyond, axis=1), semihard, hardest)
        noise = keras.random.uniform(tf.shape(d), seed=self.seed_generator)
        return tf.argmax(tf.where(is_negative, noise, -1.0), axis=1, output_type=tf.int32)

    def call(self, embeddings, labels, training=False):
        d, d_ap, is_negative = self.distances(embeddings, labels)
        negatives = self._select(d, d_ap, is_negative)
        d_an = tf.gather(d, negatives[:, None], batch_dims=1)[:, 0]
        loss = tf.reduce_mean(tf.nn.relu(d_ap - d_an + self.margin))
        accuracy = tf.reduce_mean(tf.cast(d_ap < d_an, tf.float32))
        return loss, accuracy

    def get_config(self):
        config = super().get_config()
        config.update(
            clips_per_speaker=self.clips_per_speaker,
            margin=self.margin,
            mining=self.mining,
            seed=self.seed,
        )
        return config
