"""Custom Keras layers of keras-spkid (pooling over time)."""

from keras_spkid.layers.pooling import (
    POOLING_LAYERS,
    AttentiveStatisticsPooling,
    MultiHeadSelfAttentionPooling,
    SelfAttentivePooling,
    StatisticsPooling,
    StructuredSelfAttentionPooling,
    TemporalAveragePooling,
    get_pooling,
)

__all__ = [
    "POOLING_LAYERS",
    "AttentiveStatisticsPooling",
    "MultiHeadSelfAttentionPooling",
    "SelfAttentivePooling",
    "StatisticsPooling",
    "StructuredSelfAttentionPooling",
    "TemporalAveragePooling",
    "get_pooling",
]
