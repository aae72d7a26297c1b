"""keras-spkid: few-shot speaker identification and verification in Keras 3.

The front door is :class:`SpeakerEncoder` (with :class:`Gallery` for enrolment)::

    from keras_spkid import Gallery, SpeakerEncoder

    encoder = SpeakerEncoder.from_preset("default")
    gallery = encoder.enrol(Gallery.empty(), "alice", ["alice1.wav"])

Both are imported on first use, so ``import keras_spkid`` does not load TensorFlow.
"""

__version__ = "0.1.0"

_LAZY = {
    "SpeakerEncoder": "keras_spkid.inference.encoder",
    "Verification": "keras_spkid.inference.encoder",
    "Gallery": "keras_spkid.search.gallery",
}

__all__ = ["Gallery", "SpeakerEncoder", "Verification", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_spkid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
