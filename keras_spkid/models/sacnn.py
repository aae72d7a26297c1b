"""Self-attention CNNs of "Deep CNNs With Self-Attention for Speaker Identification".

The inzpeech Keras port of An, Thanh & Liu (IEEE Access 2019) has two models, both
reimplemented here as encoders (no classification head):

- :func:`build_sacnn` (``"sacnn"``): a VGG-like trunk of 4 blocks
  ``[Conv2D(k, 3x3, same, relu) x 2 -> BatchNorm -> MaxPool 2x2]`` with k = 64, 128, 256,
  512 in the reference (32, 64, 128, 256 by default here, for CPU), frequency x channels
  flattened per frame, 4-hop structured self-attention pooled over TIME and averaged over
  hops, then the ``Dense(256, relu)`` embedding layer of the reference.
- :func:`build_resnet18_sa` (``"resnet18_sa"``): inzpeech's ResNet-18 trunk
  (:func:`keras_spkid.models.resnet.build_resnet18`) with the same attention pooling and
  ``Dense(256, relu)`` embedding.

Deliberate differences from the reference code: the attention softmax runs over time,
not over the batch axis (so an example's embedding does not depend on its batch), the
pools use ``same`` padding throughout (the reference used it for pools 3 and 4) so any
number of frames and 40 mel bands work, and the Frobenius penalty of Lin et al., absent
from the reference's loss, is available as ``penalty_weight``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_spkid.layers.pooling import MultiHeadSelfAttentionPooling
from keras_spkid.models._common import (
    add_channel_axis,
    collapse_frequency,
    filterbank_input,
    float32_output,
)
from keras_spkid.models.resnet import build_resnet18

SACNN_WIDTHS = (32, 64, 128, 256)
REFERENCE_SACNN_WIDTHS = (64, 128, 256, 512)


def build_sacnn(
    n_mels: int = 64,
    widths: Sequence[int] = SACNN_WIDTHS,
    n_hops: int = 4,
    attention_units: int = 256,
    attention_merge: str = "mean",
    penalty_weight: float = 0.0,
    embedding_dim: int = 256,
    embedding_activation: str | None = "relu",
    dropout: float = 0.0,
    name: str = "sacnn",
) -> keras.Model:
    """VGG + multi-hop self-attention encoder, ``[B, T, n_mels]`` to ``[B, embedding_dim]``.

    Args:
        n_mels: mel bands of the input (any; 40 gives 3 frequency bins after 4 pools).
        widths: channels of the conv blocks, one block each (reference 64, 128, 256, 512:
            :data:`REFERENCE_SACNN_WIDTHS`).
        n_hops: attention hops (4 in the reference).
        attention_units: hidden width ``d_a`` of the attention (256 in the reference).
        attention_merge: ``"mean"`` over hops (reference) or ``"concat"``.
        penalty_weight: weight of the ``||A A^T - I||^2`` penalty added with ``add_loss``.
        embedding_dim: size of the embedding layer (256).
        embedding_activation: its activation (``"relu"`` as the reference; ``None`` for
            a linear embedding).
        dropout: dropout rate after each conv block (the reference's training variant
            used 0.2); 0 disables.
        name: model name.

    Input shape: ``[B, T, n_mels]``, any ``T``. Output shape: ``[B, embedding_dim]`` float32.
    """
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be a non-empty list of positive ints, got {widths}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    inputs = filterbank_input(n_mels)
    x = add_channel_axis(inputs, n_mels)
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name=f"block{i}_conv1"
        )(x)
        x = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name=f"block{i}_conv2"
        )(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{i}_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"block{i}_dropout")(x)
    x = collapse_frequency(x, "flatten")
    x = MultiHeadSelfAttentionPooling(
        n_hops=n_hops,
        units=attention_units,
        merge=attention_merge,
        penalty_weight=penalty_weight,
        name="self_attention",
    )(x)
    x = keras.layers.Dense(embedding_dim, activation=embedding_activation, name="embedding_dense")(
        x
    )
    return keras.Model(inputs, float32_output(x), name=name)


def build_resnet18_sa(
    n_mels: int = 64,
    base_width: int = 32,
    n_hops: int = 4,
    attention_units: int = 256,
    penalty_weight: float = 0.0,
    embedding_dim: int = 256,
    embedding_activation: str | None = "relu",
    name: str = "resnet18_sa",
    **kwargs,
) -> keras.Model:
    """inzpeech ResNet-18 trunk + multi-hop self-attention pooling + ``Dense(256, relu)``.

    Args:
        n_mels: mel bands of the input.
        base_width: stage widths ``base_width * (1, 2, 4, 8)`` (32 in the reference).
        n_hops, attention_units, penalty_weight: as in :func:`build_sacnn`.
        embedding_dim, embedding_activation: the embedding layer.
        name: model name.
        **kwargs: further arguments of :func:`keras_spkid.models.resnet.build_resnet`
            (``dropout=0.15`` as the reference, ``squeeze_excitation`` ...).

    Input shape: ``[B, T, n_mels]``, any ``T`` (time is reduced 32-fold, rounding up).
    Output shape: ``[B, embedding_dim]`` float32.
    """
    return build_resnet18(
        n_mels,
        base_width=base_width,
        pooling="self_attention",
        n_hops=n_hops,
        pooling_units=attention_units,
        penalty_weight=penalty_weight,
        embedding_dim=embedding_dim,
        embedding_activation=embedding_activation,
        name=name,
        **kwargs,
    )
