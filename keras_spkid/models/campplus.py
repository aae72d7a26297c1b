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

Layers are named after the modules of the 3D-Speaker PyTorch implementation
(``head.layer1.0.conv1``, ``xvector.block2.tdnnd7.cam_layer.linear_local`` ...), so a
checkpoint's state_dict maps onto them by name (:mod:`keras_spkid.models.campplus_checkpoint`).
For the default sizes the model has 6.85 M trainable parameters (6.93 M with the batch
norms' moving statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
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
        x = ops.cast(inputs, "float32")
        shape = ops.shape(x)
        batch, frames, channels = shape[0], shape[1], shape[2]
        length = self.segment_length
        segments = (frames + length - 1) // length
        padded = ops.pad(x, [[0, 0], [0, segments * length - frames], [0, 0]])
        sums = ops.sum(ops.reshape(padded, (batch, segments, length, channels)), axis=2)
        counts = ops.minimum(length, frames - ops.arange(segments) * length)
        # expand_dims, not [None, ...] indexing: LiteRT's builtins lack new-axis slices
        means = sums / ops.reshape(ops.cast(counts, "float32"), (1, segments, 1))
        per_frame = ops.broadcast_to(ops.expand_dims(means, 2), (batch, segments, length, channels))
        per_frame = ops.reshape(per_frame, (batch, segments * length, channels))[:, :frames]
        context = ops.mean(x, axis=1, keepdims=True) + per_frame
        return ops.cast(context, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(segment_length=self.segment_length)
        return config


def _batchnorm_relu(x, name: str):
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}.batchnorm")(x)
    return keras.layers.ReLU(name=f"{name}.relu")(x)


def _conv2d_bn(x, channels: int, kernel: int, freq_stride: int, name: str, bn_name: str):
    """Conv over [B, T, F, C] with PyTorch's symmetric padding (stride on frequency only)."""
    if kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}.pad")(x)
    x = keras.layers.Conv2D(channels, kernel, strides=(1, freq_stride), use_bias=False, name=name)(
        x
    )
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


def _conv1d(x, channels: int, kernel: int, name: str, dilation: int = 1, stride: int = 1):
    """Conv1D over [B, T, C] with PyTorch's symmetric padding ``(k - 1) // 2 * dilation``."""
    if kernel == 1:
        return keras.layers.Dense(channels, use_bias=False, name=name)(x)
    pad = (kernel - 1) // 2 * dilation
    x = keras.layers.ZeroPadding1D(pad, name=f"{name}.pad")(x)
    return keras.layers.Conv1D(
        channels, kernel, strides=stride, dilation_rate=dilation, use_bias=False, name=name
    )(x)


def _cam_dense_layer(x, growth: int, bottleneck: int, kernel: int, dilation: int, name: str):
    """One D-TDNN layer: ``growth`` new channels, masked by their context."""
    y = _batchnorm_relu(x, f"{name}.nonlinear1")
    y = keras.layers.Dense(bottleneck, use_bias=False, name=f"{name}.linear1")(y)
    y = _batchnorm_relu(y, f"{name}.nonlinear2")
    cam = f"{name}.cam_layer"
    local = _conv1d(y, growth, kernel, f"{cam}.linear_local", dilation=dilation)
    context = SegmentContext(name=f"{cam}.context")(y)
    context = keras.layers.Dense(bottleneck // 2, activation="relu", name=f"{cam}.linear1")(context)
    mask = keras.layers.Dense(growth, activation="sigmoid", name=f"{cam}.linear2")(context)
    return keras.layers.Multiply(name=f"{cam}.mask")([local, mask])


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

    x = _conv1d(x, init_channels, 5, "xvector.tdnn.linear", stride=2)
    x = _batchnorm_relu(x, "xvector.tdnn.nonlinear")
    channels = init_channels
    for b, (num_layers, kernel, dilation) in enumerate(blocks, start=1):
        for i in range(1, int(num_layers) + 1):
            layer = f"xvector.block{b}.tdnnd{i}"
            new = _cam_dense_layer(
                x, growth_rate, bottleneck_scale * growth_rate, int(kernel), int(dilation), layer
            )
            x = keras.layers.Concatenate(name=f"{layer}.concat")([x, new])
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
