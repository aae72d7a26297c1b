"""CAM++: a densely connected TDNN with context-aware masking (Wang et al., Interspeech 2023).

``build_campplus`` maps Kaldi filterbanks ``[B, T, n_mels]`` to embeddings ``[B, D]``:

1. **Front convolutional module (FCM)**: a 2-D ResNet head over (time, frequency):
   ``conv3x3 -> BN -> ReLU``, two stages of two basic residual blocks whose first block
   halves the FREQUENCY axis (stride 2 over frequency only, 1x1 projection shortcut),
   then ``conv3x3`` with frequency stride 2, ``BN -> ReLU``. With ``head_channels=32``
   and 80 bands this gives 32 x 10 = 320 features per frame (frequency and channels
   flattened, channel-major as the reference does).
2. **TDNN**: ``Conv1D(init_channels, 5, stride 2) -> BN -> ReLU``: the frame rate halves.
3. **Three D-TDNN blocks** of 12, 24 and 16 layers (kernel 3, dilation 1, 2, 2). Each
   layer is ``BN -> ReLU -> 1x1 (4 * growth) -> BN -> ReLU -> CAM`` and its ``growth``
   output channels are concatenated to its input (DenseNet connectivity). The
   context-aware mask (CAM) multiplies a local ``Conv1D(growth, 3)`` by
   ``sigmoid(W2 relu(W1 c_t))``, where the context ``c_t`` is the utterance mean plus
   the mean of the 100-frame segment holding frame ``t`` (:class:`SegmentContext`).
   A transition ``BN -> ReLU -> 1x1`` halves the channels after each block.
4. ``BN -> ReLU``, mean and standard deviation over time (:class:`StatisticsPooling`),
   then a ``1x1`` projection to ``embedding_dim`` and a batch norm without scale or
   offset: the embedding.

Each D-TDNN layer is one Keras layer (:class:`CAMDenseLayer`, concatenation included)
rather than thirteen (116 Keras layers instead of 695), which makes the model load,
trace and run faster (``bench/RESULTS.md``, section ``campplus``). Layers and the
sublayers holding the weights are named after the modules of the 3D-Speaker PyTorch implementation
(``head.layer1.0.conv1``, ``xvector.block2.tdnnd7.cam_layer.linear_local`` ...), so a
checkpoint's state_dict maps onto them by name (:mod:`keras_spkid.models.campplus_checkpoint`).
Models saved with one Keras layer per module (before :class:`CAMDenseLayer`) still load.
For the default sizes the model has 6.85 M trainable parameters (6.93 M with the batch
norms' moving statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

from keras_spkid.layers.pooling import StatisticsPooling
from keras_spkid.models._common import filterbank_input, float32_output

CAMPPLUS_BLOCKS = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
"""(layers, kernel size, dilation) of the three D-TDNN blocks."""

_BN = dict(momentum=0.9, epsilon=1e-5)  # PyTorch's BatchNorm defaults


@keras.saving.register_keras_serializable(package="keras_spkid")
class SegmentContext(keras.layers.Layer):
    """Context of every frame: utterance mean plus the mean of its segment, ``[B, T, C]``.

    Frames are cut into consecutive segments of ``segment_length`` (the last one may
    be shorter and is averaged over the frames it has); frame ``t`` gets
    ``mean_T(x) + mean_{segment(t)}(x)``. Computed in float32.
    """

    def __init__(self, segment_length: int = 100, **kwargs):
        super().__init__(**kwargs)
        if segment_length < 1:
            raise ValueError(f"segment_length must be >= 1, got {segment_length}")
        self.segment_length = int(segment_length)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        context = self.per_segment(x)
        return tf.cast(self.to_frames(context, tf.shape(x)[1]), self.compute_dtype)

    def per_segment(self, x):
        """``[B, T, C]`` -> the context of each segment's frames, ``[B, ceil(T / L), C]``."""
        frames = tf.shape(x)[1]
        length = self.segment_length
        segments = (frames + length - 1) // length
        padded = tf.pad(x, [[0, 0], [0, segments * length - frames], [0, 0]])
        shape = (-1, segments, length, x.shape[-1] or tf.shape(x)[2])
        sums = tf.reduce_sum(tf.reshape(padded, shape), axis=2)  # [B, segments, C]
        counts = tf.minimum(length, frames - tf.range(segments) * length)
        means = sums / tf.cast(counts, sums.dtype)[:, None]
        return tf.reduce_mean(x, axis=1, keepdims=True) + means

    def to_frames(self, per_segment, frames):
        """``[B, S, C]`` per segment -> ``[B, frames, C]``: each row repeated over its frames."""
        length = self.segment_length
        # a broadcast product, not a gather
        expanded = tf.expand_dims(per_segment, 2) * tf.ones((1, 1, length, 1), per_segment.dtype)
        channels = per_segment.shape[-1] or tf.shape(per_segment)[2]
        return tf.reshape(expanded, (-1, tf.shape(per_segment)[1] * length, channels))[:, :frames]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(segment_length=self.segment_length)
        return config


@keras.saving.register_keras_serializable(package="keras_spkid")
class CAMDenseLayer(keras.layers.Layer):
    """One D-TDNN layer: ``[B, T, C] -> [B, T, C + growth]`` (its input, then ``growth``
    new channels masked by their context).

    ``BN -> ReLU -> 1x1 (bottleneck) -> BN -> ReLU``, then the context-aware mask:
    a local ``Conv1D(growth, kernel, dilation)`` (symmetric padding) times
    ``sigmoid(W2 relu(W1 c_t + b1) + b2)`` with ``c_t`` from :class:`SegmentContext`.
    One Keras layer instead of thirteen, computing in fewer graph ops: the full model
    loads and traces about twice as fast. Its sublayers are ordinary Keras layers
    (batch norms train as batch norms) named after the 3D-Speaker modules
    (``<name>.nonlinear1.batchnorm``, ``<name>.cam_layer.linear_local`` ...), which
    the checkpoint converter maps.

    Args:
        growth: new channels (32).
        bottleneck: channels of the 1x1 bottleneck (128); the mask's hidden layer has half.
        kernel, dilation: of the local convolution.
        segment_length: frames per segment of the context.
    """

    def __init__(
        self,
        growth: int = 32,
        bottleneck: int = 128,
        kernel: int = 3,
        dilation: int = 1,
        segment_length: int = 100,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.growth, self.bottleneck = int(growth), int(bottleneck)
        self.kernel, self.dilation = int(kernel), int(dilation)
        self.segment_length = int(segment_length)
        name, cam, dtype = self.name, f"{self.name}.cam_layer", self.dtype_policy
        self.nonlinear1 = keras.layers.BatchNormalization(
            **_BN, name=f"{name}.nonlinear1.batchnorm", dtype=dtype
        )
        self.linear1 = keras.layers.Dense(
            self.bottleneck, use_bias=False, name=f"{name}.linear1", dtype=dtype
        )
        self.nonlinear2 = keras.layers.BatchNormalization(
            **_BN, name=f"{name}.nonlinear2.batchnorm", dtype=dtype
        )
        if self.kernel == 1:
            self.linear_local = keras.layers.Dense(
                self.growth, use_bias=False, name=f"{cam}.linear_local", dtype=dtype
            )
        else:  # "same" is PyTorch's symmetric (k - 1) // 2 * dilation for odd kernels
            self.linear_local = keras.layers.Conv1D(
                self.growth, self.kernel, padding="same", dilation_rate=self.dilation,
                use_bias=False, name=f"{cam}.linear_local", dtype=dtype,
            )  # fmt: skip
        self.context = SegmentContext(self.segment_length, name=f"{cam}.context", dtype=dtype)
        self.cam_linear1 = keras.layers.Dense(
            self.bottleneck // 2, activation="relu", name=f"{cam}.linear1", dtype=dtype
        )
        self.cam_linear2 = keras.layers.Dense(
            self.growth, activation="sigmoid", name=f"{cam}.linear2", dtype=dtype
        )

    def build(self, input_shape):
        inner = (*input_shape[:-1], self.bottleneck)
        self.nonlinear1.build(input_shape)
        self.linear1.build(input_shape)
        self.nonlinear2.build(inner)
        self.linear_local.build(inner)
        self.cam_linear1.build(inner)
        self.cam_linear2.build((*input_shape[:-1], self.bottleneck // 2))

    def call(self, inputs, training=None):
        # The sublayers hold the weights; their maths is written out here because each
        # Dense/BN call adds ~25 graph ops (tensordot reshapes, casts): CAM++'s 52 layers
        # made a 12,700-op graph that took 30 s to trace and optimise.
        y = ops.relu(_batchnorm(self.nonlinear1, inputs, training))
        y = tf.matmul(y, self.linear1.kernel)
        y = ops.relu(_batchnorm(self.nonlinear2, y, training))
        local = self._local(y, training)
        # the context is constant over each segment, and so is the mask: compute it per
        # segment ([B, T / 100, C]), then repeat it over the segment's frames
        context = self.context.per_segment(ops.cast(y, "float32"))
        hidden = tf.matmul(ops.cast(context, y.dtype), self.cam_linear1.kernel)
        mask = tf.matmul(ops.relu(hidden + self.cam_linear1.bias), self.cam_linear2.kernel)
        mask = self.context.to_frames(ops.sigmoid(mask + self.cam_linear2.bias), ops.shape(y)[1])
        return ops.concatenate([inputs, local * mask], axis=-1)

    def _local(self, y, training):
        """The local convolution, ``[B, T, bottleneck] -> [B, T, growth]``, zero-padded
        symmetrically. At inference it is one ``Conv2D`` (dilated) over explicitly padded
        frames: Keras's convolution adds about 40 graph ops per layer (a space-to-batch
        convolution when dilated), and the smaller graph (8,055 ops instead of 10,191 for
        the preset) takes 32 MiB less memory to trace and prepare. Training keeps Keras's
        convolution, whose gradient every CPU kernel has (TensorFlow's own CPU kernels have
        no dilated ``Conv2D`` gradient)."""
        kernel = self.linear_local.kernel
        if self.kernel == 1:
            return tf.matmul(y, kernel)
        if training:
            return ops.conv(y, kernel, padding="same", dilation_rate=self.dilation)
        pad = (self.kernel - 1) // 2 * self.dilation
        padded = tf.expand_dims(tf.pad(y, [[0, 0], [pad, pad], [0, 0]]), 2)  # [B, T + 2 pad, 1, C]
        kernel = tf.expand_dims(kernel, 1)  # [k, 1, C, growth]
        local = tf.nn.conv2d(padded, kernel, 1, "VALID", dilations=(self.dilation, 1))
        return tf.squeeze(local, 2)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + self.growth
        return (*input_shape[:-1], channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            growth=self.growth,
            bottleneck=self.bottleneck,
            kernel=self.kernel,
            dilation=self.dilation,
            segment_length=self.segment_length,
        )
        return config


def _batchnorm(layer: keras.layers.BatchNormalization, x, training):
    """``layer(x, training)``; at inference the same affine map with the moving statistics,
    in fewer graph ops than the layer's own call."""
    if training:
        return layer(x, training=True)
    inv = ops.rsqrt(ops.cast(layer.moving_variance, "float32") + layer.epsilon)
    if layer.scale:
        inv = inv * ops.cast(layer.gamma, "float32")
    shift = -ops.cast(layer.moving_mean, "float32") * inv
    if layer.center:
        shift = shift + ops.cast(layer.beta, "float32")
    return x * ops.cast(inv, x.dtype) + ops.cast(shift, x.dtype)


def _batchnorm_relu(x, name: str):
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}.batchnorm")(x)
    return keras.layers.ReLU(name=f"{name}.relu")(x)


def _conv2d_bn(x, channels: int, kernel: int, freq_stride: int, name: str, bn_name: str):
    """Conv over [B, T, F, C] with PyTorch's symmetric padding (stride on frequency only)."""
    padding = "same" if freq_stride == 1 else "valid"  # "same" is symmetric at stride 1
    if kernel > 1 and freq_stride != 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}.pad")(x)
    x = keras.layers.Conv2D(
        channels, kernel, strides=(1, freq_stride), padding=padding, use_bias=False, name=name
    )(x)
    return keras.layers.BatchNormalization(**_BN, name=bn_name)(x)


def _residual_block(x, channels: int, freq_stride: int, name: str):
    """Basic ResNet block; ``freq_stride`` 2 halves the frequency axis."""
    y = _conv2d_bn(x, channels, 3, freq_stride, f"{name}.conv1", f"{name}.bn1")
    y = keras.layers.ReLU(name=f"{name}.relu1")(y)
    y = _conv2d_bn(y, channels, 3, 1, f"{name}.conv2", f"{name}.bn2")
    if freq_stride != 1 or x.shape[-1] != channels:
        x = _conv2d_bn(x, channels, 1, freq_stride, f"{name}.shortcut.0", f"{name}.shortcut.1")
    y = keras.layers.Add(name=f"{name}.add")([y, x])
    return keras.layers.ReLU(name=f"{name}.relu2")(y)


def build_campplus(
    n_mels: int = 80,
    embedding_dim: int | None = 192,
    growth_rate: int = 32,
    bottleneck_scale: int = 4,
    init_channels: int = 128,
    head_channels: int = 32,
    blocks: Sequence[Sequence[int]] = CAMPPLUS_BLOCKS,
    name: str = "campplus",
) -> keras.Model:
    """CAM++ encoder, filterbanks ``[B, T, n_mels]`` to embeddings ``[B, embedding_dim]``.

    Args:
        n_mels: filterbank bands; a multiple of 8 (the head halves frequency 3 times).
        embedding_dim: embedding size (192 for the 3D-Speaker checkpoints; ``None`` = 192).
        growth_rate: channels each D-TDNN layer adds (32).
        bottleneck_scale: the 1x1 bottleneck of a D-TDNN layer has
            ``bottleneck_scale * growth_rate`` channels (4 x 32 = 128).
        init_channels: channels of the TDNN layer after the head (128).
        head_channels: channels of the convolutional head (32).
        blocks: ``(layers, kernel, dilation)`` per D-TDNN block.
        name: model name.

    Input: ``[B, T, n_mels]`` with ``T >= 1``; frames are halved once (stride-2 TDNN).
    Output: ``[B, embedding_dim]`` float32.

    Raises:
        ValueError: ``n_mels`` not a positive multiple of 8, or a non-positive size.
    """
    embedding_dim = 192 if embedding_dim is None else int(embedding_dim)
    if n_mels % 8 or n_mels < 8:
        raise ValueError(
            f"campplus needs n_mels to be a positive multiple of 8 (its head halves the "
            f"frequency axis 3 times), got {n_mels}; use 64 or 80 bands"
        )
    if min(embedding_dim, growth_rate, bottleneck_scale, init_channels, head_channels) < 1:
        raise ValueError("campplus sizes must be positive")
    inputs = filterbank_input(n_mels)
    x = keras.layers.Reshape((-1, n_mels, 1), name="head.add_channel")(inputs)  # [B, T, F, 1]
    x = _conv2d_bn(x, head_channels, 3, 1, "head.conv1", "head.bn1")
    x = keras.layers.ReLU(name="head.relu1")(x)
    for stage in (1, 2):
        x = _residual_block(x, head_channels, 2, f"head.layer{stage}.0")
        x = _residual_block(x, head_channels, 1, f"head.layer{stage}.1")
    x = _conv2d_bn(x, head_channels, 3, 2, "head.conv2", "head.bn2")
    x = keras.layers.ReLU(name="head.relu2")(x)
    # [B, T, F/8, C] -> [B, T, C * F/8], channel-major like the reference's reshape
    x = keras.layers.Permute((1, 3, 2), name="head.channels_first")(x)
    x = keras.layers.Reshape((-1, head_channels * (n_mels // 8)), name="head.flatten")(x)

    # stride 2: PyTorch's padding (2 each side) is no Keras "same"
    x = keras.layers.ZeroPadding1D(2, name="xvector.tdnn.linear.pad")(x)
    x = keras.layers.Conv1D(
        init_channels, 5, strides=2, use_bias=False, name="xvector.tdnn.linear"
    )(x)
    x = _batchnorm_relu(x, "xvector.tdnn.nonlinear")
    channels = init_channels
    for b, (num_layers, kernel, dilation) in enumerate(blocks, start=1):
        for i in range(1, int(num_layers) + 1):
            x = CAMDenseLayer(
                growth_rate,
                bottleneck_scale * growth_rate,
                int(kernel),
                int(dilation),
                name=f"xvector.block{b}.tdnnd{i}",
            )(x)
        channels = (channels + int(num_layers) * growth_rate) // 2
        x = _batchnorm_relu(x, f"xvector.transit{b}.nonlinear")
        x = keras.layers.Dense(channels, use_bias=False, name=f"xvector.transit{b}.linear")(x)
    x = _batchnorm_relu(x, "xvector.out_nonlinear")
    x = StatisticsPooling(name="xvector.stats")(x)
    x = keras.layers.Dense(embedding_dim, use_bias=False, name="xvector.dense.linear")(x)
    x = keras.layers.BatchNormalization(
        **_BN, center=False, scale=False, name="xvector.dense.nonlinear.batchnorm"
    )(x)
    return keras.Model(inputs, float32_output(x), name=name)
