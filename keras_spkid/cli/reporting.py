"""How every keras-spkid command starts and ends: logging, TensorFlow's start-up noise,
bad input as one line, exit codes."""

from __future__ import annotations

import logging
import os
import sys

from keras_spkid.errors import SpkidError


def quiet_tensorflow(verbose: bool = False) -> None:
    """Silence TensorFlow's C++ start-up lines (oneDNN, CPU features, ``E0000`` ones)
    unless ``verbose``; must run before TensorFlow is imported. An explicit
    ``TF_CPP_MIN_LOG_LEVEL`` in the environment wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    if not verbose:
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def run_command(fn, *args, verbose: bool = False) -> int:
    """Run ``fn(*args)`` as a command; return its exit status.

    A :class:`SpkidError` (bad input, impossible settings) prints ``error: <message>``
    on one line and returns 2; Ctrl-C returns 130 with a reminder that work is kept
    (caches and checkpoints are written atomically, so the same command resumes).
    """
    quiet_tensorflow(verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    try:
        return fn(*args)
    except SpkidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, run the same command to resume", file=sys.stderr)
        return 130
