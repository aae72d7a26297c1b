"""``get_loss_head``: build a batch loss head from its voxceleb_trainer-style name."""

from __future__ import annotations

import inspect

from keras_spkid.losses.angular_prototypical import AngularPrototypicalHead
from keras_spkid.losses.base import LossHead, check_clips_per_speaker, check_num_classes
from keras_spkid.losses.ge2e import GE2EHead
from keras_spkid.losses.softmax import (
    AAMSoftmaxHead,
    AMSoftmaxHead,
    GlobalClassifierHead,
    SoftmaxHead,
)
from keras_spkid.losses.softmax_prototypical import SoftmaxAngularPrototypicalHead
from keras_spkid.losses.triplet import TripletHead

#: name -> (head class, needs num_classes, needs clips_per_speaker)
LOSS_HEADS: dict[str, tuple[type[LossHead], bool, bool]] = {
    "softmax": (SoftmaxHead, True, False),
    "amsoftmax": (AMSoftmaxHead, True, False),
    "aamsoftmax": (AAMSoftmaxHead, True, False),
    "angleproto": (AngularPrototypicalHead, False, True),
    "ge2e": (GE2EHead, False, True),
    "triplet": (TripletHead, False, True),
    "softmaxproto": (SoftmaxAngularPrototypicalHead, True, True),
    "gc": (GlobalClassifierHead, True, False),
}


def _options(cls) -> list[str]:
    skip = {"self", "num_classes", "clips_per_speaker", "kwargs"}
    return [n for n in inspect.signature(cls.__init__).parameters if n not in skip]


def get_loss_head(
    name: str, num_classes: int | None = None, clips_per_speaker: int = 1, **kwargs
) -> LossHead:
    """A loss head by name, with every setting checked before anything is built.

    Names: ``softmax``, ``amsoftmax``, ``aamsoftmax`` (global labels, any
    ``clips_per_speaker``), ``angleproto``, ``ge2e``, ``triplet`` (need
    ``clips_per_speaker >= 2``; ``num_classes`` is ignored), ``softmaxproto`` (both)
    and ``gc`` (meta-SR's classifier with unit-norm class weights).

    Args:
        name: the loss name (case-insensitive).
        num_classes: number of training speakers (classification heads).
        clips_per_speaker: ``M``, consecutive clips per speaker in a batch.
        **kwargs: head options (``margin``, ``scale``, ``easy_margin``, ``init_w``,
            ``init_b``, ``mining``, ``seed``, ``name``, ...).

    Raises:
        ValueError: unknown name, unknown option, or impossible settings.
    """
    key = str(name).strip().lower()
    if key not in LOSS_HEADS:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSS_HEADS))}")
    cls, needs_classes, needs_clips = LOSS_HEADS[key]
    allowed = _options(cls) + ["name"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"loss {key!r} has no option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(allowed)}"
        )
    where = f"loss {key!r}"
    check_clips_per_speaker(clips_per_speaker, where, cls.min_clips_per_speaker)
    args = {}
    if needs_classes:
        args["num_classes"] = check_num_classes(num_classes, where)
    if needs_clips:
        args["clips_per_speaker"] = clips_per_speaker
    return cls(**args, **kwargs)
