"""Fixtures of the loss tests."""

from __future__ import annotations

import keras
import pytest


@pytest.fixture
def mixed_precision():
    """Run a test under the ``mixed_float16`` global policy, restoring float32 after."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")
