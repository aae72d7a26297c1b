"""Speaker encoders: filterbanks ``[B, T, n_mels]`` to embeddings ``[B, D]``.

``build_encoder(name, n_mels=64, embedding_dim=None, **kwargs)`` builds one by name
(``conv6``, ``resnet34``, ``sacnn``, ``resnet18_sa``, ``campplus``);
``with_frontend(encoder)`` puts a ``LogMel`` layer in front so the model takes raw
16 kHz audio ``[B, samples]``.
"""

from keras_spkid.models.campplus import CAMPPLUS_BLOCKS, SegmentContext, build_campplus
from keras_spkid.models.conv6 import CONV6_CHANNELS, build_conv6, conv6_embedding_dim
from keras_spkid.models.registry import (
    ENCODERS,
    available_encoders,
    build_encoder,
    feature_encoder,
    with_frontend,
)
from keras_spkid.models.resnet import (
    RESNET18_DEFAULTS,
    RESNET34_DEFAULTS,
    RESNET34_PRESETS,
    build_resnet,
    build_resnet18,
    build_resnet34,
)
from keras_spkid.models.sacnn import (
    REFERENCE_SACNN_WIDTHS,
    SACNN_WIDTHS,
    build_resnet18_sa,
    build_sacnn,
)

__all__ = [
    "CAMPPLUS_BLOCKS",
    "CONV6_CHANNELS",
    "ENCODERS",
    "REFERENCE_SACNN_WIDTHS",
    "RESNET18_DEFAULTS",
    "RESNET34_DEFAULTS",
    "RESNET34_PRESETS",
    "SACNN_WIDTHS",
    "SegmentContext",
    "available_encoders",
    "build_campplus",
    "build_conv6",
    "build_encoder",
    "build_resnet",
    "build_resnet18",
    "build_resnet18_sa",
    "build_resnet34",
    "build_sacnn",
    "conv6_embedding_dim",
    "feature_encoder",
    "with_frontend",
]
