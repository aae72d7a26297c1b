"""Reduced-width ResNets over (time, frequency) filterbank images.

:func:`build_resnet` is the general builder: a stem convolution, stages of basic
residual blocks (optionally with squeeze-excitation), frequency collapsed into channels
(or averaged), pooling over TIME (TAP, SAP, ASP or multi-hop self-attention) and a
``Dense`` embedding. The named variants fix its arguments:

- :func:`build_resnet34` (``"resnet34"``): [3, 4, 6, 3] blocks, widths ``base x (1, 2, 4,
  8)`` with base 16, voxceleb_trainer's ResNetSE34L strides (the stem halves frequency
  only, stages 2 and 3 halve both axes, so time keeps 1/4 of its frames for pooling),
  SAP, ``Dense(256)``. Presets (``preset=``):

  - ``"se34l"``: ResNetSE34L itself: squeeze-excitation blocks (reduction 8),
    frequency averaged before SAP. With ``embedding_dim=512`` it has the reference's
    1,437,078 trainable parameters.
  - ``"metasr"``: meta-SR's ResNet-34 at width 32: stride-1 stem, stage strides
    1, 2, 2, 2, global average over frequency and time (TAP), then
    ``BatchNorm -> ReLU -> Dense(256, no bias)``: 5,390,688 trainable parameters as
    computed for the reference.

- :func:`build_resnet18` (and ``"resnet18_sa"`` via
  :func:`keras_spkid.models.sacnn.build_resnet18_sa`): inzpeech's Keras ResNet-18:
  [2, 2, 2, 2] blocks, widths 32, 64, 128, 256, a 7x7 stride-1 stem with a 3x3 stride-2
  max-pool, every stage halving both axes.

Blocks are the standard post-activation basic block (``conv3x3 -> BN -> ReLU -> conv3x3
-> BN [-> SE] + shortcut -> ReLU``), with a ``1x1 conv -> BN`` projection shortcut when
the stride or width changes. All convolutions are bias-free (a batch norm follows each).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_spkid.layers.pooling import (
    AttentiveStatisticsPooling,
    MultiHeadSelfAttentionPooling,
    SelfAttentivePooling,
    TemporalAveragePooling,
)
from keras_spkid.models._common import (
    add_channel_axis,
    collapse_frequency,
    filterbank_input,
    float32_output,
)

POOLINGS = ("tap", "sap", "asp", "self_attention")


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{what} must be an int or a (time, frequency) pair, got {value!r}")
    return pair


def squeeze_excitation(x, reduction: int, name: str):
    """Channel gating: global average -> Dense(C / r, relu) -> Dense(C, sigmoid) -> scale."""
    channels = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_squeeze")(x)
    s = keras.layers.Dense(max(1, channels // reduction), activation="relu", name=f"{name}_se_fc1")(
        s
    )
    s = keras.layers.Dense(channels, activation="sigmoid", name=f"{name}_se_fc2")(s)
    return keras.layers.Multiply(name=f"{name}_se_scale")([x, s])


def basic_block(
    x, filters: int, strides=(1, 1), se_reduction: int | None = None, name: str = "block"
):
    """Post-activation basic residual block on ``[B, T, F, C]`` (optionally with SE).

    Args:
        x: input tensor ``[B, T, F, C_in]``.
        filters: output channels.
        strides: (time, frequency) strides of the first convolution and the shortcut.
        se_reduction: squeeze-excitation reduction ratio, ``None`` for no SE.
        name: prefix of the layer names.

    Returns ``[B, ceil(T / s_t), ceil(F / s_f), filters]``.
    """
    strides = _pair(strides, "strides")
    y = keras.layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1"
    )(x)
    y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    if se_reduction:
        y = squeeze_excitation(y, se_reduction, name)
    shortcut = x
    if strides != (1, 1) or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv"
        )(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def build_resnet(
    n_mels: int = 64,
    blocks: Sequence[int] = (3, 4, 6, 3),
    base_width: int = 16,
    widths: Sequence[int] | None = None,
    stem_kernel: int = 7,
    stem_strides=(1, 2),
    stem_pool: bool = False,
    stage_strides: Sequence = (1, 2, 2, 1),
    squeeze_excitation: bool = False,
    se_reduction: int = 8,
    frequency_pooling: str = "flatten",
    pooling: str = "sap",
    pooling_units: int | None = None,
    n_hops: int = 4,
    penalty_weight: float = 0.0,
    head_bn_relu: bool = False,
    embedding_dim: int = 256,
    embedding_activation: str | None = None,
    embedding_use_bias: bool = True,
    dropout: float = 0.0,
    name: str = "resnet",
) -> keras.Model:
    """A ResNet encoder, ``[B, T, n_mels]`` filterbanks to ``[B, embedding_dim]`` float32.

    Args:
        n_mels: mel bands of the input.
        blocks: basic blocks per stage ([3, 4, 6, 3] for ResNet-34, [2, 2, 2, 2] for 18).
        base_width: width of the stem and first stage; stage ``i`` has
            ``base_width * 2**i`` channels unless ``widths`` is given.
        widths: explicit per-stage widths (overrides ``base_width``; the stem uses
            ``widths[0]``).
        stem_kernel: kernel size of the stem convolution.
        stem_strides: (time, frequency) strides of the stem (ResNetSE34L: ``(1, 2)``).
        stem_pool: add a 3x3 stride-2 max-pool after the stem (ResNet-18 style).
        stage_strides: per-stage strides of the first block; ints or (time, frequency).
        squeeze_excitation: add SE gating to every block.
        se_reduction: SE reduction ratio.
        frequency_pooling: ``"flatten"`` (frequency x channels per frame) or ``"mean"``.
        pooling: over time: ``"tap"``, ``"sap"``, ``"asp"`` or ``"self_attention"``.
        pooling_units: attention width (SAP/ASP: ``None`` = frame feature size;
            self-attention: ``None`` = 256).
        n_hops, penalty_weight: self-attention hops and Frobenius penalty weight.
        head_bn_relu: ``BatchNorm -> ReLU`` on the pooled vector before the embedding
            layer (meta-SR).
        embedding_dim: output size of the final ``Dense``.
        embedding_activation: activation of the final ``Dense`` (``None``: linear).
        embedding_use_bias: bias in the final ``Dense``.
        dropout: dropout rate after the stem and each stage (0 disables).
        name: model name.

    Input shape: ``[B, T, n_mels]``, any ``T`` (time is downsampled by the product of the
    time strides, with ``same`` padding, so at least one frame always remains).
    Output shape: ``[B, embedding_dim]`` float32.
    """
    blocks = tuple(int(b) for b in blocks)
    if widths is None:
        widths = tuple(base_width * 2**i for i in range(len(blocks)))
    widths = tuple(int(w) for w in widths)
    stage_strides = tuple(_pair(s, "stage_strides") for s in stage_strides)
    if not (len(blocks) == len(widths) == len(stage_strides)) or not blocks:
        raise ValueError(
            f"blocks, widths and stage_strides need one entry per stage, got {len(blocks)}, "
            f"{len(widths)} and {len(stage_strides)}"
        )
    if min(blocks) < 1 or min(widths) < 1:
        raise ValueError(f"blocks and widths must be positive, got {blocks} and {widths}")
    pooling = str(pooling).lower()
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")

    inputs = filterbank_input(n_mels)
    x = add_channel_axis(inputs, n_mels)
    x = keras.layers.Conv2D(
        widths[0],
        stem_kernel,
        strides=_pair(stem_strides, "stem_strides"),
        padding="same",
        use_bias=False,
        name="stem_conv",
    )(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    if stem_pool:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="stem_dropout")(x)
    for stage, (count, width, strides) in enumerate(zip(blocks, widths, stage_strides), start=1):
        for index in range(count):
            x = basic_block(
                x,
                width,
                strides if index == 0 else (1, 1),
                se_reduction=se_reduction if squeeze_excitation else None,
                name=f"stage{stage}_block{index + 1}",
            )
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"stage{stage}_dropout")(x)

    x = collapse_frequency(x, frequency_pooling)
    if pooling == "tap":
        x = TemporalAveragePooling(name="pooling")(x)
    elif pooling == "sap":
        x = SelfAttentivePooling(units=pooling_units, name="pooling")(x)
    elif pooling == "asp":
        x = AttentiveStatisticsPooling(units=pooling_units, name="pooling")(x)
    else:
        x = MultiHeadSelfAttentionPooling(
            n_hops=n_hops,
            units=pooling_units or 256,
            penalty_weight=penalty_weight,
            name="pooling",
        )(x)
    if head_bn_relu:
        x = keras.layers.BatchNormalization(name="pooled_bn")(x)
        x = keras.layers.ReLU(name="pooled_relu")(x)
    x = keras.layers.Dense(
        embedding_dim,
        activation=embedding_activation,
        use_bias=embedding_use_bias,
        name="embedding_dense",
    )(x)
    return keras.Model(inputs, float32_output(x), name=name)


RESNET34_DEFAULTS = dict(
    blocks=(3, 4, 6, 3),
    base_width=16,
    stem_kernel=7,
    stem_strides=(1, 2),
    stem_pool=False,
    stage_strides=(1, 2, 2, 1),
    squeeze_excitation=False,
    frequency_pooling="flatten",
    pooling="sap",
    # Attention bottleneck of 128 (as ResNetSE34V2's attention), not the frame width:
    # with frequency flattened the frames have 1024 features at 64 mels.
    pooling_units=128,
    embedding_dim=256,
)

RESNET34_PRESETS = {
    # voxceleb_trainer ResNetSE34L ("Fast ResNet-34"): SE blocks, mean over frequency, SAP.
    "se34l": dict(
        squeeze_excitation=True,
        se_reduction=8,
        frequency_pooling="mean",
        pooling_units=None,
    ),
    # meta-SR ResNet-34 at width 32: global average pooling, BN -> ReLU -> bias-free FC.
    "metasr": dict(
        base_width=32,
        stem_strides=(1, 1),
        stage_strides=(1, 2, 2, 2),
        frequency_pooling="mean",
        pooling="tap",
        head_bn_relu=True,
        embedding_use_bias=False,
    ),
}


def build_resnet34(
    n_mels: int = 64, preset: str | None = None, name: str = "resnet34", **kwargs
) -> keras.Model:
    """ResNet-34 at reduced width (base 16): ``[B, T, n_mels]`` to ``[B, 256]`` by default.

    Starts from :data:`RESNET34_DEFAULTS` (ResNetSE34L layout without SE, frequency
    flattened into channels, SAP with a 128-wide attention, ``Dense(256)``), applies
    ``preset`` (``"se34l"`` or
    ``"metasr"``, see :data:`RESNET34_PRESETS`), then any keyword of
    :func:`build_resnet` given here (``base_width=32``, ``pooling="asp"``,
    ``squeeze_excitation=True``, ``embedding_dim=512`` ...).
    """
    config = dict(RESNET34_DEFAULTS)
    if preset is not None:
        if preset not in RESNET34_PRESETS:
            raise ValueError(
                f"unknown resnet34 preset {preset!r}; valid: {', '.join(sorted(RESNET34_PRESETS))}"
            )
        config.update(RESNET34_PRESETS[preset])
    config.update(kwargs)
    return build_resnet(n_mels, name=name, **config)


RESNET18_DEFAULTS = dict(
    blocks=(2, 2, 2, 2),
    base_width=32,
    stem_kernel=7,
    stem_strides=(1, 1),
    stem_pool=True,
    stage_strides=(2, 2, 2, 2),
    frequency_pooling="flatten",
    pooling="tap",
    embedding_dim=256,
)


def build_resnet18(n_mels: int = 64, name: str = "resnet18", **kwargs) -> keras.Model:
    """inzpeech's Keras ResNet-18 trunk (widths 32-256, time and frequency / 32).

    Defaults in :data:`RESNET18_DEFAULTS` (TAP pooling, ``Dense(256)``); keywords of
    :func:`build_resnet` override them. ``"resnet18_sa"`` is this trunk with multi-hop
    self-attention pooling and a ReLU embedding
    (:func:`keras_spkid.models.sacnn.build_resnet18_sa`).
    """
    config = dict(RESNET18_DEFAULTS)
    config.update(kwargs)
    return build_resnet(n_mels, name=name, **config)
