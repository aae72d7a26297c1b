"""Pieces shared by the encoder builders."""

from __future__ import annotations

import keras


def filterbank_input(n_mels: int, name: str = "filterbanks") -> keras.KerasTensor:
    """``keras.Input`` of shape ``[B, T, n_mels]`` with a variable number of frames."""
    if not isinstance(n_mels, int) or n_mels < 1:
        raise ValueError(f"n_mels must be a positive integer, got {n_mels!r}")
    return keras.Input(shape=(None, n_mels), name=name)


def add_channel_axis(features: keras.KerasTensor, n_mels: int) -> keras.KerasTensor:
    """``[B, T, F]`` to ``[B, T, F, 1]`` (time and frequency as image height and width)."""
    return keras.layers.Reshape((-1, n_mels, 1), name="add_channel")(features)


def collapse_frequency(x: keras.KerasTensor, mode: str = "flatten") -> keras.KerasTensor:
    """``[B, T', F', C]`` to frame features ``[B, T', D]``.

    ``"flatten"`` stacks frequency into channels (``D = F' C``); ``"mean"`` averages
    over frequency (``D = C``, as ResNetSE34L and meta-SR's global average).
    """
    freq, channels = x.shape[2], x.shape[3]
    if mode == "flatten":
        return keras.layers.Reshape((-1, freq * channels), name="frequency_flatten")(x)
    if mode == "mean":
        # Average pooling over the whole frequency axis, then drop it.
        x = keras.layers.AveragePooling2D(pool_size=(1, freq), name="frequency_mean")(x)
        return keras.layers.Reshape((-1, channels), name="frequency_squeeze")(x)
    raise ValueError(f"frequency_pooling must be 'flatten' or 'mean', got {mode!r}")


def float32_output(x: keras.KerasTensor, name: str = "embedding") -> keras.KerasTensor:
    """Identity that casts to float32, so embeddings are float32 under mixed precision."""
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)
