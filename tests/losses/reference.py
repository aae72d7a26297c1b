"""Numpy references for the loss tests, written without TensorFlow (float64)."""

from __future__ import annotations

import numpy as np


def cross_entropy(logits, labels) -> float:
    """Mean softmax cross-entropy."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), np.asarray(labels)].mean())


def unit(x, axis=-1):
    """Rows scaled to unit L2 norm."""
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
