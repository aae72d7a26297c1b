"""Numpy helpers on embedding vectors, shared by every layer above (no keras_spkid imports)."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero); float32, same shape."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)
