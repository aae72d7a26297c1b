"""Classification heads over the training speakers: softmax, AM-softmax, AAM-softmax,
and meta-SR's softmax with unit-norm class weights.

All three take ``embeddings [B*M, D]`` and global speaker ``labels [B*M]`` (any
``M``, including 1) and return ``(cross-entropy, top-1 accuracy)``.

* ``SoftmaxHead``: a linear layer (with bias) and cross-entropy.
* ``AMSoftmaxHead`` (additive margin, CosFace): ``s * (cos(theta) - m * onehot)``.
* ``AAMSoftmaxHead`` (additive angular margin, ArcFace): ``s * cos(theta + m)`` for
  the target class, with voxceleb_trainer's fallback ``cos(theta) - m * sin(pi - m)``
  where ``theta + m`` would pass ``pi``.
* ``GlobalClassifierHead``: meta-SR's softmax baseline, ``x . normalize(W)^T`` (see
  :class:`keras_spkid.losses.prototypical.GlobalClassifier`).

Margins are applied only when ``training=True``; at inference the logits are the plain
scaled cosines, and accuracy is always measured on those margin-free logits (the
prediction the model would really make).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from keras_spkid.losses.base import (
    LossHead,
    as_float32,
    as_labels,
    check_embeddings_rank,
    check_num_classes,
    cross_entropy,
    l2_normalize,
    top1_accuracy,
)
from keras_spkid.losses.prototypical import GlobalClassifier


def _check_positive(value, name: str, head: str) -> float:
    value = float(value)
    if not value > 0:
        raise ValueError(f"{head} needs {name} > 0, got {value}")
    return value


class _PlainClassifierHead(LossHead):
    """Cross-entropy over ``logits(embeddings)`` (no margin): the shared half of
    :class:`SoftmaxHead` and :class:`GlobalClassifierHead`."""

    def __init__(self, num_classes: int, **kwargs):
        self.num_classes = check_num_classes(num_classes, type(self).__name__)
        super().__init__(**kwargs)

    def call(self, embeddings, labels, training=False):
        labels = as_labels(labels)
        logits = self.logits(embeddings)
        return cross_entropy(logits, labels), top1_accuracy(logits, labels)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class SoftmaxHead(_PlainClassifierHead):
    """Linear classifier ``logits = x W + b`` with cross-entropy.

    Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` -> ``(loss [], accuracy [])``;
    ``logits(embeddings) -> [B*M, num_classes]``. Weights: ``kernel [D, C]``,
    ``bias [C]``.

    Args:
        num_classes: number of training speakers ``C``.

    Example:
    >>> head = SoftmaxHead(num_classes=4)
    >>> loss, acc = head(np.ones((6, 3), "float32"), np.array([0, 0, 1, 1, 2, 2]))
    """

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"{type(self).__name__} needs a known embedding size")
        self.kernel = self.add_weight(
            shape=(dim, self.num_classes), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros", name="bias")

    def logits(self, embeddings, labels=None, training=False):
        """``[B*M, C]`` class scores (no margin in this head)."""
        x = as_float32(embeddings)
        check_embeddings_rank(x, type(self).__name__)
        self._ensure_built(x)
        return tf.matmul(x, self.kernel) + self.bias


@keras.saving.register_keras_serializable(package="keras_spkid")
class AMSoftmaxHead(LossHead):
    """Additive-margin softmax (CosFace): ``s * (cos(theta_c) - m * [c == y])``.

    ``cos(theta_c)`` is the cosine between the embedding and the class weight vector
    ``W[:, c]``. Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` ->
    ``(loss [], accuracy [])``; ``logits -> [B*M, C]``. Weight: ``kernel [D, C]``
    (Xavier-normal, as voxceleb_trainer's ``amsoftmax.W``).

    Args:
        num_classes: number of training speakers ``C``.
        margin: additive cosine margin ``m`` subtracted from the target cosine
            (training only).
        scale: logit scale ``s``.
    """

    def __init__(self, num_classes: int, margin: float = 0.2, scale: float = 30.0, **kwargs):
        head = type(self).__name__
        self.num_classes = check_num_classes(num_classes, head)
        self.margin = float(margin)
        if self.margin < 0:
            raise ValueError(f"{head} needs margin >= 0, got {self.margin}")
        self.scale = _check_positive(scale, "scale", head)
        super().__init__(**kwargs)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"{type(self).__name__} needs a known embedding size")
        self.kernel = self.add_weight(
            shape=(dim, self.num_classes), initializer="glorot_normal", name="kernel"
        )

    def cosine(self, embeddings):
        """``[B*M, C]`` cosines between embeddings and class weights."""
        x = as_float32(embeddings)
        check_embeddings_rank(x, type(self).__name__)
        self._ensure_built(x)
        return tf.matmul(l2_normalize(x), l2_normalize(self.kernel, axis=0))

    def _margin_logits(self, cosine, labels):
        onehot = tf.one_hot(labels, self.num_classes, dtype=tf.float32)
        return self.scale * (cosine - self.margin * onehot)

    def logits(self, embeddings, labels=None, training=False):
        """``[B*M, C]``: scaled cosines, with the margin on the target class when
        ``training`` (which then needs ``labels``)."""
        cosine = self.cosine(embeddings)
        if not training:
            return self.scale * cosine
        if labels is None:
            raise ValueError(f"{type(self).__name__}.logits(training=True) needs labels")
        return self._margin_logits(cosine, as_labels(labels))

    def call(self, embeddings, labels, training=False):
        labels = as_labels(labels)
        cosine = self.cosine(embeddings)
        plain = self.scale * cosine
        logits = self._margin_logits(cosine, labels) if training else plain
        return cross_entropy(logits, labels), top1_accuracy(plain, labels)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, margin=self.margin, scale=self.scale)
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class AAMSoftmaxHead(AMSoftmaxHead):
    """Additive angular margin softmax (ArcFace): ``s * cos(theta_y + m)`` for the target.

    For the target class the cosine is replaced by
    ``phi = cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m)`` where
    ``cos(theta) > cos(pi - m)`` (``theta + m < pi``, where ``cos`` is still
    decreasing); elsewhere by ``cos(theta) - m * sin(pi - m)`` so the target logit
    keeps falling with ``theta`` (voxceleb_trainer / insightface). With
    ``easy_margin=True`` the margin is used only where ``cos(theta) > 0``. All other
    classes keep ``s * cos(theta)``.

    Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` -> ``(loss [], accuracy [])``;
    ``logits -> [B*M, C]``. Weight: ``kernel [D, C]`` (Xavier-normal).

    Args:
        num_classes: number of training speakers ``C``.
        margin: angular margin ``m`` in radians (training only), ``0 <= m < pi/2``.
        scale: logit scale ``s``.
        easy_margin: apply the margin only to positive cosines.
    """

    def __init__(
        self,
        num_classes: int,
        margin: float = 0.2,
        scale: float = 30.0,
        easy_margin: bool = False,
        **kwargs,
    ):
        if not 0 <= float(margin) < math.pi / 2:
            raise ValueError(
                f"{type(self).__name__} needs 0 <= margin < pi/2 radians, got {margin}"
            )
        self.easy_margin = bool(easy_margin)
        super().__init__(num_classes, margin=margin, scale=scale, **kwargs)

    def _margin_logits(self, cosine, labels):
        m = self.margin
        sine = tf.sqrt(tf.clip_by_value(1.0 - tf.square(cosine), 1e-7, 1.0))
        phi = cosine * math.cos(m) - sine * math.sin(m)
        if self.easy_margin:
            phi = tf.where(cosine > 0, phi, cosine)
        else:
            phi = tf.where(cosine > math.cos(math.pi - m), phi, cosine - math.sin(math.pi - m) * m)
        onehot = tf.one_hot(labels, self.num_classes, on_value=True, off_value=False)
        return self.scale * tf.where(onehot, phi, cosine)

    def get_config(self):
        config = super().get_config()
        config.update(easy_margin=self.easy_margin)
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class GlobalClassifierHead(_PlainClassifierHead):
    """meta-SR's softmax baseline as a loss head: cross-entropy of a
    :class:`~keras_spkid.losses.prototypical.GlobalClassifier`.

    Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` -> ``(loss [], accuracy [])``;
    ``logits(embeddings) -> [B*M, C]`` (``x . normalize(W)^T``, no margin or scale).

    Args:
        num_classes: number of training speakers ``C``.
    """

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.classifier = GlobalClassifier(num_classes, name="classifier")

    def build(self, input_shape):
        self.classifier.build(input_shape)

    def logits(self, embeddings, labels=None, training=False):
        """``[B*M, C]`` dot products with the unit-normalised class weights."""
        self._ensure_built(embeddings)
        return self.classifier(embeddings)
