"""Pooling over time: frame features ``[batch, time, channels]`` to one vector per example.

Every layer here reduces the TIME axis (axis 1) of a ``[B, T, C]`` tensor, so encoders
built on them accept any number of frames (all examples of one batch share ``T``).

- :class:`TemporalAveragePooling` (TAP): the mean over time (meta-SR, VGGVox).
- :class:`StatisticsPooling` (TSTP): mean and unbiased standard deviation over time,
  concatenated to ``2 C`` (x-vector, CAM++).
- :class:`SelfAttentivePooling` (SAP): ``h_t = tanh(W x_t + b)``,
  ``w_t = softmax_t(h_t . a)``, output ``sum_t w_t x_t`` (ResNetSE34L, voxceleb_trainer).
- :class:`AttentiveStatisticsPooling` (ASP): the SAP weights give a weighted mean and a
  weighted standard deviation (variance clamped at ``variance_floor`` before the square
  root), concatenated to ``2 C`` (ResNetSE34L/V2).
- :class:`MultiHeadSelfAttentionPooling` (alias :data:`StructuredSelfAttentionPooling`):
  the structured self-attention of Lin et al. (2017) as used by "Deep CNNs With
  Self-Attention for Speaker Identification" (An, Thanh & Liu, 2019):
  ``A = softmax_t(tanh(H W_s1) W_s2)`` with ``n_hops`` columns, ``E = A^T H``
  ``[B, hops, C]``, merged over hops (mean, or concatenation), with the optional penalty
  ``||A A^T - I||_F^2``. Unlike the inzpeech port, whose softmax ran over the batch axis,
  the softmax here runs over TIME, so an example's embedding never depends on the other
  examples of its batch.

Softmaxes and statistics are computed in float32 whatever the layer's compute dtype, so
the layers are safe under the ``mixed_float16`` policy; the output is cast back to the
layer's compute dtype.
"""

from __future__ import annotations

import keras
from keras import ops


def _check_rank3(input_shape, layer_name: str):
    if len(input_shape) != 3:
        raise ValueError(
            f"{layer_name} expects frame features [batch, time, channels], got shape "
            f"{tuple(input_shape)}"
        )
    if input_shape[-1] is None:
        raise ValueError(f"{layer_name} needs a known channel dimension, got {tuple(input_shape)}")


@keras.saving.register_keras_serializable(package="keras_spkid")
class TemporalAveragePooling(keras.layers.Layer):
    """Temporal average pooling (TAP): the mean of ``[B, T, C]`` over time, ``[B, C]``.

    The mean is accumulated in float32 and cast back to the compute dtype.

    Example:
    >>> TemporalAveragePooling()(np.ones((2, 7, 3), "float32")).shape
    TensorShape([2, 3])
    """

    def build(self, input_shape):
        _check_rank3(input_shape, type(self).__name__)

    def call(self, inputs):
        mean = ops.mean(ops.cast(inputs, "float32"), axis=1)
        return ops.cast(mean, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="keras_spkid")
class StatisticsPooling(keras.layers.Layer):
    """Statistics pooling: ``[B, T, C]`` to ``[mean_t x, std_t x]``, ``[B, 2 C]``.

    The standard deviation is the unbiased one (``T - 1`` in the denominator, as
    ``torch.std``); a single frame has no spread and gets ``single_frame_std`` instead
    (0.01, as 3D-Speaker). The variance is clamped at ``variance_floor`` before the
    square root, whose gradient is infinite at 0 (a channel that is 0 at every frame,
    common after a ReLU, would otherwise make the gradients NaN). Computed in float32.

    Example:
    >>> StatisticsPooling()(np.ones((2, 7, 3), "float32")).shape
    TensorShape([2, 6])
    """

    def __init__(self, single_frame_std: float = 1e-2, variance_floor: float = 1e-10, **kwargs):
        super().__init__(**kwargs)
        self.single_frame_std = float(single_frame_std)
        self.variance_floor = float(variance_floor)

    def build(self, input_shape):
        _check_rank3(input_shape, type(self).__name__)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        frames = ops.cast(ops.shape(x)[1], "float32")
        mean = ops.mean(x, axis=1)
        squares = ops.sum(ops.square(x - ops.expand_dims(mean, 1)), axis=1)
        variance = squares / ops.maximum(frames - 1.0, 1.0)
        std = ops.sqrt(ops.maximum(variance, self.variance_floor))
        std = ops.where(frames > 1.0, std, ops.full_like(std, self.single_frame_std))
        return ops.cast(ops.concatenate([mean, std], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(single_frame_std=self.single_frame_std, variance_floor=self.variance_floor)
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class SelfAttentivePooling(keras.layers.Layer):
    """Self-attentive pooling (SAP) over time, as in voxceleb_trainer's ResNetSE34L.

    For frame features ``x_t`` (``[B, T, C]``): ``h_t = tanh(x_t W + b)`` (``W`` is
    ``[C, units]``), scores ``e_t = h_t . a`` with a learned context vector ``a``
    (``[units]``), weights ``w = softmax_t(e)`` over TIME, output ``sum_t w_t x_t``
    (``[B, C]``).

    Args:
        units: width of the attention projection ``W``; ``None`` uses ``C`` as the
            reference does.
        kernel_initializer: initialiser of ``W``.
        context_initializer: initialiser of the context vector ``a`` (the reference uses
            Xavier normal).
        kernel_regularizer: optional regulariser of ``W`` and ``a``.

    Input shape: ``[B, T, C]``. Output shape: ``[B, C]``.
    """

    def __init__(
        self,
        units: int | None = None,
        kernel_initializer="glorot_uniform",
        context_initializer="glorot_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units is not None and units < 1:
            raise ValueError(f"units must be a positive integer or None, got {units}")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.context_initializer = keras.initializers.get(context_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        _check_rank3(input_shape, type(self).__name__)
        channels = int(input_shape[-1])
        units = self.units or channels
        self.kernel = self.add_weight(
            name="kernel",
            shape=(channels, units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros")
        self.context = self.add_weight(
            name="context",
            shape=(units, 1),
            initializer=self.context_initializer,
            regularizer=self.kernel_regularizer,
        )

    def attention_weights(self, inputs):
        """Weights over time, ``[B, T]`` float32, each row summing to one."""
        hidden = ops.tanh(ops.matmul(inputs, self.kernel) + self.bias)
        scores = ops.squeeze(ops.matmul(hidden, self.context), axis=-1)
        return ops.softmax(ops.cast(scores, "float32"), axis=1)

    def call(self, inputs):
        weights = self.attention_weights(inputs)
        pooled = ops.sum(ops.cast(inputs, "float32") * ops.expand_dims(weights, -1), axis=1)
        return ops.cast(pooled, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            context_initializer=keras.initializers.serialize(self.context_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class AttentiveStatisticsPooling(SelfAttentivePooling):
    """Attentive statistics pooling (ASP): SAP weights, weighted mean and std over time.

    With the weights ``w_t`` of :class:`SelfAttentivePooling`,
    ``mu = sum_t w_t x_t`` and ``sigma = sqrt(max(sum_t w_t x_t^2 - mu^2, variance_floor))``
    (the floor keeps the gradient of the square root finite); the output is
    ``concat([mu, sigma])``.

    Args:
        units, kernel_initializer, context_initializer, kernel_regularizer: as in
            :class:`SelfAttentivePooling`.
        variance_floor: the variance is clamped to at least this before ``sqrt``
            (``1e-5`` as in ResNetSE34L).

    Input shape: ``[B, T, C]``. Output shape: ``[B, 2 C]``.
    """

    def __init__(self, units: int | None = None, variance_floor: float = 1e-5, **kwargs):
        super().__init__(units=units, **kwargs)
        if variance_floor <= 0:
            raise ValueError(f"variance_floor must be > 0, got {variance_floor}")
        self.variance_floor = variance_floor

    def call(self, inputs):
        weights = ops.expand_dims(
            self.attention_weights(inputs), -1
        )  # [:, :, None] does not convert to LiteRT
        x = ops.cast(inputs, "float32")
        mean = ops.sum(x * weights, axis=1)
        variance = ops.sum(ops.square(x) * weights, axis=1) - ops.square(mean)
        std = ops.sqrt(ops.maximum(variance, self.variance_floor))
        return ops.cast(ops.concatenate([mean, std], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(variance_floor=self.variance_floor)
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class MultiHeadSelfAttentionPooling(keras.layers.Layer):
    """Structured (multi-hop) self-attention pooling of Lin et al., over TIME.

    For frame features ``H`` (``[B, T, C]``):
    ``A = softmax_t(tanh(H W_s1) W_s2)`` (``[B, T, n_hops]``; ``W_s1`` is ``[C, units]``,
    ``W_s2`` is ``[units, n_hops]``, no biases), each hop's weights summing to one over
    time; ``E = A^T H`` (``[B, n_hops, C]``); then ``merge="mean"`` averages the hops
    (``[B, C]``, as inzpeech's ``AveragePooling1D`` over hops) and ``merge="concat"``
    flattens them (``[B, n_hops * C]``, as Lin et al.).

    With ``penalty_weight > 0`` the layer adds ``penalty_weight * mean_b ||A_b^T A_b - I||_F^2``
    (the hop-by-hop Gram matrix against the identity, pushing hops to attend to different
    frames) to the model's losses with ``add_loss``; ``Model.fit`` adds it to the loss.

    Args:
        n_hops: number of attention hops (rows of ``A^T``); 4 in the reference.
        units: hidden width ``d_a`` of ``W_s1`` (256 in the reference VGG model).
        merge: ``"mean"`` or ``"concat"``, how hops are combined.
        penalty_weight: weight of the Frobenius penalty, 0 disables it.
        kernel_initializer: initialiser of ``W_s1`` and ``W_s2`` (Glorot uniform).
        kernel_regularizer: optional regulariser of both matrices.

    Input shape: ``[B, T, C]``. Output shape: ``[B, C]`` (mean) or ``[B, n_hops C]``.
    """

    def __init__(
        self,
        n_hops: int = 4,
        units: int = 256,
        merge: str = "mean",
        penalty_weight: float = 0.0,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if n_hops < 1 or units < 1:
            raise ValueError(f"n_hops and units must be >= 1, got n_hops={n_hops}, units={units}")
        if merge not in ("mean", "concat"):
            raise ValueError(f"merge must be 'mean' or 'concat', got {merge!r}")
        if penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
        self.n_hops = n_hops
        self.units = units
        self.merge = merge
        self.penalty_weight = penalty_weight
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        _check_rank3(input_shape, type(self).__name__)
        channels = int(input_shape[-1])
        self.ws1 = self.add_weight(
            name="ws1",
            shape=(channels, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.ws2 = self.add_weight(
            name="ws2",
            shape=(self.units, self.n_hops),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def attention_weights(self, inputs):
        """Attention ``A``: ``[B, T, n_hops]`` float32, softmax over time (axis 1)."""
        scores = ops.matmul(ops.tanh(ops.matmul(inputs, self.ws1)), self.ws2)
        return ops.softmax(ops.cast(scores, "float32"), axis=1)

    def penalty(self, attention):
        """``||A^T A - I||_F^2`` per example (``[B]``) for ``A`` of shape ``[B, T, hops]``."""
        gram = ops.einsum("bth,btk->bhk", attention, attention)
        identity = ops.eye(self.n_hops, dtype="float32")
        return ops.sum(ops.square(gram - identity[None]), axis=(1, 2))

    def call(self, inputs):
        attention = self.attention_weights(inputs)
        hops = ops.einsum("bth,btc->bhc", attention, ops.cast(inputs, "float32"))
        if self.penalty_weight > 0:
            self.add_loss(self.penalty_weight * ops.mean(self.penalty(attention)))
        if self.merge == "mean":
            pooled = ops.mean(hops, axis=1)
        else:
            pooled = ops.reshape(hops, (-1, self.n_hops * hops.shape[-1]))
        return ops.cast(pooled, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        if self.merge == "concat":
            channels = self.n_hops * channels
        return (input_shape[0], channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            n_hops=self.n_hops,
            units=self.units,
            merge=self.merge,
            penalty_weight=self.penalty_weight,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config


#: Lin et al.'s name for :class:`MultiHeadSelfAttentionPooling`.
StructuredSelfAttentionPooling = MultiHeadSelfAttentionPooling


POOLING_LAYERS = {
    "tap": TemporalAveragePooling,
    "stats": StatisticsPooling,
    "sap": SelfAttentivePooling,
    "asp": AttentiveStatisticsPooling,
    "self_attention": MultiHeadSelfAttentionPooling,
}


def get_pooling(name: str, **kwargs) -> keras.layers.Layer:
    """A pooling layer by name: ``"tap"``, ``"stats"``, ``"sap"``, ``"asp"``, ``"self_attention"``.

    Keyword arguments go to the layer's constructor. Unknown names raise ``ValueError``.
    """
    key = str(name).lower()
    if key not in POOLING_LAYERS:
        raise ValueError(
            f"unknown pooling {name!r}; valid names: {', '.join(sorted(POOLING_LAYERS))}"
        )
    return POOLING_LAYERS[key](**kwargs)
