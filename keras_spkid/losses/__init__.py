"""Training losses for speaker embeddings.

Batch *loss heads* (``keras.layers.Layer``; ``head(embeddings [B*M, D], labels [B*M],
training) -> (loss, accuracy)`` on a speaker-major batch, float32 throughout):

* :class:`SoftmaxHead`, :class:`AMSoftmaxHead`, :class:`AAMSoftmaxHead`,
  :class:`GlobalClassifierHead` (classification over the training speakers);
* :class:`AngularPrototypicalHead`, :class:`GE2EHead`, :class:`TripletHead` (metric
  learning, ``M >= 2``);
* :class:`SoftmaxAngularPrototypicalHead` (softmax + angular prototypical);
* :func:`get_loss_head` builds one by name.

Episodic functions: :func:`prototypes`, :func:`prototypical_logits`,
:func:`prototypical_loss`, and meta-SR's :class:`GlobalClassifier` layer (logits
``x . normalize(W)^T``) with :func:`prototypical_gc_loss` (episodic loss plus
global classification).
"""

from keras_spkid.losses.angular_prototypical import AngularPrototypicalHead
from keras_spkid.losses.base import LossHead, MinValue
from keras_spkid.losses.factory import LOSS_HEADS, get_loss_head
from keras_spkid.losses.ge2e import GE2EHead
from keras_spkid.losses.prototypical import (
    DISTANCES,
    GlobalClassifier,
    prototypes,
    prototypical_gc_loss,
    prototypical_logits,
    prototypical_loss,
    squared_distances,
)
from keras_spkid.losses.softmax import (
    AAMSoftmaxHead,
    AMSoftmaxHead,
    GlobalClassifierHead,
    SoftmaxHead,
)
from keras_spkid.losses.softmax_prototypical import SoftmaxAngularPrototypicalHead
from keras_spkid.losses.triplet import MINING_MODES, TripletHead

__all__ = [
    "AAMSoftmaxHead",
    "AMSoftmaxHead",
    "AngularPrototypicalHead",
    "DISTANCES",
    "GE2EHead",
    "GlobalClassifier",
    "GlobalClassifierHead",
    "LOSS_HEADS",
    "LossHead",
    "MINING_MODES",
    "MinValue",
    "SoftmaxAngularPrototypicalHead",
    "SoftmaxHead",
    "TripletHead",
    "get_loss_head",
    "prototypes",
    "prototypical_gc_loss",
    "prototypical_logits",
    "prototypical_loss",
    "squared_distances",
]
