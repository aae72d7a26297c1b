"""Softmax plus angular prototypical loss (voxceleb_trainer ``softmaxproto``).

The loss of voxceleb_trainer's best ResNetSE34V2 model: cross-entropy of a linear
classifier over all ``B*M`` rows (global labels) plus the angular prototypical loss of
the speaker-major batch. voxceleb_trainer requires ``M == 2``; any ``M >= 2`` works
here.
"""

from __future__ import annotations

import keras

from keras_spkid.losses.angular_prototypical import AngularPrototypicalHead
from keras_spkid.losses.base import LossHead, check_clips_per_speaker, check_num_classes
from keras_spkid.losses.softmax import SoftmaxHead


@keras.saving.register_keras_serializable(package="keras_spkid")
class SoftmaxAngularPrototypicalHead(LossHead):
    """``softmax CE + angular prototypical loss`` over a speaker-major batch.

    Shapes: ``embeddings [B*M, D]``, ``labels [B*M]`` (global) ->
    ``(loss [], accuracy [])``, the accuracy being the softmax classifier's;
    ``logits(embeddings) -> [B*M, num_classes]`` (the classifier's).

    Args:
        num_classes: number of training speakers.
        clips_per_speaker: ``M >= 2``.
        init_w, init_b: initial scale and bias of the angular prototypical part.
    """

    min_clips_per_speaker = 2

    def __init__(
        self,
        num_classes: int,
        clips_per_speaker: int = 2,
        init_w: float = 10.0,
        init_b: float = -5.0,
        **kwargs,
    ):
        head = type(self).__name__
        self.num_classes = check_num_classes(num_classes, head)
        self.clips_per_speaker = check_clips_per_speaker(clips_per_speaker, head)
        self.init_w = float(init_w)
        self.init_b = float(init_b)
        super().__init__(**kwargs)
        self.softmax = SoftmaxHead(num_classes, name="softmax")
        self.angleproto = AngularPrototypicalHead(
            clips_per_speaker, init_w=init_w, init_b=init_b, name="angleproto"
        )

    def build(self, input_shape):
        self.softmax.build(input_shape)
        self.angleproto.build(input_shape)

    def logits(self, embeddings, labels=None, training=False):
        """``[B*M, num_classes]`` logits of the softmax classifier."""
        self._ensure_built(embeddings)
        return self.softmax.logits(embeddings)

    def call(self, embeddings, labels, training=False):
        ce, accuracy = self.softmax(embeddings, labels, training=training)
        proto, _ = self.angleproto(embeddings, labels, training=training)
        return ce + proto, accuracy

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            clips_per_speaker=self.clips_per_speaker,
            init_w=self.init_w,
            init_b=self.init_b,
        )
        return config
