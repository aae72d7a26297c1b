"""Training-time augmentation of cached filterbanks.

* :mod:`~keras_spkid.augment.channel`: :class:`ChannelAugment` (telephone band,
  stationary noise and babble), applied to log-mel features inside the training graph.

MUSAN and the simulated RIRs are fetched and prepared by
:mod:`keras_spkid.download.augmentation` (``spkid download musan|rirs``).
"""
