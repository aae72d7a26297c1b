"""keras-spkid: few-shot speaker identification and verification in Keras 3."""

__version__ = "0.1.0"
