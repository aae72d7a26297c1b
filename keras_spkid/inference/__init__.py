"""Using a trained model: load it, embed audio files, store the embeddings.

The front door is :class:`~keras_spkid.inference.encoder.SpeakerEncoder` (also
``keras_spkid.SpeakerEncoder``).
"""
