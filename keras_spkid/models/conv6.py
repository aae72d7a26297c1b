"""The 6-block convolutional encoder of Boccio's CS330 project (``VoxCelebNetwork``).

Six blocks of ``Conv2D(3x3, same, bias) -> BatchNorm -> ReLU -> MaxPool 2x2`` with
16, 32, 64, 64, 64, 64 channels over the (time, frequency) image of the filterbanks.
The reference flattened the final 4x4x64 map of a fixed 301-frame, 256-mel image into
a 1024-d vector; here frequency x channels are flattened per time step and averaged
over the remaining time steps, so any number of frames (at least ``2**6 = 64``) works
and the embedding has ``channels[-1] * (n_mels // 64)`` dimensions.

Trainable parameters do not depend on the input size: 134,080 in the convolutions and
608 in the batch norms, 134,688 in all, for the reference channels (the CS330 report's
269,376 is exactly twice that).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_spkid.layers.pooling import TemporalAveragePooling
from keras_spkid.models._common import (
    add_channel_axis,
    filterbank_input,
    float32_output,
)

CONV6_CHANNELS = (16, 32, 64, 64, 64, 64)


def conv6_embedding_dim(n_mels: int, channels: Sequence[int] = CONV6_CHANNELS) -> int:
    """Embedding size of :func:`build_conv6`: ``channels[-1] * (n_mels // 2**len(channels))``.

    Raises ``ValueError`` when the max-pools would leave no frequency bins.
    """
    channels = tuple(int(c) for c in channels)
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be a non-empty list of positive widths, got {channels}")
    reduction = 2 ** len(channels)
    if n_mels < reduction:
        raise ValueError(
            f"conv6 needs n_mels >= {reduction}: its {len(channels)} 2x2 max-pools halve "
            f"the frequency axis {len(channels)} times, so n_mels={n_mels} would leave no "
            f"frequency bins; use a front end with at least {reduction} mel bands "
            f"(64, 80 or 128; the CS330 reference used 256) or another encoder"
        )
    return channels[-1] * (n_mels // reduction)


def build_conv6(
    n_mels: int = 64,
    channels: Sequence[int] = CONV6_CHANNELS,
    embedding_dim: int | None = None,
    name: str = "conv6",
) -> keras.Model:
    """CS330 ``VoxCelebNetwork`` encoder, ``[B, T, n_mels]`` filterbanks to ``[B, D]``.

    Args:
        n_mels: mel bands of the input; at least ``2**len(channels)`` (64 by default).
        channels: output channels of the blocks, one block each (reference
            ``16, 32, 64, 64, 64, 64``).
        embedding_dim: optional check only: the size is fixed by the architecture,
            ``channels[-1] * (n_mels // 2**len(channels))``; a different value raises
            ``ValueError``.
        name: model name.

    Input shape: ``[B, T, n_mels]`` with ``T >= 2**len(channels)`` frames (64 by default;
    fewer frames leave no time steps to average). Output: ``[B, D]`` float32.

    Raises:
        ValueError: ``n_mels`` too small for the pools, or a mismatching ``embedding_dim``.
    """
    channels = tuple(int(c) for c in channels)
    dim = conv6_embedding_dim(n_mels, channels)
    if embedding_dim is not None and embedding_dim != dim:
        raise ValueError(
            f"conv6's embedding size is fixed by its architecture: channels[-1] * "
            f"(n_mels // {2 ** len(channels)}) = {dim} for n_mels={n_mels}, "
            f"channels={list(channels)}; got embedding_dim={embedding_dim}"
        )
    inputs = filterbank_input(n_mels)
    x = add_channel_axis(inputs, n_mels)
    for i, width in enumerate(channels, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=True, name=f"block{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    # [B, T', F', C] -> [B, T', F' C]: frequency x channels per remaining time step.
    x = keras.layers.Reshape((-1, x.shape[2] * x.shape[3]), name="frequency_flatten")(x)
    x = TemporalAveragePooling(name="time_average")(x)
    return keras.Model(inputs, float32_output(x), name=name)
