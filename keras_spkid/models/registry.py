"""Encoders by name, and wrapping an encoder with the log-mel front end."""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_spkid.audio.frontend import LogMel
from keras_spkid.models.campplus import build_campplus
from keras_spkid.models.conv6 import build_conv6
from keras_spkid.models.resnet import build_resnet34
from keras_spkid.models.sacnn import build_resnet18_sa, build_sacnn

ENCODERS: dict[str, Callable[..., keras.Model]] = {
    "conv6": build_conv6,
    "resnet34": build_resnet34,
    "sacnn": build_sacnn,
    "resnet18_sa": build_resnet18_sa,
    "campplus": build_campplus,
}


def available_encoders() -> list[str]:
    """Names accepted by :func:`build_encoder`, sorted."""
    return sorted(ENCODERS)


def build_encoder(
    name: str, n_mels: int = 64, embedding_dim: int | None = None, **kwargs
) -> keras.Model:
    """Build an encoder ``[B, T, n_mels]`` -> ``[B, D]`` by name.

    Args:
        name: ``"conv6"`` (CS330 6-block CNN; D = 64 * (n_mels // 64), needs n_mels >= 64),
            ``"resnet34"`` (reduced-width ResNet-34 with SAP; D = 256), ``"sacnn"``
            (VGG + 4-hop self-attention; D = 256) or ``"resnet18_sa"`` (ResNet-18 +
            self-attention; D = 256) or ``"campplus"`` (CAM++ D-TDNN with context-aware
            masking, 6.85 M parameters; D = 192; needs n_mels a multiple of 8).
            Case-insensitive.
        n_mels: mel bands of the input filterbanks.
        embedding_dim: embedding size; ``None`` keeps the encoder's default (for
            ``conv6`` it is fixed by the architecture and may only be checked).
        **kwargs: further keyword arguments of the builder (``channels`` for conv6,
            ``widths`` for sacnn, ``base_width``/``pooling``/``preset`` for resnet34 ...).

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names), or arguments
            the builder rejects.
    """
    key = str(name).lower()
    if key not in ENCODERS:
        raise ValueError(
            f"unknown encoder {name!r}; valid names: {', '.join(available_encoders())}"
        )
    if embedding_dim is not None:
        kwargs["embedding_dim"] = embedding_dim
    return ENCODERS[key](n_mels=n_mels, **kwargs)


def with_frontend(
    encoder: keras.Model,
    frontend: keras.layers.Layer | None = None,
    augment: keras.layers.Layer | None = None,
    name: str | None = None,
) -> keras.Model:
    """A model on raw 16 kHz audio ``[B, samples]``: front end, then ``encoder``.

    The front end runs inside the graph, so the saved ``.keras`` model takes raw audio.
    The encoder's weights are shared with the returned model (training one trains both).

    Args:
        encoder: a model taking filterbanks ``[B, T, n_mels]``.
        frontend: layer turning ``[B, samples]`` into ``[B, T, n_mels]``; ``None`` makes
            ``LogMel(n_mels=n_mels)`` with the encoder's ``n_mels``.
        augment: optional layer applied to the features between front end and encoder,
            e.g. ``SpecAugment`` (active only with ``training=True``).
        name: model name (default ``"<encoder name>_waveform"``).

    Returns a ``keras.Model`` ``[B, samples]`` -> ``[B, D]``.

    Raises:
        ValueError: the front end's ``n_mels`` differs from the encoder's input.
    """
    in_shape = encoder.inputs[0].shape if encoder.inputs else None
    if in_shape is None or len(in_shape) != 3:
        raise ValueError(
            f"with_frontend needs an encoder taking [batch, frames, n_mels], got input {in_shape}"
        )
    n_mels = in_shape[-1]
    if frontend is None:
        frontend = LogMel(n_mels=n_mels)
    frontend_mels = getattr(frontend, "n_mels", None)
    if frontend_mels is not None and frontend_mels != n_mels:
        raise ValueError(
            f"front end gives {frontend_mels} mel bands but encoder {encoder.name!r} "
            f"expects {n_mels}"
        )
    waveform = keras.Input(shape=(None,), name="waveform")
    features = frontend(waveform)
    if augment is not None:
        features = augment(features)
    embedding = encoder(features)
    return keras.Model(waveform, embedding, name=name or f"{encoder.name}_waveform")


def feature_encoder(model: keras.Model) -> keras.Model:
    """The filterbank encoder ``[B, T, n_mels] -> [B, D]`` of ``model``.

    ``model`` itself when it takes filterbanks; the encoder inside when it is a raw-audio
    model made by :func:`with_frontend` (as training runs export ``best/model.keras``).

    Raises:
        ValueError: a raw-audio model without exactly one nested encoder.
    """
    if len(model.inputs[0].shape) == 3:
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        raise ValueError(f"{model.name}: no single filterbank encoder inside this model")
    return inner[0]
