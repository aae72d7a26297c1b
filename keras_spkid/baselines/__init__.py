"""Classical baselines with the interface of the learned models, available by name.

``--model mfcc_stats`` (any command that takes ``--model``) loads the MFCC-statistics
model of :mod:`keras_spkid.baselines.mfcc_stats`. A baseline has no trained weights;
it is built from code and saved once as an ordinary ``.keras`` file under
``$XDG_CACHE_HOME/keras-spkid/baselines`` (default ``~/.cache``), named by a hash of
its configuration, so that everything downstream (extraction caches, reports with
the model's path and sha256) treats it like any other model file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import keras

from keras_spkid.atomic import atomic_path
from keras_spkid.baselines.mfcc_stats import MFCCStats, build_mfcc_stats

BASELINES: dict[str, Callable[[], keras.Model]] = {"mfcc_stats": build_mfcc_stats}
"""Baseline names accepted by ``--model``, and the functions that build them."""


def baseline_dir() -> Path:
    """Where built baselines are saved: ``$XDG_CACHE_HOME/keras-spkid/baselines``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras-spkid" / "baselines"


def baseline_model_path(name: str) -> Path:
    """The ``.keras`` file of baseline ``name``, built and saved on first use.

    The file name carries a hash of the model's configuration, so a changed
    baseline gets a new file instead of a stale one.

    Raises:
        KeyError: ``name`` is not in :data:`BASELINES`.
    """
    model = BASELINES[name]()
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    path = baseline_dir() / f"{name}-{hashlib.sha256(config.encode()).hexdigest()[:12]}.keras"
    if not path.is_file():
        with atomic_path(path, ".keras") as tmp:
            model.save(tmp)
    return path


__all__ = ["BASELINES", "MFCCStats", "baseline_dir", "baseline_model_path", "build_mfcc_stats"]
