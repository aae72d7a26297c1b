"""Errors that users see as one clear line.

Every error raised for bad *input* (a missing file, corrupt audio, a malformed list
line, impossible sampling settings) derives from :class:`SpkidError`. The CLI prints
``str(error)`` on one line and exits with status 2, so messages name the offending
file (and line) and say what to do.
"""

from __future__ import annotations

import logging
import os
import sys


class SpkidError(Exception):
    """Base class for user-facing errors of keras-spkid."""


class AudioError(SpkidError):
    """An audio file cannot be used: missing, unreadable, empty, too short or silent."""

    def __init__(self, path, reason: str, hint: str = ""):
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        message = f"{self.path}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class ListFormatError(SpkidError):
    """A line of a list file (manifest, trial list, split file) has the wrong shape."""

    def __init__(self, path, line_number: int, line: str, expected: str):
        self.path = str(path)
        self.line_number = line_number
        self.line = line
        self.expected = expected
        shown = line if len(line) <= 80 else line[:77] + "..."
        super().__init__(
            f"{self.path}:{line_number}: malformed line {shown!r}; expected {expected}"
        )


class DataError(SpkidError):
    """A data set cannot serve what was asked of it (too few speakers, empty catalogue)."""


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
    if not verbose:  # their INFO lines (SavedModel assets, tf2onnx's optimiser) are noise here
        for name in ("tensorflow", "tf2onnx"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return fn(*args)
    except SpkidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, run the same command to resume", file=sys.stderr)
        return 130
