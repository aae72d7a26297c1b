"""Episodic prototypical-network loss (Snell et al. 2017) for N-way K-shot episodes.

An episode has ``support [N*K, D]`` embeddings in *class-major* order (the ``K`` shots
of class 0, then class 1, ..., as ``keras_spkid.data.episodes.episode_dataset``
produces) and ``query [Q, D]`` embeddings with episode labels ``0..N-1``. Every
function also accepts a leading task axis (``support [T, N*K, D]``,
``query [T, Q, D]``, labels ``[T, Q]``) for batches of episodes; the loss is then
the mean over all ``T*Q`` queries, i.e. over tasks of equal size.

* :func:`prototypes` averages the ``K`` shots of each class (meta-SR's training code
  forgot to, using single support embeddings as prototypes);
* :func:`prototypical_logits` scores queries against prototypes with one of
  :data:`DISTANCES`;
* :func:`prototypical_loss` is cross-entropy over the query logits, with accuracy;
* :class:`GlobalClassifier` and :func:`prototypical_gc_loss` add meta-SR's global
  classification over all training speakers: ``loss = loss_e + gc_weight * loss_g``.

Distances (``scale`` multiplies every logit; 1 keeps the plain form):

* ``"squared_euclidean"``: ``-scale * ||q - p||^2`` (Snell et al.; voxceleb_trainer
  ``proto``);
* ``"euclidean"``: ``-scale * ||q - p||`` (Boccio (CS330)'s ``torch.norm``);
* ``"cosine"``: ``scale * cos(q, p)``;
* ``"projection"``: ``scale * q . p / ||p||``, the query (not normalised) projected on
  the unit prototype: meta-SR's episodic logits.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_spkid.losses.base import (
    as_float32,
    as_labels,
    check_embeddings_rank,
    check_num_classes,
    cross_entropy,
    l2_normalize,
    top1_accuracy,
)

DISTANCES = ("squared_euclidean", "euclidean", "cosine", "projection")


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_matrix(x, name: str) -> None:
    if x.shape.rank is not None and x.shape.rank not in (2, 3):
        raise ValueError(
            f"{name} must have shape [rows, dim] or [tasks, rows, dim], got shape {tuple(x.shape)}"
        )


def prototypes(support, n_way: int, k_shot: int) -> tf.Tensor:
    """Class prototypes ``[N, D]``: the mean of each class's ``K`` support embeddings.

    Args:
        support: ``[N*K, D]`` (or ``[T, N*K, D]``) class-major support embeddings.
        n_way: number of classes ``N``.
        k_shot: shots per class ``K``.

    Returns:
        ``[N, D]`` (or ``[T, N, D]``) prototypes.
    """
    n_way, k_shot = _check_count(n_way, "n_way"), _check_count(k_shot, "k_shot")
    support = as_float32(support)
    _check_matrix(support, "support")
    rows = support.shape[-2]
    if rows is not None and rows != n_way * k_shot:
        raise ValueError(
            f"support has {rows} rows, expected n_way * k_shot = {n_way} * {k_shot} "
            f"= {n_way * k_shot}"
        )
    dim = support.shape[-1] if support.shape[-1] is not None else tf.shape(support)[-1]
    lead = tf.shape(support)[:-2]
    grouped = tf.reshape(support, tf.concat([lead, [n_way, k_shot, dim]], axis=0))
    return tf.reduce_mean(grouped, axis=-2)


def squared_distances(a, b) -> tf.Tensor:
    """``[..., n, m]`` squared Euclidean distances between rows of ``a [..., n, D]`` and
    ``b [..., m, D]`` (clamped at 0 against rounding)."""
    a, b = as_float32(a), as_float32(b)
    sq_a = tf.reduce_sum(tf.square(a), axis=-1)
    sq_b = tf.reduce_sum(tf.square(b), axis=-1)
    d = sq_a[..., :, None] + sq_b[..., None, :] - 2.0 * tf.matmul(a, b, transpose_b=True)
    return tf.maximum(d, 0.0)


def prototypical_logits(
    query, prototypes, distance: str = "squared_euclidean", scale: float = 1.0
) -> tf.Tensor:
    """``[Q, N]`` logits of ``query [Q, D]`` against ``prototypes [N, D]`` (or
    ``[T, Q, N]`` from ``[T, Q, D]`` and ``[T, N, D]``).

    See the module docstring for the ``distance`` options; ``scale`` multiplies every
    logit (an inverse temperature).
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    query, protos = as_float32(query), as_float32(prototypes)
    _check_matrix(query, "query")
    _check_matrix(protos, "prototypes")
    if distance == "squared_euclidean":
        return -scale * squared_distances(query, protos)
    if distance == "euclidean":
        # The floor keeps the gradient of sqrt finite when a query sits on a prototype.
        return -scale * tf.sqrt(tf.maximum(squared_distances(query, protos), 1e-12))
    unit_protos = l2_normalize(protos)
    if distance == "cosine":
        query = l2_normalize(query)
    return scale * tf.matmul(query, unit_protos, transpose_b=True)


def prototypical_loss(
    support,
    query,
    query_labels,
    n_way: int,
    k_shot: int,
    distance: str = "squared_euclidean",
    scale: float = 1.0,
):
    """Prototypical loss of one episode: ``(cross-entropy [], accuracy [])``.

    Args:
        support: ``[N*K, D]`` class-major support embeddings (or ``[T, N*K, D]``).
        query: ``[Q, D]`` query embeddings (or ``[T, Q, D]``).
        query_labels: ``[Q]`` (or ``[T, Q]``) int episode labels in ``0..N-1``.
        n_way, k_shot: episode shape.
        distance, scale: see :func:`prototypical_logits`.
    """
    logits = prototypical_logits(query, prototypes(support, n_way, k_shot), distance, scale)
    logits = tf.reshape(logits, [-1, n_way])
    labels = as_labels(query_labels)
    return cross_entropy(logits, labels), top1_accuracy(logits, labels)


@keras.saving.register_keras_serializable(package="keras_spkid")
class GlobalClassifier(keras.layers.Layer):
    """meta-SR's global classifier: ``logits = x . normalize(W)^T``.

    The class weights ``W [C, D]`` (``kernel``, Xavier-uniform as meta-SR) are
    unit-normalised per row; the embedding is *not* normalised, and there is no bias,
    margin or scale. Computes in float32 (under any global dtype policy).

    Shapes: ``embeddings [n, D]`` -> ``logits [n, C]``.

    Args:
        num_classes: number of training speakers ``C``.
    """

    def __init__(self, num_classes: int, **kwargs):
        self.num_classes = check_num_classes(num_classes, type(self).__name__)
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"{type(self).__name__} needs a known embedding size")
        self.kernel = self.add_weight(
            shape=(self.num_classes, dim), initializer="glorot_uniform", name="kernel"
        )

    def call(self, embeddings):
        x = as_float32(embeddings)
        check_embeddings_rank(x, type(self).__name__)
        return tf.matmul(x, l2_normalize(self.kernel, axis=1), transpose_b=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config


def prototypical_gc_loss(
    support,
    query,
    query_labels,
    support_speakers,
    query_speakers,
    classifier: GlobalClassifier,
    n_way: int,
    k_shot: int,
    distance: str = "projection",
    scale: float = 1.0,
    gc_weight: float = 1.0,
) -> dict:
    """meta-SR's objective: episodic prototypical loss plus global classification.

    ``loss = loss_e + gc_weight * loss_g``, where ``loss_e`` is
    :func:`prototypical_loss` of the queries and ``loss_g`` the cross-entropy of
    ``classifier`` on every support and query row against its global speaker label.

    Args:
        support: ``[N*K, D]`` class-major support embeddings of one episode (or
            ``[T, N*K, D]`` for ``T`` episodes).
        query: ``[Q, D]`` query embeddings (or ``[T, Q, D]``).
        query_labels: ``[Q]`` (or ``[T, Q]``) episode labels ``0..N-1``.
        support_speakers: ``[N*K]`` (or ``[T, N*K]``) global speaker labels of the
            support rows.
        query_speakers: ``[Q]`` (or ``[T, Q]``) global speaker labels of the queries.
        classifier: the :class:`GlobalClassifier` over all training speakers.
        n_way, k_shot: episode shape.
        distance, scale: episodic logits (see :func:`prototypical_logits`); the
            default ``"projection"`` is meta-SR's ``query . normalize(prototype)``.
        gc_weight: weight of the global term (meta-SR: 1; 0 turns it off but still
            reports it).

    Returns:
        dict of float32 scalars: ``loss``, ``loss_e``, ``loss_g``, ``accuracy_e``
        (queries vs prototypes) and ``accuracy_g`` (all rows vs all speakers).
    """
    loss_e, accuracy_e = prototypical_loss(
        support, query, query_labels, n_way, k_shot, distance=distance, scale=scale
    )
    support, query = as_float32(support), as_float32(query)
    dim = support.shape[-1] if support.shape[-1] is not None else tf.shape(support)[-1]
    # Rows of every task (if a leading task axis is given) go through the classifier.
    rows = tf.concat([tf.reshape(support, [-1, dim]), tf.reshape(query, [-1, dim])], 0)
    speakers = tf.concat([as_labels(support_speakers), as_labels(query_speakers)], 0)
    logits = classifier(rows)
    loss_g, accuracy_g = cross_entropy(logits, speakers), top1_accuracy(logits, speakers)
    return {
        "loss": loss_e + float(gc_weight) * loss_g,
        "loss_e": loss_e,
        "loss_g": loss_g,
        "accuracy_e": accuracy_e,
        "accuracy_g": accuracy_g,
    }
