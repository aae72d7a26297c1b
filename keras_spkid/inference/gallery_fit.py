"""Which model a gallery belongs to: a fingerprint of the model, and the check that a
gallery file was embedded with the model about to use it (its embeddings mean nothing to
another model, so using it would name people silently and wrongly)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from keras_spkid.errors import DataError
from keras_spkid.inference.model_io import EmbeddingModel
from keras_spkid.search.gallery import Gallery


def model_fingerprint(model: EmbeddingModel) -> str:
    """SHA-256 (hex) of a model's weights and front-end settings.

    It identifies the model a gallery belongs to whatever file holds it: saving the
    same model again (which changes the archive's bytes) keeps it, retraining changes it.
    """
    settings = {k: v for k, v in model.frontend.get_config().items() if k != "name"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for weights in model.model.get_weights():
        digest.update(f"{weights.dtype}{weights.shape}".encode())
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def check_fits(gallery: Gallery, model: EmbeddingModel, fingerprint: str, path, fix: str) -> None:
    """Raise :class:`DataError` if ``gallery`` was embedded with another model.

    Args:
        fingerprint: :func:`model_fingerprint` of ``model`` (computed once by the caller).
        path: the gallery file, for the message.
        fix: what the user should do about a mismatch.
    """
    if gallery.dim is not None and gallery.dim != model.dim:
        made_with = gallery.meta.get("model") or "another model"
        raise DataError(
            f"{path}: made with {made_with} ({gallery.dim}-dim embeddings), not with "
            f"{model.path} ({model.dim}-dim) ({fix})"
        )
    gallery.check_model(model.path, {fingerprint, model.sha256}, path, fix)
