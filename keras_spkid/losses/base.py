"""The loss-head interface shared by every batch loss, and small float32 helpers.

A *loss head* is a ``keras.layers.Layer`` that sits on top of a speaker encoder
during training and turns a batch of embeddings into ``(loss, accuracy)``::

    loss, accuracy = head(embeddings, labels, training=True)

* ``embeddings``: ``[B*M, D]`` float (any float dtype; cast to float32);
* ``labels``: ``[B*M]`` int global speaker labels;
* the batch is *speaker-major*: the ``M = clips_per_speaker`` clips of one speaker are
  consecutive rows, and no speaker appears twice in a batch (what
  ``keras_spkid.data.episodes.speaker_batch_dataset`` produces).

Classification heads (softmax, AM-/AAM-softmax, global classifier) use the global
labels and accept ``M = 1``. Metric-learning heads (angular prototypical, GE2E,
triplet) derive their targets from the speaker-major layout and need ``M >= 2``.

Every head computes in float32 (its dtype policy is forced to ``"float32"``), so it
works unchanged under a ``mixed_float16`` global policy: float16 embeddings are cast
up before any normalisation, exponent or log.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def as_float32(x) -> tf.Tensor:
    """``x`` as a float32 tensor (float16/bfloat16 embeddings are cast up)."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)


def as_labels(labels) -> tf.Tensor:
    """Integer labels as a flat ``[n]`` int32 tensor."""
    labels = tf.convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype.name}")
    return tf.reshape(tf.cast(labels, tf.int32), [-1])


def l2_normalize(x, axis: int = -1) -> tf.Tensor:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero)."""
    return tf.math.l2_normalize(x, axis=axis, epsilon=1e-12)


def cross_entropy(logits, labels) -> tf.Tensor:
    """Mean sparse softmax cross-entropy: ``logits [n, C]``, ``labels [n]`` -> scalar."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def top1_accuracy(logits, labels) -> tf.Tensor:
    """Fraction (0..1) of rows whose arg-max column is the label: scalar float32."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, labels), tf.float32))


def check_embeddings_rank(embeddings, head: str) -> None:
    """Raise ``ValueError`` unless ``embeddings`` is ``[batch, dim]``."""
    shape = embeddings.shape
    if shape.rank is not None and shape.rank != 2:
        raise ValueError(
            f"{head} expects embeddings of shape [batch, dim], got shape {tuple(shape)}"
        )


def check_clips_per_speaker(clips_per_speaker, head: str, minimum: int = 2) -> int:
    """Validate ``clips_per_speaker`` (an int >= ``minimum``) before any work."""
    if isinstance(clips_per_speaker, bool) or not isinstance(clips_per_speaker, int):
        raise ValueError(f"{head} needs an integer clips_per_speaker, got {clips_per_speaker!r}")
    if clips_per_speaker < minimum:
        raise ValueError(
            f"{head} needs clips_per_speaker >= {minimum} (got {clips_per_speaker}): it "
            "compares clips of the same speaker, so sample at least "
            f"{minimum} clips per speaker (voxceleb_trainer's --nPerSpeaker {minimum})"
        )
    return clips_per_speaker


def check_num_classes(num_classes, head: str) -> int:
    """Validate ``num_classes`` (an int >= 2) before any work."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"{head} needs num_classes >= 2 (the number of training speakers), got {num_classes!r}"
        )
    return num_classes


def group_by_speaker(embeddings, clips_per_speaker: int, head: str) -> tf.Tensor:
    """Speaker-major ``[B*M, D]`` rows reshaped to ``[B, M, D]``.

    Raises ``ValueError`` when the static batch size is known and not a multiple of
    ``clips_per_speaker`` (a dynamic mismatch fails in the reshape).
    """
    check_embeddings_rank(embeddings, head)
    rows, dim = embeddings.shape[0], embeddings.shape[-1]
    if rows is not None and rows % clips_per_speaker:
        raise ValueError(
            f"{head}: a batch of {rows} embeddings is not a whole number of speakers "
            f"with clips_per_speaker={clips_per_speaker}"
        )
    dim = dim if dim is not None else tf.shape(embeddings)[-1]
    return tf.reshape(embeddings, [-1, clips_per_speaker, dim])


@keras.saving.register_keras_serializable(package="keras_spkid")
class MinValue(keras.constraints.Constraint):
    """Projects a weight onto ``w >= min_value`` after each optimizer update."""

    def __init__(self, min_value: float = 1e-6):
        self.min_value = float(min_value)

    def __call__(self, w):
        return keras.ops.maximum(w, keras.ops.cast(self.min_value, w.dtype))

    def get_config(self):
        return {"min_value": self.min_value}


MIN_W = 1e-6


def add_scale_and_bias(layer: keras.layers.Layer, init_w: float, init_b: float):
    """Create the learnable ``w`` (kept >= 1e-6) and ``b`` scalars of a cosine head."""
    w = layer.add_weight(
        shape=(),
        initializer=keras.initializers.Constant(float(init_w)),
        constraint=MinValue(MIN_W),
        name="w",
    )
    b = layer.add_weight(shape=(), initializer=keras.initializers.Constant(float(init_b)), name="b")
    return w, b


class LossHead(keras.layers.Layer):
    """Base class of the batch loss heads.

    Subclasses implement ``call(embeddings, labels, training=False)`` returning
    ``(loss, accuracy)``, both float32 scalars (accuracy is a fraction in 0..1), and
    ``logits(...)`` where the head has a natural logit matrix.

    Class attributes:
        test_normalize: whether embeddings trained with this head should be
            L2-normalised before distance scoring (voxceleb_trainer's
            ``test_normalize``).
        min_clips_per_speaker: the smallest ``M`` the head can work with.
    """

    test_normalize = True
    min_clips_per_speaker = 1

    def __init__(self, **kwargs):
        # Losses are computed in float32 even under a mixed_float16 global policy.
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def _ensure_built(self, embeddings) -> None:
        """Build the weights when ``logits`` is used before the first ``__call__``."""
        if not self.built:
            self.build(tuple(embeddings.shape))

    def compute_output_spec(self, embeddings, labels=None, training=None):
        scalar = keras.KerasTensor((), dtype="float32")
        return scalar, keras.KerasTensor((), dtype="float32")


class ScaledCosineHead(LossHead):
    """Base of the heads that score ``w * cos + b`` over ``M`` clips per speaker
    (angular prototypical, GE2E): holds ``clips_per_speaker``, ``w`` (kept positive)
    and ``b``, and their config.

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

    def get_config(self):
        config = super().get_config()
        config.update(
            clips_per_speaker=self.clips_per_speaker, init_w=self.init_w, init_b=self.init_b
        )
        return config
