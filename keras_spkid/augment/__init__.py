"""Data augmentation with MUSAN noise and simulated room impulse responses.

* :mod:`~keras_spkid.augment.sets`: download and prepare MUSAN (5 s chunks) and the
  simulated RIRs, in the layout voxceleb_trainer uses.
* :mod:`~keras_spkid.augment.mixing`: the signal operations (SNR scaling, FFT
  reverberation), as TensorFlow ops.
* :mod:`~keras_spkid.augment.augmenter`: :class:`Augmenter`, the random choice of one
  augmentation per utterance, as a seeded ``tf.data`` map.
"""
